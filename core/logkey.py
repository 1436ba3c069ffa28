"""The log key: one Ed25519 key (settings.LEDGER_SIGNING_KEY, never in the database) signs the
allocation log's tree heads (selection.translog) and the agreements' evidence heads, so that
rewriting rows and recomputing every hash inside the database is still caught by anyone who
holds the public key (tools/verify.py, offline)."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from functools import cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings


@cache
def _private_key(pem: str) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("LEDGER_SIGNING_KEY is not an Ed25519 private key")
    return key


def _key() -> Ed25519PrivateKey:
    return _private_key(settings.LEDGER_SIGNING_KEY)


def public_key() -> Ed25519PublicKey:
    return _key().public_key()


def public_key_pem() -> str:
    return (
        public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def key_id() -> str:
    """The first 16 hex digits of SHA-256 over the raw public key: names the key in heads."""
    raw = public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def head_text(*, log: str, size: int, digest: str, time: datetime) -> bytes:
    """What the key signs for a head, the allocation log's (size, root) and an agreement's
    evidence chain's (count, last hash) alike: `<log>\n<size>\n<digest>\n<UTC time>\n`."""
    from core.hashchain import utc_iso

    return f"{log}\n{size}\n{digest}\n{utc_iso(time)}\n".encode()


def head_ok(message: bytes, *, claimed_key_id: str, signature: str) -> bool:
    """Signed by the configured key, and says so."""
    return claimed_key_id == key_id() and verify(message, signature)


def sign(message: bytes) -> str:
    """Ed25519 signature of `message`, base64."""
    return base64.b64encode(_key().sign(message)).decode()


def verify(message: bytes, signature: str) -> bool:
    try:
        public_key().verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError):
        return False
    return True
