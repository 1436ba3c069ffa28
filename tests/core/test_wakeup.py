"""The background loops' wake-up (core/wakeup.py): a trigger NOTIFYs at the commit of the
rows a loop works on, so the relay and the sequencer look as rows commit instead of asking the
database ten times a second.

The loop tests set the loops' idle look to a minute: whatever they see within the test's
10 s bound came from a notification. Their one observation window (0.5 s with nothing
committed) is the control: the loops before the wake-up looked every tick (25 times in it)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction

from core import loops
from core.wakeup import EVENTS_CHANNEL, LEDGER_CHANNEL, Wakeup
from events.models import Event
from realtime import relay
from selection import allocation, carts, translog
from selection.models import Allocation, LedgerEntry, TreeHead
from tests.realtime.test_outbox_relay import ping_event, record  # noqa: F401 (a fixture)
from tests.worlds import enter, make_world, preselect

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NEVER = threading.Event()  # a stop that is never set: waits end by notification or timeout
TICK = 0.02
BOUND = 10  # seconds: how long a test waits for what a notification brings


class Rollback(Exception):
    pass


def ready_to_confirm():
    """A family in its formal window with the round's one unit in its cart."""
    world = make_world(families=1, units=1, sessions=1)
    family, rnd, session = world.families[0], world.round, world.sessions[0]
    preselect(family, rnd, world.units)
    enter(family, rnd, session)
    carts.cart_sync(family=family, round_id=rnd.pk, now=session.starts_at)
    return world


def confirm(world, key: str = "wakeup-0001") -> None:
    session = world.sessions[0]
    allocation.selection_confirm(
        family=world.families[0],
        round_id=world.round.pk,
        unit_id=world.units[0].pk,
        idempotency_key=key,
        now=session.starts_at + timedelta(seconds=5),
    )


def test_a_confirm_wakes_the_relay_and_the_sequencer_at_its_commit_and_not_before():
    world = ready_to_confirm()
    events, ledger = Wakeup.open(EVENTS_CHANNEL), Wakeup.open(LEDGER_CHANNEL)
    try:
        # Control: a confirm rolled back notifies nobody.
        with pytest.raises(Rollback), transaction.atomic():
            confirm(world)
            raise Rollback
        assert not Allocation.objects.exists()
        assert events.wait(NEVER, 0.3) is False
        assert ledger.wait(NEVER, 0.3) is False

        with transaction.atomic():
            confirm(world)
            # Inserted, not yet committed: nothing is delivered yet.
            assert events.wait(NEVER, 0.3) is False
            assert ledger.wait(NEVER, 0.3) is False
        assert events.wait(NEVER, BOUND) is True
        assert ledger.wait(NEVER, BOUND) is True
        # Everything that commit sent was taken with that one wake-up.
        assert events.wait(NEVER, 0.3) is False
    finally:
        events.close()
        ledger.close()


def test_a_dropped_listening_connection_listens_again_and_hears_the_next_commit():
    waker = Wakeup.open(EVENTS_CHANNEL)
    try:
        pid = waker._db.connection.info.backend_pid
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        # Lost: the caller is told to look now (what was committed meanwhile).
        assert waker.wait(NEVER, BOUND) is True
        assert not waker.listening
        assert waker.wait(NEVER, BOUND) is True  # listening again: look once more
        assert waker.listening
        record("round.1", 1)
        assert waker.wait(NEVER, BOUND) is True
    finally:
        waker.close()


