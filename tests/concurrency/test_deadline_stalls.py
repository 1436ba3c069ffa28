"""Writes that the session close reads, stalled at the deadline (issue 12, item 0).

A cart move, a sync, an enter and a give-up each read the window at the start of the request
(`now` just before the end). Two real PostgreSQL connections, interleaved with events around
`session_close`:
1. the write reaches its family lock only after the close committed: refused `window_closed`
   (403), nothing changed, and `ledger_replay` reproduces the session;
2. the write holds its family lock when the close starts locking: it commits first and the
   close uses it (the outcome follows the write; the replay still holds).
The controls take the re-check away and show today's stale success: an answer of 200 that the
close never saw (a replay mismatch, an entered family recorded absent, a give-up after an
auto-assignment).
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from core.errors import DomainError
from selection import allocation, carts
from selection.models import Allocation, CartItem, GiveUp, LedgerEntry, Seat
from selection.replay import session_replay
from selection.translog import sequence_pending
from tests.factories import log_ok
from tests.worlds import CTX, declare, enter, make_world, preselect

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITER, CLOSER = "deadline-writer", "deadline-closer"
STALL = timedelta(milliseconds=50)  # the write read its clock this long before the end


class Stage:
    def __init__(self) -> None:
        self.reached, self.go = threading.Event(), threading.Event()


def _in(name: str) -> bool:
    return threading.current_thread().name == name


def _run(name: str, fn, out: dict) -> threading.Thread:
    def target():
        from django.db import connection

        try:
            out["result"] = fn()
        except BaseException as exc:  # asserted by the test
            out["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=target, name=name)
    thread.start()
    return thread


# ------------------------------------------------------------------------------ scenarios


def _world():
    world = make_world(families=1, units=3, sessions=1)
    family, s1 = world.families[0], world.sessions[0]
    preselect(family, world.round, [world.units[0], world.units[1]])
    return world, family, s1


def scenario_move():
    world, family, s1 = _world()
    enter(family, world.round, s1)
    carts.cart_sync(family=family, round_id=world.round.pk, now=s1.starts_at)
    u1, u2 = world.units[0], world.units[1]

    def write():
        return carts.cart_move(
            family=family,
            round_id=world.round.pk,
            kind="formal",
            unit_id=u2.pk,
            direction="top",
            now=s1.ends_at - STALL,
        )

    def after_refused():
        assert _formal(family) == [u1.pk, u2.pk]
        assert _allocated(family) == u1.pk

    def after_used():
        assert _formal(family) == [u2.pk, u1.pk]
        assert _allocated(family) == u2.pk

    return world, write, after_refused, after_used


def scenario_sync():
    world, family, s1 = _world()
    enter(family, world.round, s1)
    u1, u2, u3 = world.units
    carts.cart_add(
        family=family, round_id=world.round.pk, kind="formal", unit_id=u3.pk, now=s1.starts_at
    )

    def write():
        return carts.cart_sync(family=family, round_id=world.round.pk, now=s1.ends_at - STALL)

    def after_refused():
        assert _formal(family) == [u3.pk]
        assert _allocated(family) == u3.pk

    def after_used():
        assert _formal(family) == [u1.pk, u2.pk]
        assert _allocated(family) == u1.pk

    return world, write, after_refused, after_used


def scenario_enter():
    world, family, s1 = _world()
    declare(family, world.round, "formal", s1.starts_at)

    def write():
        return carts.formal_enter(family=family, round_id=world.round.pk, now=s1.ends_at - STALL)

    def seat():
        return Seat.objects.get(session=s1, family=family)

    def after_refused():
        assert seat().entered_at is None
        assert seat().outcome == Seat.Outcome.ABSENT
        assert not CartItem.objects.filter(family=family, kind="pre").exists()  # 预选作废

    def after_used():
        assert seat().entered_at == s1.ends_at - STALL
        assert seat().outcome == Seat.Outcome.NO_UNIT  # entered, formal cart empty
        assert CartItem.objects.filter(family=family, kind="pre").count() == 2

    return world, write, after_refused, after_used


def scenario_give_up():
    # Entered with an empty formal cart: the close records 无房可分 (no_unit) unless the
    # family gave up first.
    world, family, s1 = _world()
    enter(family, world.round, s1)
    token = allocation.give_up_intent(
        family=family, round_id=world.round.pk, now=s1.ends_at - STALL
    )

    def write():
        return allocation.selection_give_up(
            family=family, round_id=world.round.pk, token=token, ctx=CTX, now=s1.ends_at - STALL
        )

    def after_refused():
        assert not GiveUp.objects.filter(family=family).exists()
        assert Seat.objects.get(session=s1, family=family).outcome == Seat.Outcome.NO_UNIT

    def after_used():
        assert GiveUp.objects.filter(family=family).exists()
        assert _allocated(family) is None
        assert Seat.objects.get(session=s1, family=family).outcome == Seat.Outcome.GAVE_UP

    return world, write, after_refused, after_used


SCENARIOS = {
    "move": scenario_move,
    "sync": scenario_sync,
    "enter": scenario_enter,
    "give_up": scenario_give_up,
}


def _formal(family) -> list[int]:
    return list(
        CartItem.objects.filter(family=family, kind="formal")
        .order_by("position")
        .values_list("unit_id", flat=True)
    )


def _allocated(family) -> int | None:
    return Allocation.objects.filter(family=family).values_list("unit_id", flat=True).first()


def _close(world):
    s1 = world.sessions[0]
    return allocation.session_close(session_id=s1.pk, now=s1.ends_at)


def _pause_writer_before_its_lock(monkeypatch, stage: Stage) -> None:
    """The writer stops just before its first row lock (after its unlocked phase checks)."""
    for module in (carts, allocation):
        real = module.lock_first

        def paused(*args, _real=real, **kwargs):
            if _in(WRITER) and not stage.reached.is_set():
                stage.reached.set()
                assert stage.go.wait(30)
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, "lock_first", paused)


def _late_write(world, write, monkeypatch):
    """Case 1: the write takes its lock after the close committed."""
    stage, out = Stage(), {}
    _pause_writer_before_its_lock(monkeypatch, stage)
    writer = _run(WRITER, write, out)
    assert stage.reached.wait(30)
    report = _close(world)  # commits while the writer is stalled
    assert report is not None
    stage.go.set()
    writer.join(30)
    return out


# ------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_write_that_locks_after_the_close_committed_is_refused(name, monkeypatch):
    world, write, after_refused, _ = SCENARIOS[name]()
    out = _late_write(world, write, monkeypatch)
    error = out.get("error")
    assert isinstance(error, DomainError), out
    assert (error.code, error.kind) == ("window_closed", "forbidden")  # 403 in the API
    after_refused()
    assert session_replay(session_id=world.sessions[0].pk).problems == []
    log_ok()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_write_that_commits_before_the_close_locks_is_what_the_close_uses(name, monkeypatch):
    world, write, _, after_used = SCENARIOS[name]()
    written, closing = Stage(), Stage()

    for module in (carts, allocation):
        real_recheck = module.session_open_recheck

        def recheck(*, _real=real_recheck, **kwargs):
            _real(**kwargs)
            if _in(WRITER):  # holds the family lock, re-check passed, not yet committed
                written.reached.set()
                assert written.go.wait(30)

        monkeypatch.setattr(module, "session_open_recheck", recheck)
    real_lock_rows = allocation.lock_rows

    def lock_rows(*args, **kwargs):
        if _in(CLOSER):
            closing.reached.set()  # about to lock the session's families
        return real_lock_rows(*args, **kwargs)

    monkeypatch.setattr(allocation, "lock_rows", lock_rows)

    wrote, closed = {}, {}
    writer = _run(WRITER, write, wrote)
    assert written.reached.wait(30)
    closer = _run(CLOSER, lambda: _close(world), closed)
    assert closing.reached.wait(30)
    written.go.set()
    writer.join(30)
    closer.join(30)
    assert "error" not in wrote, wrote
    assert "error" not in closed and closed["result"] is not None, closed
    after_used()
    assert session_replay(session_id=world.sessions[0].pk).problems == []
    log_ok()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_control_without_the_recheck_a_late_write_answers_a_stale_success(name, monkeypatch):
    """Today's behaviour: the write's window check used the clock read before the end, so
    with no re-check under the lock it succeeds after the close has used the old state."""
    world, write, after_refused, _ = SCENARIOS[name]()
    for module in (carts, allocation):
        monkeypatch.setattr(module, "session_open_recheck", lambda **kwargs: None)
    out = _late_write(world, write, monkeypatch)
    assert "error" not in out, out  # the stale 200
    family, s1 = world.families[0], world.sessions[0]
    if name in ("move", "sync"):
        problems = session_replay(session_id=s1.pk).problems
        assert any("stored formal cart differs from the ledger" in p for p in problems)
    elif name == "enter":
        seat = Seat.objects.get(session=s1, family=family)
        assert seat.entered_at is not None and seat.outcome == Seat.Outcome.ABSENT
        assert LedgerEntry.objects.filter(kind="absent").count() == 1
    else:
        assert GiveUp.objects.filter(family=family).exists()  # gave up after the close,
        assert Seat.objects.get(session=s1, family=family).outcome == Seat.Outcome.NO_UNIT
        close = LedgerEntry.objects.get(kind="session_close")
        assert close.payload["gave_up"] == 0  # which never counted it
        sequence_pending()
        close.refresh_from_db()
        assert LedgerEntry.objects.get(kind="give_up").index > close.index
