"""Row locks wait at most LOCK_TIMEOUT_MS (core.locking): a request that cannot take its lock
in time is refused whole with 503 `busy` and Retry-After, never queued without bound and never
a 500. Two real PostgreSQL connections: a holder thread keeps the family's row lock while the
API request on the test's connection waits for it."""

from __future__ import annotations

import pathlib
import re
import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client

from accounts.models import Family
from accounts.services import applicant_user_ensure
from core.locking import Busy, lock_first, lock_timeout_ms
from selection import carts
from selection.models import Allocation, LedgerEntry, Unit
from tests.worlds import enter, make_world, preselect

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = pathlib.Path(__file__).resolve().parents[2]


class RowHolder:
    """Holds `SELECT ... FOR UPDATE` on one family row in another thread (own connection)
    until released."""

    def __init__(self, family_pk: int) -> None:
        self.family_pk = family_pk
        self.locked, self.release = threading.Event(), threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            with transaction.atomic():
                Family.objects.select_for_update().filter(pk=self.family_pk).first()
                self.locked.set()
                assert self.release.wait(30)
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)
            self.locked.set()
        finally:
            connection.close()

    def __enter__(self) -> RowHolder:
        self.thread.start()
        assert self.locked.wait(30)
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.thread.join(30)
        assert not self.errors


def _confirm_world():
    world = make_world(families=1, units=1, sessions=1)
    family, unit, s1 = world.families[0], world.units[0], world.sessions[0]
    preselect(family, world.round, [unit])
    enter(family, world.round, s1)
    carts.cart_sync(family=family, round_id=world.round.pk, now=s1.starts_at)
    client = Client()
    client.force_login(applicant_user_ensure(applicant=family.main_applicant).user)
    return world, client


def _confirm(world, client):
    return client.post(
        f"/api/v1/selection/{world.round.pk}/confirm/",
        {"unit_id": world.units[0].pk, "idempotency_key": "lock-timeout-0001"},
        content_type="application/json",
    )


def test_a_held_family_lock_answers_503_busy_with_retry_after(settings):
    settings.LOCK_TIMEOUT_MS = 200
    world, client = _confirm_world()
    s1 = world.sessions[0]
    with time_machine.travel(s1.starts_at + timedelta(seconds=10), tick=True):
        with RowHolder(world.families[0].pk):
            response = _confirm(world, client)
        assert response.status_code == 503
        assert response["Retry-After"] == "1"
        assert response.json() == {
            "error": {"code": "busy", "message": "系统繁忙，请稍后重试", "fields": {}}
        }
        # Refused whole: nothing allocated, nothing ledgered, the unit still free.
        assert not Allocation.objects.exists()
        assert not LedgerEntry.objects.filter(kind="confirm").exists()
        assert Unit.objects.get(pk=world.units[0].pk).status == Unit.Status.AVAILABLE

        # Control: the same request once the lock is free succeeds.
        response = _confirm(world, client)
        assert response.status_code == 201, response.json()
        assert Allocation.objects.filter(family=world.families[0]).count() == 1


def test_without_the_timeout_the_request_waits_for_the_holder(settings):
    """Control for the bound itself: with a long timeout the same request does not fail at
    200 ms but waits for the holder and then succeeds, so the 503 above comes from the
    timeout, not from anything else about the held row."""
    settings.LOCK_TIMEOUT_MS = 30_000
    world, client = _confirm_world()
    s1 = world.sessions[0]
    results = []
    with time_machine.travel(s1.starts_at + timedelta(seconds=10), tick=True):
        with RowHolder(world.families[0].pk) as holder:
            waiting = threading.Thread(
                target=lambda: (results.append(_confirm(world, client)), connection.close())
            )
            waiting.start()
            # The request is queued behind the holder: its backend waits on a lock.
            with connection.cursor() as cursor:
                for _ in range(3000):
                    cursor.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"
                    )
                    if cursor.fetchone()[0]:
                        break
                    holder.thread.join(0.01)
                else:
                    pytest.fail("the request never waited on the row lock")
        waiting.join(30)
    assert results[0].status_code == 201


def test_the_service_raises_busy_and_the_lock_helper_sets_the_bound(settings):
    settings.LOCK_TIMEOUT_MS = 150
    world = make_world(families=1, units=1, sessions=1)
    family = world.families[0]
    with RowHolder(family.pk):
        with pytest.raises(Busy) as caught:
            with transaction.atomic():
                lock_first(Family.objects.filter(pk=family.pk))
        assert caught.value.kind == "unavailable" and caught.value.retry_after == 1
        with transaction.atomic():
            lock_first(Family.objects.filter(pk=world.families[0].pk + 10_000))  # no row
            with connection.cursor() as cursor:
                cursor.execute("SHOW lock_timeout")
                assert cursor.fetchone()[0] == f"{lock_timeout_ms()}ms"
    # SET LOCAL ends with the transaction: the connection's own setting is untouched.
    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "0"


def test_every_hand_written_row_lock_goes_through_the_helper():
    offenders = []
    for app in ("accounts", "selection", "signing", "sms", "core", "mobile_api", "events"):
        for path in (ROOT / app).rglob("*.py"):
            if path.name == "locking.py" or "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"\.select_for_update\(", line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert offenders == []
