"""The migrations that encrypt personal data at rest (accounts 0005–0007, signing 0009–0011),
run both ways over real rows: going back writes the plaintext back, coming forward again
encrypts every row (the field history included) and keeps every value."""

from __future__ import annotations

import pytest
import time_machine
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from accounts.models import Applicant
from accounts.services import applicant_get_by_id_number
from core.context import RequestContext
from signing.lease.services import lease_start
from signing.models import CardPhoto, Lease
from tests.signing.lease_worlds import (
    ACCOUNT,
    NOW,
    lease_info_filled,
    make_lease_world,
)

pytestmark = pytest.mark.django_db(transaction=True)
BEFORE = [("accounts", "0004_login_session"), ("signing", "0008_deposit_refund")]
CTX = RequestContext(ip="10.0.0.4", user_agent="pytest")


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


def _leaves() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def _one(sql: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def test_encryption_migrations_go_back_and_forth_over_real_rows():
    with time_machine.travel(NOW, tick=False):
        world = make_lease_world()
        lease = lease_start(applicant=world.applicant, ctx=CTX, now=NOW)
        lease_info_filled(world=world, lease=lease, account_number=ACCOUNT, ctx=CTX, now=NOW)
    number = world.applicant.id_number
    image = CardPhoto.objects.filter(lease=lease).order_by("pk").first().image
    leaves = _leaves()
    try:
        _migrate(BEFORE)
        # Back: the plaintext columns hold the values again.
        assert _one(
            "SELECT id_number FROM accounts_applicant WHERE id = %s", [world.applicant.pk]
        ) == (number,)
        assert _one("SELECT account_number FROM signing_lease WHERE id = %s", [lease.pk]) == (
            ACCOUNT,
        )
        assert (
            bytes(
                _one(
                    "SELECT image FROM signing_cardphoto WHERE lease_id = %s ORDER BY id",
                    [lease.pk],
                )[0]
            )
            == image
        )
        assert (
            _one(
                "SELECT count(*) FROM accounts_historicalapplicant WHERE id_number = %s", [number]
            )[0]
            >= 1
        )
    finally:
        _migrate(leaves)
    # Forward again: ciphertext and hashes only, every value readable.
    raw_id, raw_encrypted = _one(
        "SELECT id_number, id_number_encrypted FROM accounts_applicant WHERE id = %s",
        [world.applicant.pk],
    )
    assert raw_id.startswith("xx") and number.encode() not in bytes(raw_encrypted)
    assert _one(
        "SELECT count(*) FROM accounts_historicalapplicant WHERE id_number = %s", [number]
    ) == (0,)
    assert ACCOUNT.encode() not in bytes(
        _one("SELECT account_number FROM signing_lease WHERE id = %s", [lease.pk])[0]
    )
    assert b"\xff\xd8\xff" not in bytes(
        _one("SELECT image FROM signing_cardphoto WHERE lease_id = %s ORDER BY id", [lease.pk])[0]
    )
    assert applicant_get_by_id_number(id_number=number).pk == world.applicant.pk
    assert Applicant.history.model.objects.filter(id=world.applicant.pk).first().id_number == number
    assert Lease.objects.get(pk=lease.pk).account_number == ACCOUNT
    assert CardPhoto.objects.filter(lease=lease).order_by("pk").first().image == image
