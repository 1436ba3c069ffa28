"""Keyed hashing and at-rest encryption for SMS data, keyed from SECRET_KEY."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _key(label: str) -> bytes:
    return hashlib.sha256(f"anju.sms.{label}:{settings.SECRET_KEY}".encode()).digest()


def keyed_hash(*parts: str) -> str:
    return hmac.new(_key("hash"), "\x1f".join(parts).encode(), hashlib.sha256).hexdigest()


def hashes_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_key("payload")))


def seal(data: dict) -> str:
    return _fernet().encrypt(json.dumps(data).encode()).decode()


def unseal(token: str) -> dict | None:
    try:
        return json.loads(_fernet().decrypt(token.encode()))
    except (InvalidToken, ValueError):
        return None
