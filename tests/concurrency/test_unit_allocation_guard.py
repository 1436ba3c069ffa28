"""The database guard "a unit is 已选 exactly when it has an allocation" (PostgreSQL constraint
triggers, selection migration 0005), and the API's answer when a guard refuses a write: 409
`invariant_violation`, nothing changed, never a 500.

The control disables the triggers (as the database was before the guard) and shows the back
door the issue found: a direct write sets an allocated unit back to 可选 and commits, the unit
is offered again, and the next confirm runs into the one-to-one constraint."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, connection, transaction
from django.test import Client

from accounts.services import applicant_user_ensure
from selection import allocation
from selection.models import Allocation, CartItem, Unit
from tests.factories import log_entry
from tests.worlds import enter, make_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def allocated_world():
    """Two families of one session, both with unit 0 in their carts; family 0 confirmed it."""
    world = make_world(families=2, units=2, sessions=1, per_session=2)
    s1 = world.sessions[0]
    for family in world.families:
        enter(family, world.round, s1)
        CartItem.objects.create(
            family=family,
            round=world.round,
            kind=CartItem.Kind.FORMAL,
            unit=world.units[0],
            position=1,
            added_at=s1.starts_at,
        )
    allocation.selection_confirm(
        family=world.families[0],
        round_id=world.round.pk,
        unit_id=world.units[0].pk,
        idempotency_key="first",
        now=s1.starts_at + timedelta(seconds=5),
    )
    return world


def set_triggers(enabled: bool) -> None:
    verb = "ENABLE" if enabled else "DISABLE"
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE selection_unit {verb} TRIGGER unit_taken_iff_allocated")
        cursor.execute(f"ALTER TABLE selection_allocation {verb} TRIGGER allocation_unit_taken")


def test_an_allocated_unit_cannot_be_set_back_to_available():
    world = allocated_world()
    unit = world.units[0]
    with pytest.raises(IntegrityError, match="unit_taken_iff_allocated|anju invariant"):
        with transaction.atomic():
            Unit.objects.filter(pk=unit.pk).update(status=Unit.Status.AVAILABLE)
    unit.refresh_from_db()
    assert unit.status == Unit.Status.TAKEN


def test_an_allocation_without_a_taken_unit_is_refused():
    world = allocated_world()
    free = world.units[1]
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            Allocation.objects.create(
                round=world.round,
                unit=free,
                family=world.families[1],
                session=world.sessions[0],
                how=Allocation.How.STAFF,
                at=world.sessions[0].starts_at,
                ledger_entry=log_entry(round=world.round, unit=free, family=world.families[1]),
            )
    assert not Allocation.objects.filter(unit=free).exists()
    # ...and a unit marked 已选 with no allocation behind it is refused too.
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            Unit.objects.filter(pk=free.pk).update(status=Unit.Status.TAKEN)
    free.refresh_from_db()
    assert free.status == Unit.Status.AVAILABLE


def test_a_service_write_that_keeps_the_rule_commits():
    """Control for the two tests above: the guard is deferred to COMMIT, so the confirm's
    allocation-then-status writes in one transaction pass it."""
    world = allocated_world()
    assert Unit.objects.get(pk=world.units[0].pk).status == Unit.Status.TAKEN
    assert Allocation.objects.filter(unit=world.units[0]).count() == 1


def confirm_as(family, world):
    client = Client()
    client.force_login(applicant_user_ensure(applicant=family.main_applicant).user)
    with time_machine.travel(world.sessions[0].starts_at + timedelta(seconds=20), tick=False):
        return client.post(
            f"/api/v1/selection/{world.round.pk}/confirm/",
            {"unit_id": world.units[0].pk, "idempotency_key": "second-tap"},
            content_type="application/json",
        )


def test_control_without_the_guard_the_back_door_reopens_a_taken_unit():
    world = allocated_world()
    set_triggers(False)
    try:
        with transaction.atomic():
            Unit.objects.filter(pk=world.units[0].pk).update(status=Unit.Status.AVAILABLE)
        # The old path: the write commits, the unit is offered as 可选 while allocated...
        assert Unit.objects.get(pk=world.units[0].pk).status == Unit.Status.AVAILABLE
        # ...and the next confirm of it runs into the one-to-one constraint. The API answers
        # that with its error body and 409, not a 500 (the constraint is the last line).
        response = confirm_as(world.families[1], world)
        assert response.status_code == 409, response.content
        assert response.json()["error"]["code"] == "invariant_violation"
        assert list(Allocation.objects.values_list("family_id", flat=True)) == [
            world.families[0].pk
        ]
    finally:
        Unit.objects.filter(pk=world.units[0].pk).update(status=Unit.Status.TAKEN)
        set_triggers(True)


def test_with_the_guard_the_second_family_is_told_the_unit_is_taken():
    world = allocated_world()
    response = confirm_as(world.families[1], world)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "unit_taken"
