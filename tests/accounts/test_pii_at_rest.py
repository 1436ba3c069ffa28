"""Personal data at rest (issue 15 item 5): the tables hold no plaintext ID number, bank
account number or card image, ID numbers are found through the keyed hash, and key rotation
re-encrypts everything so that the retired key can go."""

from __future__ import annotations

import secrets

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from accounts.models import Applicant
from accounts.services import applicant_get_by_id_number
from core import pii
from core.context import RequestContext
from signing.lease.services import lease_start
from signing.models import CardPhoto, Lease
from tests.factories import ApplicantFactory, id_number_for
from tests.signing.lease_worlds import (
    ACCOUNT,
    NOW,
    lease_info_filled,
    make_lease_world,
)

CTX = RequestContext(ip="10.0.0.1", user_agent="pytest")


@pytest.fixture
def lease(db):
    with time_machine.travel(NOW, tick=False):
        world = make_lease_world()
        lease = lease_start(applicant=world.applicant, ctx=CTX, now=NOW)
        return lease_info_filled(world=world, lease=lease, account_number=ACCOUNT, ctx=CTX, now=NOW)


def _raw(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _as_bytes(value) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode()
    return bytes(value)


def test_the_tables_hold_no_plaintext_id_number_account_number_or_image(lease):
    applicant = lease.agreement.family.main_applicant
    number = applicant.id_number
    assert len(number) == 18
    photo = CardPhoto.objects.filter(lease=lease).first()
    image = photo.image
    assert image[:3] == b"\xff\xd8\xff"  # the model still gives the JPEG back

    # Every column of every row of the tables that hold them, read with a cursor.
    tables = {
        Applicant._meta.db_table,
        Applicant.history.model._meta.db_table,
        Lease._meta.db_table,
        CardPhoto._meta.db_table,
    }
    for table in tables:
        for row in _raw(f'SELECT * FROM "{table}"'):  # noqa: S608 (our own table names)
            for value in row:
                raw = _as_bytes(value) if isinstance(value, bytes | memoryview | str) else b""
                assert number.encode() not in raw, table
                assert ACCOUNT.encode() not in raw, table
                assert b"\xff\xd8\xff" not in raw, table  # no JPEG
                assert image[100:140] not in raw, table
    # The lookup column holds the keyed hash, the encrypted column ciphertext.
    [(hashed, encrypted)] = _raw(
        "SELECT id_number, id_number_encrypted FROM accounts_applicant WHERE id = %s",
        [applicant.pk],
    )
    assert hashed == pii.search_hash(number) and hashed.startswith("xx") and len(hashed) == 66
    assert number.encode() not in bytes(encrypted)
    [(account,)] = _raw("SELECT account_number FROM signing_lease WHERE id = %s", [lease.pk])
    assert ACCOUNT.encode() not in bytes(account)
    assert Lease.objects.get(pk=lease.pk).account_number == ACCOUNT
    assert Lease.objects.get(pk=lease.pk).account_masked == "6222 **** **** 0128"


def test_login_lookup_goes_through_the_keyed_hash(db):
    applicant = ApplicantFactory(id_number=id_number_for(7))
    assert applicant_get_by_id_number(id_number=id_number_for(7)) == applicant
    assert applicant_get_by_id_number(id_number=id_number_for(8)) is None
    # The column compared is the hash: the plaintext itself matches no row.
    assert not _raw("SELECT id FROM accounts_applicant WHERE id_number = %s", [id_number_for(7)])
    # A different hash key finds nothing: the hash is keyed, not a bare SHA-256.
    with override_settings(PII_SEARCH_HASH_KEY=secrets.token_hex(32)):
        assert applicant_get_by_id_number(id_number=id_number_for(7)) is None
    # Masked display as before; the search field answers `in` through the hash too.
    assert applicant.id_number_masked == Applicant.objects.get(pk=applicant.pk).id_number_masked
    assert list(Applicant.objects.filter(id_number__in=[id_number_for(7)])) == [applicant]


def test_setting_the_id_number_on_a_loaded_applicant_updates_hash_and_ciphertext(db):
    applicant = ApplicantFactory(id_number=id_number_for(3))
    loaded = Applicant.objects.get(pk=applicant.pk)
    loaded.id_number = id_number_for(4)
    loaded.save()
    assert Applicant.objects.get(id_number=id_number_for(4)).id_number == id_number_for(4)
    assert not Applicant.objects.filter(id_number=id_number_for(3)).exists()


def test_key_rotation_reencrypts_and_the_retired_key_stops_decrypting(lease, settings):
    old = list(settings.FIELD_ENCRYPTION_KEYS)
    new = secrets.token_hex(32)
    applicant = lease.agreement.family.main_applicant
    number = applicant.id_number
    before = {
        "id": bytes(_raw("SELECT id_number_encrypted FROM accounts_applicant")[0][0]),
        "account": bytes(_raw("SELECT account_number FROM signing_lease")[0][0]),
        "image": bytes(_raw("SELECT image FROM signing_cardphoto ORDER BY id")[0][0]),
    }

    # Only the new key: the old ciphertexts cannot be read.
    with override_settings(FIELD_ENCRYPTION_KEYS=[new]):
        with pytest.raises(ValueError):
            Applicant.objects.get(pk=applicant.pk)
        with pytest.raises(ValueError):
            Lease.objects.get(pk=lease.pk)
        with pytest.raises(ValueError):
            CardPhoto.objects.filter(lease=lease).first()

    # The new key first, the old one kept: the command re-encrypts with the new one.
    settings.FIELD_ENCRYPTION_KEYS = [new, *old]
    call_command("pii_rotate_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    after = {
        "id": bytes(_raw("SELECT id_number_encrypted FROM accounts_applicant")[0][0]),
        "account": bytes(_raw("SELECT account_number FROM signing_lease")[0][0]),
        "image": bytes(_raw("SELECT image FROM signing_cardphoto ORDER BY id")[0][0]),
    }
    assert all(after[k] != before[k] for k in before)

    # The old key retired: everything still reads, and the login lookup still finds it.
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert Applicant.objects.get(pk=applicant.pk).id_number == number
    assert applicant_get_by_id_number(id_number=number).pk == applicant.pk
    assert Lease.objects.get(pk=lease.pk).account_number == ACCOUNT
    assert CardPhoto.objects.filter(lease=lease).first().image[:3] == b"\xff\xd8\xff"
    history = Applicant.history.model.objects.filter(id=applicant.pk).first()
    assert history.id_number == number

    # And with only the old key, the rotated data no longer decrypts.
    settings.FIELD_ENCRYPTION_KEYS = old
    with pytest.raises(ValueError):
        Applicant.objects.get(pk=applicant.pk)
    with pytest.raises(ValueError):
        pii.decrypt_bytes(after["image"])
    assert pii.decrypt_bytes(before["image"])[:3] == b"\xff\xd8\xff"


def test_rotation_rehashes_with_a_new_search_key(db, settings):
    applicant = ApplicantFactory(id_number=id_number_for(11))
    settings.PII_SEARCH_HASH_KEY = secrets.token_hex(32)
    assert applicant_get_by_id_number(id_number=id_number_for(11)) is None
    pii.rotate()
    assert applicant_get_by_id_number(id_number=id_number_for(11)).pk == applicant.pk


def test_binary_ciphertext_that_was_changed_does_not_decrypt(db):
    blob = bytearray(pii.encrypt_bytes(b"card"))
    blob[-1] ^= 1
    with pytest.raises(ValueError):
        pii.decrypt_bytes(bytes(blob))
    with pytest.raises(ValueError):
        pii.decrypt_bytes(b"\xff\xd8\xffplain")
