"""The allocation ledger: append-only, hash-chained, written in the transaction it records.

Each entry's hash is SHA-256 over the canonical JSON of (seq, round, session, kind, at,
payload, prev_hash). `ledger_verify` recomputes the chain and names the first bad row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from core.hashchain import GENESIS, chain_hash, normalised, utc_iso
from core.locking import lock_first, lock_get
from selection.models import LedgerEntry, LedgerHead


def entry_hash(
    *,
    seq: int,
    round_id: int,
    session_id: int | None,
    kind: str,
    at: datetime,
    payload: dict,
    prev_hash: str,
) -> str:
    content = {
        "seq": seq,
        "round": round_id,
        "session": session_id,
        "kind": kind,
        "at": utc_iso(at),
        "payload": payload,
    }
    return chain_hash(content, prev_hash)


class LedgerWriter:
    """Appends entries inside the caller's transaction.

    Creating it locks the ledger head. Every appender takes that lock last (after its family
    and unit locks), and the holder of the head never waits for anything else, so appends
    cannot deadlock. `append` returns the entry's seq at once, so a later entry of the same
    transaction can refer to it; `flush` writes the rows and moves the head."""

    def __init__(self, *, now: datetime) -> None:
        assert transaction.get_connection().in_atomic_block, "ledger appends need a transaction"
        self.now = now
        self.head = lock_first(LedgerHead.objects.filter(pk=1))
        if self.head is None:  # first append ever: create the head, then lock it
            LedgerHead.objects.get_or_create(pk=1)
            self.head = lock_get(LedgerHead.objects, pk=1)
        self.seq, self.prev = self.head.seq, self.head.hash
        self.rows: list[LedgerEntry] = []

    def append(self, *, round_id: int, session_id: int | None, kind: str, payload: dict) -> int:
        self.seq += 1
        # Round-trip through JSON so the stored payload hashes exactly as it was written.
        stored = normalised(payload)
        digest = entry_hash(
            seq=self.seq,
            round_id=round_id,
            session_id=session_id,
            kind=kind,
            at=self.now,
            payload=stored,
            prev_hash=self.prev,
        )
        self.rows.append(
            LedgerEntry(
                seq=self.seq,
                round_id=round_id,
                session_id=session_id,
                kind=kind,
                at=self.now,
                payload=stored,
                prev_hash=self.prev,
                hash=digest,
            )
        )
        self.prev = digest
        return self.seq

    def flush(self) -> list[LedgerEntry]:
        LedgerEntry.objects.bulk_create(self.rows)
        self.head.seq, self.head.hash = self.seq, self.prev
        self.head.save(update_fields=["seq", "hash"])
        rows, self.rows = self.rows, []
        return rows


def ledger_append(
    *, round_id: int, session_id: int | None, kind: str, payload: dict, now: datetime
) -> LedgerEntry:
    """Append one entry (inside the caller's transaction, after its other locks)."""
    writer = LedgerWriter(now=now)
    writer.append(round_id=round_id, session_id=session_id, kind=kind, payload=payload)
    return writer.flush()[0]


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    first_bad_seq: int | None
    reason: str = ""


def ledger_verify(*, batch: int = 5000) -> VerifyResult:
    """Recompute the whole chain. Reports the first row whose hash, link or sequence is wrong,
    and a head that does not match the last row (rows removed from the end)."""
    prev, expected_seq, checked = GENESIS, 1, 0
    last_seq = 0
    while True:
        rows = list(LedgerEntry.objects.filter(seq__gte=expected_seq).order_by("seq")[:batch])
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return VerifyResult(checked, expected_seq, f"missing seq {expected_seq}")
            if row.prev_hash != prev:
                return VerifyResult(checked, row.seq, "prev_hash does not link to the previous row")
            digest = entry_hash(
                seq=row.seq,
                round_id=row.round_id,
                session_id=row.session_id,
                kind=row.kind,
                at=row.at,
                payload=row.payload,
                prev_hash=row.prev_hash,
            )
            if digest != row.hash:
                return VerifyResult(checked, row.seq, "hash does not match the row's content")
            prev, expected_seq, last_seq = row.hash, row.seq + 1, row.seq
            checked += 1
    head = LedgerHead.objects.filter(pk=1).first()
    if head and (head.seq, head.hash) != (last_seq, prev):
        return VerifyResult(checked, last_seq + 1, "rows after the last one were removed")
    return VerifyResult(checked, None)
