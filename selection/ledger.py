"""Writing the allocation log: each entry is written in the transaction it records, with its
leaf hash and no index, locking nothing that other writers lock. The sequencer
(selection.translog) later gives committed entries their indexes, builds the Merkle tree and
signs its heads. The format is docs/TRANSPARENCY.md."""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import transaction

from core.hashchain import canonical_json, normalised, utc_iso
from selection.models import LedgerEntry

CODE_LENGTH = 10  # hex digits of the leaf hash printed as the 核验码


def log_name(round_id: int) -> str:
    return f"anju-ledger/round/{round_id}"


def entry_json(*, round_id: int, session_id: int | None, kind: str, at: datetime, payload):
    return {
        "round": round_id,
        "session": session_id,
        "kind": kind,
        "at": utc_iso(at),
        "payload": payload,
    }


def entry_leaf_hash(entry: dict) -> str:
    """SHA-256(0x00 ‖ canonical bytes of the entry), hex: RFC 9162's leaf hash."""
    return hashlib.sha256(b"\x00" + canonical_json(entry).encode()).hexdigest()


def stored_entry(row: LedgerEntry) -> dict:
    return entry_json(
        round_id=row.round_id,
        session_id=row.session_id,
        kind=row.kind,
        at=row.at,
        payload=row.payload,
    )


class LedgerWriter:
    """Collects entries inside the caller's transaction; `flush` writes them in one insert.
    `append` returns the unsaved entry, so an Allocation can refer to it (saved after the
    flush). Entries of one transaction keep their order (ascending ids)."""

    def __init__(self, *, now: datetime) -> None:
        assert transaction.get_connection().in_atomic_block, "ledger appends need a transaction"
        self.now = now
        self.rows: list[LedgerEntry] = []

    @staticmethod
    def entry(
        *, round_id: int, session_id: int | None, kind: str, payload: dict, now: datetime
    ) -> LedgerEntry:
        """An unsaved entry with its leaf hash."""
        # Round-trip through JSON so the stored payload hashes exactly as it was written.
        stored = normalised(payload)
        content = entry_json(
            round_id=round_id, session_id=session_id, kind=kind, at=now, payload=stored
        )
        return LedgerEntry(
            round_id=round_id,
            session_id=session_id,
            kind=kind,
            at=now,
            payload=stored,
            leaf_hash=entry_leaf_hash(content),
        )

    def append(
        self, *, round_id: int, session_id: int | None, kind: str, payload: dict
    ) -> LedgerEntry:
        row = self.entry(
            round_id=round_id, session_id=session_id, kind=kind, payload=payload, now=self.now
        )
        self.rows.append(row)
        return row

    def flush(self) -> list[LedgerEntry]:
        rows, self.rows = LedgerEntry.objects.bulk_create(self.rows), []
        return rows


def ledger_append(
    *, round_id: int, session_id: int | None, kind: str, payload: dict, now: datetime
) -> LedgerEntry:
    """Append one entry (inside the caller's transaction)."""
    writer = LedgerWriter(now=now)
    writer.append(round_id=round_id, session_id=session_id, kind=kind, payload=payload)
    return writer.flush()[0]
