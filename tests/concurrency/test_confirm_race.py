"""200 families confirm at once over 20 units, each request on its own PostgreSQL connection:
no unit twice, no family twice, every loser a 409. The control case removes the row locks
and the unique constraints and shows a double allocation happening."""

from __future__ import annotations

import importlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client, override_settings

from accounts.services import applicant_user_ensure
from selection import allocation, carts
from selection.models import Allocation, CartItem, LedgerEntry, Seat, Unit
from tests.factories import log_ok
from tests.worlds import enter, make_world, preselect

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

FAMILIES, UNITS = 200, 20
WORKERS = 50  # in flight at once (the server allows 100 connections); each request opens its own


def race_world():
    world = make_world(families=FAMILIES, units=UNITS, sessions=1, per_session=FAMILIES)
    s1 = world.sessions[0]
    CartItem.objects.bulk_create(
        CartItem(
            family=f,
            round=world.round,
            kind="formal",
            unit=world.units[i % UNITS],
            position=1,
            added_at=s1.starts_at,
        )
        for i, f in enumerate(world.families)
    )
    Seat.objects.filter(session=s1).update(entered_at=s1.starts_at)
    return world


def test_two_hundred_parallel_confirms_over_twenty_units():
    world = race_world()
    s1 = world.sessions[0]
    clients = []
    for family in world.families:
        client = Client()
        client.force_login(applicant_user_ensure(applicant=family.main_applicant).user)
        clients.append(client)
    url = f"/api/v1/selection/{world.round.pk}/confirm/"
    start = threading.Barrier(WORKERS)

    def confirm(i: int):
        if i < WORKERS:
            start.wait()
        try:
            response = clients[i].post(
                url,
                {"unit_id": world.units[i % UNITS].pk, "idempotency_key": f"race-{i:06d}"},
                content_type="application/json",
            )
            return response.status_code, response.json()
        finally:
            connection.close()

    with time_machine.travel(s1.starts_at + timedelta(seconds=30), tick=True):
        with ThreadPoolExecutor(WORKERS) as pool:
            results = list(pool.map(confirm, range(FAMILIES)))

    statuses = [status for status, _ in results]
    assert statuses.count(201) == UNITS
    assert statuses.count(409) == FAMILIES - UNITS
    assert {body["error"]["code"] for status, body in results if status == 409} == {"unit_taken"}
    allocations = list(Allocation.objects.values_list("unit_id", "family_id"))
    assert len(allocations) == UNITS
    assert len({unit for unit, _ in allocations}) == UNITS
    assert len({family for _, family in allocations}) == UNITS
    log_ok()
    assert LedgerEntry.objects.filter(kind="confirm").count() == UNITS


def _unique_constraints(table: str) -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'u'",
            [table],
        )
        return cursor.fetchall()


RENDEZVOUS = 4242  # an advisory lock id: the lock-free claim waits on it after its checks


def _orm_claim_without_locks(monkeypatch):
    """The ORM claim with its row locks gone, both callers held after their checks."""
    from django.db.models import QuerySet

    monkeypatch.setattr(QuerySet, "select_for_update", lambda self, **kw: self)
    both_checked = threading.Barrier(2, timeout=10)
    real_entry = allocation._confirm_entry

    def entry_after_barrier(**kwargs):
        both_checked.wait()  # both transactions have seen the unit available
        return real_entry(**kwargs)

    monkeypatch.setattr(allocation, "_confirm_entry", entry_after_barrier)
    return (lambda: None), (lambda: None)


def _sql_claim_without_locks(monkeypatch):
    """selection_claim with FOR UPDATE taken out and, after its checks, a wait on an advisory
    lock this test holds until both callers wait on it. Returns (let them go, put it back)."""
    original = importlib.import_module("selection.migrations.0009_claim_function").CLAIM
    lock_free = original.replace(" FOR UPDATE;", ";").replace(
        "    INSERT INTO selection_ledgerentry",
        f"    PERFORM pg_advisory_lock_shared({RENDEZVOUS});\n"
        "    INSERT INTO selection_ledgerentry",
        1,
    )
    assert lock_free.count("FOR UPDATE") == 0 and "pg_advisory_lock_shared" in lock_free
    with connection.cursor() as cursor:
        cursor.execute(lock_free, None)
        cursor.execute("SELECT pg_advisory_lock(%s)", [RENDEZVOUS])

    def release():
        deadline = time.monotonic() + 10
        with connection.cursor() as cursor:
            while time.monotonic() < deadline:  # both claims past their checks, waiting
                cursor.execute(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND objid = %s AND NOT granted",
                    [RENDEZVOUS],
                )
                if cursor.fetchone()[0] == 2:
                    break
            cursor.execute("SELECT pg_advisory_unlock(%s)", [RENDEZVOUS])

    def restore():
        with connection.cursor() as cursor:
            cursor.execute(original, None)

    return release, restore


@pytest.mark.parametrize("claim_sql", [True, False], ids=["sql", "orm"])
def test_control_without_locks_and_constraints_a_unit_is_allocated_twice(monkeypatch, claim_sql):
    """Two families pass the availability check before either writes: with the family and
    unit locks gone and the unique constraints dropped, both get the unit. This is the race
    the test above would catch if the locks or constraints were removed — in the one-statement
    claim (selection_claim) and in the ORM version alike."""
    world = make_world(families=2, units=1, sessions=1)
    s1, unit = world.sessions[0], world.units[0]
    for family in world.families:
        preselect(family, world.round, [unit])
        enter(family, world.round, s1)
        carts.cart_sync(family=family, round_id=world.round.pk, now=s1.starts_at)

    settings_override = override_settings(SELECTION_CLAIM_SQL=claim_sql)
    settings_override.enable()
    without_locks = _sql_claim_without_locks if claim_sql else _orm_claim_without_locks
    release, restore = without_locks(monkeypatch)
    dropped = _unique_constraints("selection_allocation")
    with connection.cursor() as cursor:
        for name, _ in dropped:
            cursor.execute(f'ALTER TABLE selection_allocation DROP CONSTRAINT "{name}"')
    try:
        errors = []

        def go(family):
            try:
                allocation.selection_confirm(
                    family=family,
                    round_id=world.round.pk,
                    unit_id=unit.pk,
                    idempotency_key=f"ctl-{family.pk:08d}",
                    now=s1.starts_at + timedelta(seconds=5),
                )
            except Exception as exc:  # collected and asserted below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=go, args=(f,)) for f in world.families]
        for thread in threads:
            thread.start()
        release()
        for thread in threads:
            thread.join()
        assert not errors
        assert Allocation.objects.filter(unit=unit).count() == 2  # the double allocation
    finally:
        settings_override.disable()
        restore()
        with transaction.atomic():  # one commit: the unit/allocation guard checks it whole
            Allocation.objects.all().delete()
            Unit.objects.filter(pk=unit.pk).update(status=Unit.Status.AVAILABLE)
        with connection.cursor() as cursor:
            for name, definition in dropped:
                cursor.execute(
                    f'ALTER TABLE selection_allocation ADD CONSTRAINT "{name}" {definition}'
                )
    assert len(_unique_constraints("selection_allocation")) == len(dropped)
