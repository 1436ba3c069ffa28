"""The selection rules and every refusal: a stable code and nothing changed."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.models import Layout
from core.errors import DomainError
from selection import allocation, carts, supplementary
from selection.models import Allocation, CartItem, GiveUp, LedgerEntry, Seat, Unit
from tests.factories import log_entry, log_ok
from tests.worlds import CTX, PRE_START, declare, enter, make_world, preselect

pytestmark = pytest.mark.django_db
S = timedelta(seconds=1)


def refused(code: str, fn, **kwargs) -> None:
    before = (CartItem.objects.count(), Allocation.objects.count(), LedgerEntry.objects.count())
    with pytest.raises(DomainError) as caught:
        fn(**kwargs)
    assert caught.value.code == code
    assert (
        CartItem.objects.count(),
        Allocation.objects.count(),
        LedgerEntry.objects.count(),
    ) == before


def cart_units(family, rnd, kind="pre") -> list[str]:
    return [
        item.unit.label
        for item in CartItem.objects.filter(family=family, round=rnd, kind=kind).order_by(
            "position"
        )
    ]


@pytest.fixture
def big():
    return make_world(families=2, units=8, sessions=1)


def taken_by_other(world, unit):
    """The unit allocated to the world's last family (the database guard wants an allocation
    behind every 已选 unit)."""
    Allocation.objects.create(
        round=world.round,
        unit=unit,
        family=world.families[-1],
        session=world.sessions[0],
        how=Allocation.How.STAFF,
        at=PRE_START,
        ledger_entry=log_entry(round=world.round, unit=unit, family=world.families[-1]),
    )
    Unit.objects.filter(pk=unit.pk).update(status=Unit.Status.TAKEN)


def test_cart_holds_at_most_the_limit(big):
    family, rnd = big.families[0], big.round
    preselect(family, rnd, big.units[:5])
    refused(
        "cart_full",
        carts.cart_add,
        family=family,
        round_id=rnd.pk,
        kind="pre",
        unit_id=big.units[5].pk,
        now=PRE_START,
    )


def test_declaration_is_required_before_preselecting(big):
    refused(
        "declaration_required",
        carts.cart_add,
        family=big.families[0],
        round_id=big.round.pk,
        kind="pre",
        unit_id=big.units[0].pk,
        now=PRE_START,
    )


def test_outdated_declaration_text_is_refused(big):
    with pytest.raises(DomainError) as caught:
        carts.declaration_acknowledge(
            family=big.families[0],
            round_id=big.round.pk,
            phase="pre",
            version="0" * 64,
            ctx=CTX,
            now=PRE_START,
        )
    assert caught.value.code == "declaration_outdated"


def test_ineligible_taken_unknown_and_foreign_units_are_refused(big):
    family, rnd = big.families[0], big.round
    declare(family, rnd, "pre", PRE_START)
    studio = Unit.objects.create(
        round=rnd,
        building="9",
        number="101",
        floor=1,
        layout=Layout.STUDIO,
        orientation="N",
        area=Decimal("30"),
        monthly_rent=Decimal("900"),
    )
    refused(
        "unit_not_eligible",
        carts.cart_add,
        family=family,
        round_id=rnd.pk,
        kind="pre",
        unit_id=studio.pk,
        now=PRE_START,
    )
    taken_by_other(big, big.units[0])
    refused(
        "unit_taken",
        carts.cart_add,
        family=family,
        round_id=rnd.pk,
        kind="pre",
        unit_id=big.units[0].pk,
        now=PRE_START,
    )
    refused(
        "unit_not_found",
        carts.cart_add,
        family=family,
        round_id=rnd.pk,
        kind="pre",
        unit_id=999999,
        now=PRE_START,
    )
    other = make_world(families=1, units=1, sessions=1)
    refused(
        "unit_not_found",
        carts.cart_add,
        family=family,
        round_id=rnd.pk,
        kind="pre",
        unit_id=other.units[0].pk,
        now=PRE_START,
    )


def test_a_family_cannot_act_in_another_round(big):
    other = make_world(families=1, units=1, sessions=1)
    refused(
        "round_not_found",
        carts.cart_add,
        family=big.families[0],
        round_id=other.round.pk,
        kind="pre",
        unit_id=other.units[0].pk,
        now=PRE_START,
    )


def test_same_unit_twice_is_refused(big):
    family, rnd = big.families[0], big.round
    preselect(family, rnd, big.units[:1])
    refused(
        "already_in_cart",
        carts.cart_add,
        family=family,
        round_id=rnd.pk,
        kind="pre",
        unit_id=big.units[0].pk,
        now=PRE_START,
    )


def test_move_up_down_pin_and_delete(big):
    family, rnd = big.families[0], big.round
    preselect(family, rnd, big.units[:4])
    u = big.units
    kw = {"family": family, "round_id": rnd.pk, "kind": "pre", "now": PRE_START}
    carts.cart_move(unit_id=u[2].pk, direction="up", **kw)
    assert cart_units(family, rnd) == ["3-1201", "3-1203", "3-1202", "3-1204"]
    carts.cart_move(unit_id=u[0].pk, direction="down", **kw)
    assert cart_units(family, rnd) == ["3-1203", "3-1201", "3-1202", "3-1204"]
    carts.cart_move(unit_id=u[3].pk, direction="top", **kw)
    assert cart_units(family, rnd) == ["3-1204", "3-1203", "3-1201", "3-1202"]
    refused("cannot_move", carts.cart_move, unit_id=u[3].pk, direction="up", **kw)
    refused("cannot_move", carts.cart_move, unit_id=u[1].pk, direction="down", **kw)
    refused("cannot_move", carts.cart_move, unit_id=u[3].pk, direction="top", **kw)
    refused("not_in_cart", carts.cart_move, unit_id=u[6].pk, direction="up", **kw)
    carts.cart_remove(unit_id=u[2].pk, **kw)
    assert cart_units(family, rnd) == ["3-1204", "3-1201", "3-1202"]
    assert list(
        CartItem.objects.filter(family=family)
        .order_by("position")
        .values_list("position", flat=True)
    ) == [1, 2, 3]
    refused("not_in_cart", carts.cart_remove, unit_id=u[2].pk, **kw)


def test_a_taken_unit_can_still_be_deleted_from_the_cart(big):
    family, rnd = big.families[0], big.round
    preselect(family, rnd, big.units[:2])
    taken_by_other(big, big.units[0])
    carts.cart_remove(
        family=family, round_id=rnd.pk, kind="pre", unit_id=big.units[0].pk, now=PRE_START
    )
    assert cart_units(family, rnd) == ["3-1202"]


def test_formal_cart_needs_entering_first(big):
    family, rnd, s1 = big.families[0], big.round, big.sessions[0]
    declare(family, rnd, "formal", s1.starts_at)
    refused(
        "not_entered",
        carts.cart_add,
        family=family,
        round_id=rnd.pk,
        kind="formal",
        unit_id=big.units[0].pk,
        now=s1.starts_at,
    )
    refused(
        "declaration_required",
        carts.formal_enter,
        family=big.families[1],
        round_id=rnd.pk,
        now=s1.starts_at,
    )


def test_sync_overwrites_the_formal_cart_and_shows_the_diff_first(big):
    family, rnd, s1 = big.families[0], big.round, big.sessions[0]
    preselect(family, rnd, [big.units[0], big.units[1]])
    enter(family, rnd, s1)
    now = s1.starts_at + S
    carts.cart_add(family=family, round_id=rnd.pk, kind="formal", unit_id=big.units[5].pk, now=now)
    carts.cart_add(family=family, round_id=rnd.pk, kind="formal", unit_id=big.units[1].pk, now=now)
    diff = carts.cart_sync_preview(family=family, round_id=rnd.pk, now=now)
    assert [i.unit.label for i in diff.removed] == ["3-1206"]
    assert [i.unit.label for i in diff.added] == ["3-1201"]
    assert cart_units(family, rnd, "formal") == ["3-1206", "3-1202"]  # preview changes nothing
    carts.cart_sync(family=family, round_id=rnd.pk, now=now)
    assert cart_units(family, rnd, "formal") == ["3-1201", "3-1202"]
    assert cart_units(family, rnd, "pre") == ["3-1201", "3-1202"]


def confirm(world, family, unit, key="key-00000001", now=None):
    return allocation.selection_confirm(
        family=family,
        round_id=world.round.pk,
        unit_id=unit.pk,
        idempotency_key=key,
        now=now or world.sessions[0].starts_at + 5 * S,
    )


def ready(world, family, units):
    rnd, s1 = world.round, world.sessions[0]
    preselect(family, rnd, units)
    enter(family, rnd, s1)
    carts.cart_sync(family=family, round_id=rnd.pk, now=s1.starts_at)


def test_confirm_is_atomic_first_wins_and_idempotent(big):
    a, b = big.families
    ready(big, a, big.units[:2])
    ready(big, b, big.units[:2])
    first = confirm(big, a, big.units[0], key="key-a-000001")
    assert first.created and first.allocation.how == "confirmed"
    again = confirm(big, a, big.units[0], key="key-a-000002")  # a repeated click
    assert not again.created and again.allocation.pk == first.allocation.pk
    refused("unit_taken", confirm, world=big, family=b, unit=big.units[0], key="key-b-000001")
    refused(
        "already_allocated", confirm, world=big, family=a, unit=big.units[1], key="key-a-000003"
    )
    assert Unit.objects.get(pk=big.units[0].pk).status == "taken"
    assert Seat.objects.get(family=a).outcome == "confirmed"
    log_ok()


def test_confirm_needs_the_unit_in_the_formal_cart_and_entering(big):
    a, b = big.families
    ready(big, a, big.units[:1])
    refused("unit_not_in_cart", confirm, world=big, family=a, unit=big.units[3])
    preselect(b, big.round, big.units[:1])
    refused("window_not_open", confirm, world=big, family=b, unit=big.units[0], now=PRE_START)
    declare(b, big.round, "formal", big.sessions[0].starts_at)
    refused("not_entered", confirm, world=big, family=b, unit=big.units[0])


def test_close_auto_assigns_in_rank_order_and_voids_absent_preselection(big):
    a, b = big.families  # a ranks before b
    ready(big, b, [big.units[0], big.units[1]])
    ready(big, a, [big.units[0], big.units[2]])
    report = allocation.session_close(session_id=big.sessions[0].pk, now=big.sessions[0].ends_at)
    assert dict(report.assigned) == {a.pk: big.units[0].pk, b.pk: big.units[1].pk}
    assert report.explanations[b.pk].startswith("#1 3-1201 taken at 09:32:00 (leaf ")
    assert report.explanations[b.pk].endswith("#2 3-1202 assigned")


def test_a_family_that_never_entered_loses_its_preselection(big):
    a, b = big.families
    preselect(a, big.round, big.units[:2])
    report = allocation.session_close(session_id=big.sessions[0].pk, now=big.sessions[0].ends_at)
    assert set(report.absent) == {a.pk, b.pk} and not report.assigned
    assert not CartItem.objects.filter(family=a, kind="pre").exists()
    entry = LedgerEntry.objects.get(kind="absent", payload__family=a.pk)
    assert entry.payload["voided_pre_cart"] == [big.units[0].pk, big.units[1].pk]
    assert Seat.objects.get(family=a).outcome == "absent"


def test_an_entered_family_whose_units_are_all_taken_ends_without_a_unit(big):
    a, b = big.families
    ready(big, a, big.units[:1])
    ready(big, b, big.units[:1])
    confirm(big, a, big.units[0])
    report = allocation.session_close(session_id=big.sessions[0].pk, now=big.sessions[0].ends_at)
    assert report.no_unit == [b.pk]
    assert Seat.objects.get(family=b).outcome == "no_unit"


def test_give_up_is_irreversible_and_bars_supplementary(big):
    a, b = big.families
    s1 = big.sessions[0]
    ready(big, a, big.units[:1])
    token_b = allocation.give_up_intent(family=b, round_id=big.round.pk, now=s1.starts_at)
    token = allocation.give_up_intent(family=a, round_id=big.round.pk, now=s1.starts_at + S)
    allocation.selection_give_up(
        family=a, round_id=big.round.pk, token=token, ctx=CTX, now=s1.starts_at + S
    )
    assert GiveUp.objects.filter(family=a).count() == 1
    refused(
        "gave_up",
        carts.cart_add,
        family=a,
        round_id=big.round.pk,
        kind="formal",
        unit_id=big.units[1].pk,
        now=s1.starts_at + 2 * S,
    )
    refused("gave_up", confirm, world=big, family=a, unit=big.units[0])
    report = allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    assert a.pk not in dict(report.assigned) and Seat.objects.get(family=a).outcome == "gave_up"
    refused(
        "gave_up",
        supplementary.supplementary_apply,
        family=a,
        round_id=big.round.pk,
        ctx=CTX,
        now=s1.ends_at,
    )
    # b's token cannot be used for a
    with pytest.raises(DomainError) as caught:
        allocation.selection_give_up(
            family=a, round_id=big.round.pk, token=token_b, ctx=CTX, now=s1.starts_at
        )
    assert caught.value.code == "give_up_token_invalid"


def test_cannot_give_up_after_an_allocation(big):
    a = big.families[0]
    ready(big, a, big.units[:1])
    confirm(big, a, big.units[0])
    refused(
        "already_allocated",
        allocation.give_up_intent,
        family=a,
        round_id=big.round.pk,
        now=big.sessions[0].starts_at + 10 * S,
    )


def test_supplementary_refused_with_an_allocation_and_idempotent_otherwise(big):
    a, b = big.families
    s1 = big.sessions[0]
    ready(big, a, big.units[:1])
    confirm(big, a, big.units[0])
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    refused(
        "already_allocated",
        supplementary.supplementary_apply,
        family=a,
        round_id=big.round.pk,
        ctx=CTX,
        now=s1.ends_at,
    )
    first = supplementary.supplementary_apply(
        family=b, round_id=big.round.pk, ctx=CTX, now=s1.ends_at
    )
    again = supplementary.supplementary_apply(
        family=b, round_id=big.round.pk, ctx=CTX, now=s1.ends_at + S
    )
    assert first.pk == again.pk


def test_a_supplementary_session_runs_with_the_same_rules(big, django_user_model):
    a, b = big.families
    s1 = big.sessions[0]
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)  # neither entered
    for family in (a, b):
        supplementary.supplementary_apply(
            family=family, round_id=big.round.pk, ctx=CTX, now=s1.ends_at
        )
    staff = django_user_model.objects.create(username="op", is_staff=True)
    start = s1.ends_at + timedelta(hours=2)
    session = supplementary.supplementary_session_schedule(
        round_id=big.round.pk, starts_at=start, actor=staff, now=s1.ends_at + timedelta(hours=1)
    )
    assert session.kind == "supplementary" and session.ends_at - session.starts_at == timedelta(
        seconds=120
    )
    # pre-selection reopens until the supplementary session, then the same formal flow
    preselect(b, big.round, big.units[2:4], now=start - S)
    enter(b, big.round, session, start)
    carts.cart_sync(family=b, round_id=big.round.pk, now=start)
    report = allocation.session_close(session_id=session.pk, now=session.ends_at)
    assert dict(report.assigned) == {b.pk: big.units[2].pk}
    assert a.pk in report.absent
    with pytest.raises(DomainError) as caught:
        supplementary.supplementary_session_schedule(
            round_id=big.round.pk, starts_at=start + timedelta(hours=1), actor=staff, now=start
        )
    assert caught.value.code == "no_applications"


def test_the_database_refuses_a_second_allocation_of_a_unit_or_family(big):
    """The constraints are the last guard: a bug in a service fails instead of double-allocating."""
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    a, b = big.families
    s1 = big.sessions[0]
    Allocation.objects.create(
        round=big.round,
        unit=big.units[0],
        family=a,
        session=s1,
        how="staff",
        at=timezone.now(),
        ledger_entry=log_entry(round=big.round, unit=big.units[0], family=a),
    )
    Unit.objects.filter(pk=big.units[0].pk).update(status=Unit.Status.TAKEN)
    with pytest.raises(IntegrityError), transaction.atomic():
        Allocation.objects.create(
            round=big.round,
            unit=big.units[0],
            family=b,
            session=s1,
            how="staff",
            at=timezone.now(),
            ledger_entry=log_entry(round=big.round, unit=big.units[0], family=b),
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Allocation.objects.create(
            round=big.round,
            unit=big.units[1],
            family=a,
            session=s1,
            how="staff",
            at=timezone.now(),
            ledger_entry=log_entry(round=big.round, unit=big.units[1], family=a),
        )
