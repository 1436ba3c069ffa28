"""No row is locked by every winning confirm: while one family's confirm holds all its locks
(just before its commit), another family's confirm of another unit in the same session
commits. The control puts back a lock every confirm takes (as the old single ledger-head row
was) and shows the second confirm waiting for the first, until its lock timeout. Both for the
one-statement claim (selection_claim) and the ORM version."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections, transaction
from django.test import override_settings

from core.errors import Unavailable
from core.locking import lock_first
from selection import allocation
from selection.models import Allocation, CartItem, Round, Seat
from tests.worlds import make_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def two_families_ready():
    world = make_world(families=2, units=2, sessions=1, per_session=2)
    s1 = world.sessions[0]
    CartItem.objects.bulk_create(
        CartItem(
            family=f,
            round=world.round,
            kind="formal",
            unit=world.units[i],
            position=1,
            added_at=s1.starts_at,
        )
        for i, f in enumerate(world.families)
    )
    Seat.objects.filter(session=s1).update(entered_at=s1.starts_at)
    return world


def held_first_confirm(world):
    """Family A's confirm in a thread, inside a transaction that stays open after it (all of
    its locks held, nothing committed) until released. Returns (release, thread, outcome)."""
    reached, release = threading.Event(), threading.Event()
    outcome: list = []
    now = world.sessions[0].starts_at + timedelta(seconds=5)

    def first():
        try:
            with transaction.atomic():
                outcome.append(confirm(world, 0, now))
                reached.set()
                release.wait(15)
        except Exception as exc:  # noqa: BLE001 - reported to the test
            outcome.append(exc)
            reached.set()
        finally:
            close_old_connections()

    thread = threading.Thread(target=first)
    thread.start()
    assert reached.wait(15), "the first confirm never reached its commit"
    return release, thread, outcome


def confirm(world, i: int, now):
    return allocation.selection_confirm(
        family=world.families[i],
        round_id=world.round.pk,
        unit_id=world.units[i].pk,
        idempotency_key=f"shared-lock-{i:04d}",
        now=now,
    )


CLAIMS = pytest.mark.parametrize("claim_sql", [True, False], ids=["sql", "orm"])


@CLAIMS
def test_a_confirm_commits_while_another_holds_all_its_locks(claim_sql):
    world = two_families_ready()
    with override_settings(SELECTION_CLAIM_SQL=claim_sql):
        release, thread, outcome = held_first_confirm(world)
        try:
            with override_settings(LOCK_TIMEOUT_MS=500):
                second = confirm(world, 1, world.sessions[0].starts_at + timedelta(seconds=6))
            assert second.created  # committed while A still holds its family and unit rows
            assert not Allocation.objects.filter(family=world.families[0]).exists()
        finally:
            release.set()
            thread.join(15)
    assert outcome and outcome[0].created
    assert Allocation.objects.count() == 2


@CLAIMS
def test_control_a_lock_every_confirm_takes_makes_the_second_wait(monkeypatch, claim_sql):
    world = two_families_ready()
    name = "_claim_sql" if claim_sql else "_claim_orm"
    real_claim = getattr(allocation, name)

    def with_a_shared_lock(**kwargs):  # what the old ledger head was: one row for all
        with transaction.atomic():
            lock_first(Round.objects.filter(pk=world.round.pk))
            return real_claim(**kwargs)

    monkeypatch.setattr(allocation, name, with_a_shared_lock)
    with override_settings(SELECTION_CLAIM_SQL=claim_sql):
        release, thread, outcome = held_first_confirm(world)
        try:
            with override_settings(LOCK_TIMEOUT_MS=500), pytest.raises(Unavailable):
                confirm(world, 1, world.sessions[0].starts_at + timedelta(seconds=6))
            assert not Allocation.objects.filter(family=world.families[1]).exists()
        finally:
            release.set()
            thread.join(15)
    assert outcome and outcome[0].created
