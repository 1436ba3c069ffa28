"""Two clocks reach a session's deadline at once: the session closes exactly once. The
control case removes the session row lock and shows the close happening twice."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from selection import allocation
from selection.models import Allocation, CartItem, LedgerEntry, Seat
from tests.factories import log_ok
from tests.worlds import make_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def closing_world():
    world = make_world(families=30, units=10, sessions=1, per_session=30)
    s1 = world.sessions[0]
    CartItem.objects.bulk_create(
        CartItem(
            family=f,
            round=world.round,
            kind="formal",
            unit=world.units[(i + k) % 10],
            position=k + 1,
            added_at=s1.starts_at,
        )
        for i, f in enumerate(world.families)
        for k in range(3)
    )
    Seat.objects.filter(session=s1).update(entered_at=s1.starts_at)
    return world


def run_two_clocks(session, before_close=None):
    reports, errors = [], []

    def clock():
        try:
            if before_close:
                before_close()
            reports.append(allocation.session_close(session_id=session.pk, now=session.ends_at))
        except Exception as exc:  # collected and asserted by the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=clock) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return reports, errors


def test_two_clocks_close_a_session_exactly_once():
    world = closing_world()
    s1 = world.sessions[0]
    start = threading.Barrier(2)
    reports, errors = run_two_clocks(s1, before_close=start.wait)
    assert not errors
    assert sum(report is not None for report in reports) == 1
    assert LedgerEntry.objects.filter(kind="session_close").count() == 1
    assert Allocation.objects.count() == 10
    assert LedgerEntry.objects.filter(kind__in=["auto_assign", "no_unit"]).count() == 30
    log_ok()


def test_control_without_the_session_lock_the_close_runs_twice(monkeypatch):
    """Both clocks read the session as open before either commits; without the row lock
    the second one closes it again and writes a second set of ledger entries."""
    from django.db.models import QuerySet

    import selection.allocation as module

    world = closing_world()
    s1 = world.sessions[0]
    real_sfu = QuerySet.select_for_update
    monkeypatch.setattr(
        QuerySet,
        "select_for_update",
        lambda self, **kw: self if self.model.__name__ == "Session" else real_sfu(self, **kw),
    )
    both_read = threading.Barrier(2, timeout=10)
    real_seat = module.Seat
    waited = threading.local()

    class SeatAfterBarrier:
        Outcome = real_seat.Outcome

        class objects:  # noqa: N801 (stands in for the manager)
            @staticmethod
            def filter(*args, **kwargs):
                if not getattr(waited, "done", False):  # first query after reading the session
                    waited.done = True
                    both_read.wait()  # both clocks have read the session as still open
                return real_seat.objects.filter(*args, **kwargs)

    monkeypatch.setattr(module, "Seat", SeatAfterBarrier)
    reports, errors = run_two_clocks(s1)
    assert not errors
    assert sum(report is not None for report in reports) == 2
    assert LedgerEntry.objects.filter(kind="session_close").count() == 2