def test_a_database_that_cannot_be_reached_leaves_the_loop_to_its_own_pace(monkeypatch, caplog):
    """The listening connection cannot open (PostgreSQL away): `wait` returns at once, so the
    loop keeps its tick as without a wake-up; once the database answers it listens again.
    The outage is logged once, not on each of the loop's ten tries a second, and its end."""
    from django.db import OperationalError

    real_create = connections.create_connection
    down = True

    def create(alias):
        db = real_create(alias)
        if down:

            def refuse():
                raise OperationalError("connection refused")

            db.ensure_connection = refuse
        return db

    monkeypatch.setattr(connections, "create_connection", create)
    caplog.set_level(logging.WARNING, logger="anju.wakeup")
    waker = Wakeup.open(EVENTS_CHANNEL)
    try:
        assert not waker.listening
        assert waker.wait(NEVER, 60) is False  # at once, not after a minute
        assert waker.wait(NEVER, 60) is False
        assert not waker.listening
        assert [r.getMessage().split(":")[0] for r in caplog.records] == [
            f"cannot listen on {EVENTS_CHANNEL} (looking on every tick)"
        ]
        down = False
        assert waker.wait(NEVER, 60) is True  # listening again: look now
        assert waker.listening
        assert caplog.records[-1].getMessage() == f"listening on {EVENTS_CHANNEL} again"
    finally:
        waker.close()


def test_sqlite_has_no_wakeup():
    class SqliteLike:
        vendor = "sqlite"

    original = connections["default"]
    try:
        connections["default"] = SqliteLike()
        assert Wakeup.open(EVENTS_CHANNEL) is None
    finally:
        connections["default"] = original


def run_in_thread(loop, **kwargs):
    """`loop(stop=..., **kwargs)` on a thread, its database connection closed when it ends."""
    stop = threading.Event()

    def target() -> None:
        try:
            loop(stop=stop, **kwargs)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return stop, thread


class Passes:
    """Each pass of a loop, as the size of what its step (`module.name`, wrapped) returned:
    `first` is set by the first pass, `worked` by any later pass that found work."""

    def __init__(self, monkeypatch, module, name: str) -> None:
        self.sizes: list[int] = []
        self.first, self.worked = threading.Event(), threading.Event()
        real = getattr(module, name)

        def counted(**kwargs):
            result = real(**kwargs)
            size = result if isinstance(result, int) else len(result)
            self.sizes.append(size)
            self.first.set()
            if len(self.sizes) > 1 and size:
                self.worked.set()
            return result

        monkeypatch.setattr(module, name, counted)


def test_an_idle_relay_does_not_look_until_an_event_commits_then_publishes_it(monkeypatch):
    record("round.1", 2)  # committed before the relay starts
    monkeypatch.setattr(relay, "IDLE_SECONDS", 60)
    monkeypatch.setattr(relay, "HEADS_EVERY_SECONDS", 600)
    passes = Passes(monkeypatch, relay, "relay_once")
    stop, thread = run_in_thread(relay.relay_run, tick=TICK)
    try:
        assert passes.first.wait(BOUND)
        assert passes.sizes == [2]  # what was committed before it started
        assert not passes.worked.wait(0.5)  # the control window: nothing committed, no look
        assert passes.sizes == [2]
        record("round.1", 1)
        assert passes.worked.wait(BOUND)
        assert not Event.objects.filter(published_at__isnull=True).exists()
        assert passes.sizes == [2, 1]
    finally:
        stop.set()
        thread.join(BOUND)
    assert not thread.is_alive()


def test_an_idle_sequencer_signs_a_confirm_as_it_commits(monkeypatch):
    world = ready_to_confirm()
    monkeypatch.setattr(loops, "IDLE_SECONDS", 60)
    passes = Passes(monkeypatch, translog, "sequence_pending")
    stop, thread = run_in_thread(translog.sequencer_run, tick=TICK)
    try:
        assert passes.first.wait(BOUND)
        assert not passes.worked.wait(0.5)  # the control window: nothing committed, no look
        assert passes.sizes == [0]
        confirm(world)
        assert passes.worked.wait(BOUND)
        assert passes.sizes == [0, 1]
        entry = LedgerEntry.objects.get(round_id=world.round.pk)
        assert entry.index == 0
        assert TreeHead.objects.get(round_id=world.round.pk).size == 1
    finally:
        stop.set()
        thread.join(BOUND)
    assert not thread.is_alive()
