"""Personal data at rest (个人信息保护法): resident ID numbers, bank account numbers and
bank-card photos are stored encrypted with AES-256-GCM under keys from configuration
(settings.FIELD_ENCRYPTION_KEYS, never in the database), and ID numbers are found through a
keyed hash (settings.PII_SEARCH_HASH_KEY), never by a plaintext lookup.

Text fields are django-searchable-encrypted-fields' (`encrypted_fields`, pycryptodome's
AES-GCM: 16-byte nonce, 16-byte tag, ciphertext) with one change: the key list is read from
settings on every use instead of being cached on the field, so a rotation (and the tests'
`override_settings`) takes effect at once. Binary data (the card photos) uses the same key
list with cryptography's AESGCM (`EncryptedBinaryField`: version byte, 12-byte nonce,
ciphertext with its tag).

Rotation (docs/DECISIONS.md "Personal data at rest"): put a new key first in the list, keep
the old one after it, run `manage.py pii_rotate_keys` (re-encrypts every value with the first
key and recomputes every search hash with the current hash key), then remove the old key:
values still under it stop decrypting.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from encrypted_fields import fields as encrypted_fields

BINARY_VERSION = b"\x01"
NONCE_BYTES = 12


def keys() -> list[str]:
    """The configured AES-256 keys, hex; the first encrypts, every one decrypts."""
    key_list = settings.FIELD_ENCRYPTION_KEYS
    if not isinstance(key_list, list | tuple) or not key_list:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must be a non-empty list.")
    return list(key_list)


def search_hash_key() -> str:
    """The secret appended before hashing for the ID number's search column (a callable, so
    the key lives only in configuration and migrations name this function, not the key)."""
    key = settings.PII_SEARCH_HASH_KEY
    if not key:
        raise ImproperlyConfigured("PII_SEARCH_HASH_KEY is empty.")
    return key


def search_hash(value: str) -> str:
    """What a `SearchField` stores for `value`: the library's keyed SHA-256 ("xx" + hex)."""
    return (
        encrypted_fields.SEARCH_HASH_PREFIX
        + hashlib.sha256((str(value) + search_hash_key()).encode()).hexdigest()
    )


class _LiveKeys:
    """The library caches the key list on the field (a cached_property); read it live."""

    @property
    def keys(self) -> list[str]:
        return keys()


class EncryptedCharField(_LiveKeys, encrypted_fields.EncryptedCharField):
    pass


class SearchField(encrypted_fields.SearchField):
    """The library's keyed-hash search column, which also answers `__in` (each value hashed
    the same way as for `exact`), used by the families' import to find many at once."""


SearchField.register_lookup(models.lookups.In)


def encrypt_bytes(data: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return BINARY_VERSION + nonce + AESGCM(bytes.fromhex(keys()[0])).encrypt(nonce, data, None)


def decrypt_bytes(blob: bytes) -> bytes:
    """Decrypt with whichever configured key fits; ValueError when none does (a retired key)
    or the data was changed."""
    blob = bytes(blob)
    if blob[:1] != BINARY_VERSION or len(blob) < 1 + NONCE_BYTES + 16:
        raise ValueError("Not encrypted data, or corrupted.")
    nonce, ciphertext = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    for key in keys():
        try:
            return AESGCM(bytes.fromhex(key)).decrypt(nonce, ciphertext, None)
        except InvalidTag:
            continue
    raise ValueError("AES key incorrect or data is corrupted")


class EncryptedBinaryField(models.BinaryField):
    """Bytes encrypted with the first configured key; read back with any of them."""

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is not None:
            value = encrypt_bytes(bytes(value))
        return super().get_db_prep_value(value, connection, prepared)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return decrypt_bytes(value)


def encrypted_models() -> Iterator[tuple[type[models.Model], list[str]]]:
    """Every model with encrypted or search-hashed fields, and those fields' names."""
    kinds = (
        encrypted_fields.EncryptedFieldMixin,
        encrypted_fields.SearchField,
        EncryptedBinaryField,
    )
    for model in apps.get_models():
        names = [f.name for f in model._meta.concrete_fields if isinstance(f, kinds)]
        if names:
            yield model, names


def rotate(*, batch: int = 500) -> dict[str, int]:
    """Re-encrypt every encrypted value with the first key and recompute every search hash
    with the current hash key. Reading a row decrypts with any configured key, writing it
    encrypts with the first. Idempotent; returns rows rewritten per model label."""
    done: dict[str, int] = {}
    for model, names in encrypted_models():
        count = 0
        pks = list(model._default_manager.order_by("pk").values_list("pk", flat=True))
        for start in range(0, len(pks), batch):
            for row in model._default_manager.filter(pk__in=pks[start : start + batch]):
                values = {}
                for name in names:
                    field = model._meta.get_field(name)
                    if isinstance(field, encrypted_fields.SearchField):
                        values[name] = row.__dict__.get(field.encrypted_field_name)
                    else:
                        values[name] = row.__dict__.get(name)
                model._default_manager.filter(pk=row.pk).update(**values)
                count += 1
        done[model._meta.label] = count
    return done
