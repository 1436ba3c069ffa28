"""Rank order at a back-to-back boundary with the real clock loop (`selection.clock.clock_run`)
on the real wall clock (issue 12 item 0): the world of test_session_boundary, moved so that
session 1 ends (and session 2 starts) a moment from now.

Family B (session 2) confirms A's first choice the instant its window opens, while the clock is
slow: its close of session 1 is held until B's answer is back (the worst case the issue
measured, a close 16–230 ms late). With one clock, with two clocks, and with a clock that is
stopped before the boundary and restarted after it, A (better rank) is auto-assigned the unit
and B is refused; session 1 closes exactly once. The control takes the inline close away and
shows the race: B takes the unit and A gets nothing.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import F
from django.utils import timezone

from selection import allocation
from selection.clock import clock_run
from selection.models import Allocation, Seat, Session
from tests.concurrency.test_session_boundary import _confirm, _rank_order_kept, boundary_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

LEAD = timedelta(seconds=1)  # setup time before the boundary


class Clocks:
    """Clock loops in threads, each named clock-<n>, ticking every 20 ms on the real time."""

    def __init__(self):
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.ticked = threading.Event()  # a whole tick ran after `armed` was set
        self.armed = threading.Event()
        self._saw_armed: set[str] = set()  # clock threads that ended a tick after arming

    def start(self, count: int = 1) -> None:
        for _ in range(count):
            thread = threading.Thread(
                target=self._run, name=f"clock-{len(self.threads)}", daemon=True
            )
            self.threads.append(thread)
            thread.start()

    def _run(self) -> None:
        try:
            clock_run(stop=self.stop, tick=0.02, after_tick=self._after_tick)
        finally:
            connection.close()

    def _after_tick(self, opened, closed) -> None:
        # Not the tick that ends first after arming: on a busy machine it may have read the
        # time before the boundary and found nothing due. The thread's next tick began after
        # arming, so after the boundary.
        name = threading.current_thread().name
        if name in self._saw_armed:
            self.ticked.set()
        elif self.armed.is_set():
            self._saw_armed.add(name)

    def halt(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=10)
        self.threads, self.stop = [], threading.Event()


def real_time_world():
    world, client = boundary_world()
    s1 = world.sessions[0]
    s1.refresh_from_db()
    shift = timezone.now() + LEAD - s1.ends_at
    Session.objects.update(starts_at=F("starts_at") + shift, ends_at=F("ends_at") + shift)
    for session in world.sessions:
        session.refresh_from_db()
    return world, client


def hold_the_clocks_close(monkeypatch, session_id: int) -> threading.Event:
    """A slow clock: a clock thread's close of `session_id` waits until the returned gate
    opens. Requests are never held."""
    gate = threading.Event()
    real_close = allocation.session_close

    def slow_close(*, session_id: int, now):
        if threading.current_thread().name.startswith("clock") and session_id == held:
            assert gate.wait(10), "the test never opened the gate"
        return real_close(session_id=session_id, now=now)

    held = session_id
    monkeypatch.setattr(allocation, "session_close", slow_close)
    return gate


def confirm_at_the_boundary(world, client):
    boundary = world.sessions[1].starts_at
    while timezone.now() < boundary:  # the real clock reaching the boundary (no sleep)
        pass
    return _confirm(world, client)


def play(monkeypatch, *, clocks: int, restart: bool = False):
    world, client = real_time_world()
    s1 = world.sessions[0]
    gate = hold_the_clocks_close(monkeypatch, s1.pk)
    loops = Clocks()
    loops.start(clocks)
    if restart:
        loops.halt()  # the clock goes down before the boundary...
    response = confirm_at_the_boundary(world, client)
    if restart:
        loops.start(clocks)  # ...and comes back after B's answer
    loops.armed.set()
    gate.set()
    assert loops.ticked.wait(10), "no clock tick after the boundary"
    loops.halt()
    assert Session.objects.get(pk=s1.pk).status == Session.Status.CLOSED
    return world, response


@pytest.mark.parametrize(
    "clocks,restart", [(1, False), (2, False), (1, True)], ids=["slow", "two", "restart"]
)
def test_rank_order_holds_with_the_real_clock_loop(monkeypatch, clocks, restart):
    world, response = play(monkeypatch, clocks=clocks, restart=restart)
    _rank_order_kept(world, response)


def test_control_without_the_inline_close_the_real_clock_loop_loses_rank_order(monkeypatch):
    monkeypatch.setattr(allocation, "earlier_sessions_close_due", lambda **kwargs: None)
    world, response = play(monkeypatch, clocks=1)
    a, b = world.families
    assert response.status_code == 201  # B, ranked after A, takes A's first choice
    assert Allocation.objects.get(family=b).unit_id == world.units[0].pk
    assert not Allocation.objects.filter(family=a).exists()
    assert Seat.objects.get(session=world.sessions[0], family=a).outcome == Seat.Outcome.NO_UNIT
