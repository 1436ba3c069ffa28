"""Rank order holds across back-to-back sessions (issue 12, item 0).

Session 2 starts the instant session 1 ends. Family A (session 1, better rank) entered with
3-1201 in its formal cart and did not confirm; family B (session 2) has the same unit first.
B confirms 50 ms into its window, before the clock has closed session 1 (pinned time): the
confirm closes session 1 first, with the clock's own exactly-once close, so A is
auto-assigned 3-1201 and B is refused `unit_taken`. The same holds after the clock's close
committed and while the clock is closing. The control takes the inline close away and shows
today's race: B takes the unit, and A, processed later, gets nothing.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client

from accounts.services import applicant_user_ensure
from selection import allocation, carts
from selection.models import Allocation, CartItem, LedgerEntry, Seat, Session
from selection.replay import session_replay
from tests.factories import log_ok
from tests.worlds import enter, make_world, preselect

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def boundary_world():
    world = make_world(families=2, units=2, sessions=2, per_session=1)
    s1, s2 = world.sessions
    Session.objects.filter(pk=s2.pk).update(
        starts_at=s1.ends_at, ends_at=s1.ends_at + (s1.ends_at - s1.starts_at)
    )
    s2.refresh_from_db()
    a, b = world.families
    unit = world.units[0]
    preselect(a, world.round, [unit])
    enter(a, world.round, s1)
    carts.cart_sync(family=a, round_id=world.round.pk, now=s1.starts_at)
    # B's formal cart as its page left it; written directly so that nothing of B's setup
    # runs through a service at the boundary.
    CartItem.objects.create(
        family=b, round=world.round, kind="formal", unit=unit, position=1, added_at=s2.starts_at
    )
    Seat.objects.filter(session=s2, family=b).update(entered_at=s2.starts_at)
    client = Client()
    client.force_login(applicant_user_ensure(applicant=b.main_applicant).user)
    return world, client


def _confirm(world, client):
    return client.post(
        f"/api/v1/selection/{world.round.pk}/confirm/",
        {"unit_id": world.units[0].pk, "idempotency_key": "boundary-0001"},
        content_type="application/json",
    )


def _rank_order_kept(world, response):
    a, b = world.families
    s1 = world.sessions[0]
    assert response.status_code == 409, response.json()
    assert response.json()["error"]["code"] == "unit_taken"
    assert Allocation.objects.get(family=a).unit_id == world.units[0].pk
    assert Allocation.objects.get(family=a).how == Allocation.How.AUTO
    assert not Allocation.objects.filter(family=b).exists()
    assert LedgerEntry.objects.filter(kind="session_close", session_id=s1.pk).count() == 1
    assert session_replay(session_id=s1.pk).problems == []
    log_ok()


def test_a_confirm_at_the_boundary_before_the_clock_closes_the_earlier_session():
    world, client = boundary_world()
    s1, s2 = world.sessions
    assert Session.objects.get(pk=s1.pk).status != Session.Status.CLOSED
    with time_machine.travel(s2.starts_at + timedelta(milliseconds=50), tick=False):
        response = _confirm(world, client)
    _rank_order_kept(world, response)
    assert Session.objects.get(pk=s1.pk).status == Session.Status.CLOSED
    # The clock, ticking late, finds nothing left to do (exactly once).
    assert allocation.sessions_close_due(now=s2.starts_at + timedelta(milliseconds=230)) == []
    assert LedgerEntry.objects.filter(kind="session_close", session_id=s1.pk).count() == 1


def test_a_confirm_after_the_clock_closed_the_earlier_session():
    world, client = boundary_world()
    s1, s2 = world.sessions
    assert [r.session_id for r in allocation.sessions_close_due(now=s1.ends_at)] == [s1.pk]
    with time_machine.travel(s2.starts_at + timedelta(milliseconds=50), tick=False):
        response = _confirm(world, client)
    _rank_order_kept(world, response)


def test_a_confirm_while_the_clock_is_closing_the_earlier_session_waits_for_it(monkeypatch):
    world, client = boundary_world()
    s1, s2 = world.sessions
    closing, go = threading.Event(), threading.Event()
    real_lock_rows = allocation.lock_rows

    def lock_rows(*args, **kwargs):
        if threading.current_thread().name == "clock" and not closing.is_set():
            closing.set()  # the clock holds session 1's row, about to lock its families
            assert go.wait(30)
        return real_lock_rows(*args, **kwargs)

    monkeypatch.setattr(allocation, "lock_rows", lock_rows)
    out = {}

    def clock():
        try:
            out["report"] = allocation.session_close(session_id=s1.pk, now=s1.ends_at)
        finally:
            connection.close()

    thread = threading.Thread(target=clock, name="clock")
    thread.start()
    assert closing.wait(30)
    confirmed = {}

    def confirm():
        try:
            with time_machine.travel(s2.starts_at + timedelta(milliseconds=50), tick=False):
                confirmed["response"] = _confirm(world, client)
        finally:
            connection.close()

    request = threading.Thread(target=confirm, name="request")
    request.start()
    # The request queues behind the clock's lock on session 1 (seen in pg_stat_activity).
    with connection.cursor() as cursor:
        for _ in range(3000):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                break
            go.wait(0.01)
        else:
            pytest.fail("the confirm never waited for the clock's close")
    assert request.is_alive()
    go.set()
    thread.join(30)
    request.join(30)
    assert out["report"] is not None  # the clock's close did the work, once
    _rank_order_kept(world, confirmed["response"])


def test_control_without_the_inline_close_the_later_family_takes_the_unit(monkeypatch):
    monkeypatch.setattr(allocation, "earlier_sessions_close_due", lambda **kwargs: None)
    world, client = boundary_world()
    a, b = world.families
    s1, s2 = world.sessions
    with time_machine.travel(s2.starts_at + timedelta(milliseconds=50), tick=False):
        response = _confirm(world, client)
    assert response.status_code == 201  # B, ranked after A, takes A's first choice
    allocation.sessions_close_due(now=s2.starts_at + timedelta(milliseconds=230))
    assert Allocation.objects.get(family=b).unit_id == world.units[0].pk
    assert not Allocation.objects.filter(family=a).exists()
    assert Seat.objects.get(session=s1, family=a).outcome == Seat.Outcome.NO_UNIT


def test_a_formal_cart_write_at_the_boundary_also_closes_the_earlier_session_first():
    world, _ = boundary_world()
    b = world.families[1]
    s1, s2 = world.sessions
    carts.cart_remove(
        family=b,
        round_id=world.round.pk,
        kind="formal",
        unit_id=world.units[0].pk,
        now=s2.starts_at + timedelta(milliseconds=50),
    )
    assert Session.objects.get(pk=s1.pk).status == Session.Status.CLOSED
    assert Allocation.objects.get(family=world.families[0]).unit_id == world.units[0].pk
    assert session_replay(session_id=s1.pk).problems == []
