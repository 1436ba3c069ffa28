"""Canonical JSON and chained SHA-256, shared by the selection ledger and the signing
evidence log: each row's hash covers its content and the previous row's hash, so editing,
reordering or removing a row breaks every hash after it."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def normalised(value: Any) -> Any:
    """What a JSON column gives back: store this, so the stored row hashes as written."""
    return json.loads(canonical_json(value))


def utc_iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def chain_hash(content: dict, prev_hash: str) -> str:
    return hashlib.sha256(canonical_json({**content, "prev_hash": prev_hash}).encode()).hexdigest()
