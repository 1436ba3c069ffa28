"""The ledger catches an edited row and replay reproduces a session; the clock closes due
sessions with no request arriving."""

from __future__ import annotations

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from selection import allocation, carts
from selection.clock import clock_run, clock_tick
from selection.models import Allocation, LedgerEntry, Session, Unit
from selection.replay import session_replay
from selection.translog import log_verify, sequence_pending
from tests.worlds import enter, make_world, preselect

pytestmark = pytest.mark.django_db


def played_session():
    world = make_world(families=4, units=4, sessions=1, per_session=4)
    s1, rnd = world.sessions[0], world.round
    a, b, c, d = world.families
    for family, units in ((a, [0, 1]), (b, [0, 1, 2]), (c, [0]), (d, [3])):
        preselect(family, rnd, [world.units[i] for i in units])
    for family in (a, b, c):
        enter(family, rnd, s1)
        carts.cart_sync(family=family, round_id=rnd.pk, now=s1.starts_at)
    allocation.selection_confirm(
        family=c,
        round_id=rnd.pk,
        unit_id=world.units[0].pk,
        idempotency_key="ledger-c-01",
        now=s1.starts_at + timedelta(seconds=9),
    )
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    return world


def test_the_log_verifies_and_the_command_says_so():
    world = played_session()
    sequence_pending()
    result = log_verify(round_id=world.round.pk)
    assert result.first_bad is None and result.checked == LedgerEntry.objects.count() == 5
    out = StringIO()
    call_command("ledger_verify", stdout=out)
    assert f"round {world.round.pk}: log ok, 5 entries verified" in out.getvalue()


@pytest.mark.parametrize(
    "tamper",
    [
        lambda e: LedgerEntry.objects.filter(pk=e.pk).update(payload={**e.payload, "rank": 99}),
        lambda e: LedgerEntry.objects.filter(pk=e.pk).update(at=e.at + timedelta(seconds=1)),
        lambda e: LedgerEntry.objects.filter(pk=e.pk).update(kind="staff_assign"),
        lambda e: LedgerEntry.objects.filter(pk=e.pk).delete(),
    ],
    ids=["payload", "time", "kind", "deleted"],
)
def test_an_edited_or_removed_row_is_caught_at_that_row(tamper):
    world = played_session()
    sequence_pending()
    victim = LedgerEntry.objects.get(kind="absent")  # index 3 of 5
    assert victim.index == 3
    tamper(victim)
    result = log_verify(round_id=world.round.pk)
    assert result.first_bad == 3
    with pytest.raises(CommandError, match="log BAD at index 3"):
        call_command("ledger_verify", stdout=StringIO())


def test_removing_the_last_rows_is_caught_by_the_signed_head():
    world = played_session()
    sequence_pending()
    last = LedgerEntry.objects.get(index=4)
    last.delete()
    result = log_verify(round_id=world.round.pk)
    assert result.first_bad == 4 and "missing" in result.reason


def test_replay_reproduces_the_session_and_the_command_says_so():
    world = played_session()
    s1 = world.sessions[0]
    report = session_replay(session_id=s1.pk)
    assert report.ok, report.problems
    assert report.families == 2 and report.assigned == 2  # a and b auto; c confirmed; d absent
    out = StringIO()
    call_command("ledger_replay", "--session", str(s1.pk), stdout=out)
    assert "reproduces the stored result" in out.getvalue()


def test_replay_catches_an_allocation_changed_behind_the_ledger():
    world = played_session()
    s1 = world.sessions[0]
    b = world.families[1]
    moved = Allocation.objects.get(family=b)
    # Behind the ledger, but consistent enough for the database guard (unit 已选 exactly when
    # allocated): the old unit freed, the new one taken.
    Allocation.objects.filter(pk=moved.pk).update(unit=world.units[3])
    Unit.objects.filter(pk=moved.unit_id).update(status=Unit.Status.AVAILABLE)
    Unit.objects.filter(pk=world.units[3].pk).update(status=Unit.Status.TAKEN)
    report = session_replay(session_id=s1.pk)
    assert not report.ok and any("differ from the replay" in p for p in report.problems)
    with pytest.raises(CommandError):
        call_command("ledger_replay", "--session", str(s1.pk), stdout=StringIO(), stderr=StringIO())


def test_replay_of_an_open_session_says_it_is_not_closed():
    world = make_world(families=1, units=1, sessions=1)
    assert not session_replay(session_id=world.sessions[0].pk).ok


def test_clock_tick_opens_and_closes_on_time():
    world = make_world(families=2, units=2, sessions=2)
    s1, s2 = world.sessions
    opened, closed = clock_tick(now=s1.starts_at - timedelta(seconds=1))
    assert (opened, closed) == ([], [])
    opened, closed = clock_tick(now=s1.starts_at)
    assert opened == [s1.pk] and closed == []
    opened, closed = clock_tick(now=s1.ends_at)
    assert opened == [] and [r.session_id for r in closed] == [s1.pk]
    # a clock that was down through a whole window closes it without opening it first
    opened, closed = clock_tick(now=s2.ends_at + timedelta(minutes=5))
    assert [r.session_id for r in closed] == [s2.pk]
    assert set(Session.objects.values_list("status", flat=True)) == {"closed"}


@pytest.mark.django_db(transaction=True)
def test_the_clock_loop_closes_a_due_session_with_no_request():
    world = make_world(families=1, units=1, sessions=1)
    session = world.sessions[0]
    now = timezone.now()
    Session.objects.filter(pk=session.pk).update(
        starts_at=now - timedelta(minutes=2), ends_at=now - timedelta(milliseconds=1)
    )
    stop, seen = threading.Event(), []

    def after_tick(opened, closed):
        seen.extend(report.session_id for report in closed)
        if session.pk in seen:
            stop.set()

    thread = threading.Thread(
        target=clock_run, kwargs={"stop": stop, "tick": 0.01, "after_tick": after_tick}
    )
    thread.start()
    finished = stop.wait(timeout=10)
    stop.set()
    thread.join()
    assert finished and seen == [session.pk]
    assert Session.objects.get(pk=session.pk).status == "closed"
