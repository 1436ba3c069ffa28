"""The allocation log as a transparency log (docs/TRANSPARENCY.md): the sequencer, signed
tree heads, proofs and receipts.

Writers (confirm, close, give-up, staff) insert entries with no index and lock nothing shared
(selection.ledger). The sequencer — `manage.py ledger_sequencer`, or a thread of the embedded
quick start — locks one round's `LedgerLog` row (only sequencers take it), gives the committed
pending entries consecutive indexes in the order they committed (ascending ids: a writer
inserts its entry after taking its row locks, so of two conflicting writes the later one has
the larger id and is never visible without the earlier), stores the new complete-subtree
hashes and signs a tree head with the log key. Two sequencers take turns on that row and the
second finds nothing pending, so each index is given once; a sequencer killed mid-batch rolls
back, leaving the entries pending for the next pass.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core import logkey, merkle
from core.errors import Conflict, DomainError, ValidationFailed
from core.hashchain import utc_iso
from core.locking import lock_first
from core.loops import loop_every, start_in_process
from core.wakeup import LEDGER_CHANNEL
from selection.ledger import CODE_LENGTH, log_name, stored_entry
from selection.models import LedgerEntry, LedgerLog, LedgerNode, TreeHead

logger = logging.getLogger("anju.ledger")
TICK_SECONDS = 0.1
BATCH = 5000


ALLOCATING = ("confirm", "auto_assign", "staff_assign")


class LeafNotFound(DomainError):
    kind = "not_found"
    code = "leaf_not_found"
    message = "未找到该日志条目"


def head_message(*, log: str, size: int, root: str, time: datetime) -> bytes:
    return logkey.head_text(log=log, size=size, digest=root, time=time)


def head_json(head: TreeHead) -> dict:
    return {
        "log": log_name(head.round_id),
        "size": head.size,
        "root": head.root,
        "time": utc_iso(head.time),
        "key_id": head.key_id,
        "signature": head.signature,
    }


def head_signature_ok(head: TreeHead) -> bool:
    message = head_message(
        log=log_name(head.round_id), size=head.size, root=head.root, time=head.time
    )
    return logkey.head_ok(message, claimed_key_id=head.key_id, signature=head.signature)


def _hashes(round_id: int, wanted) -> dict[tuple[int, int], bytes]:
    """Stored complete-subtree hashes (level, k) → bytes, in one query."""
    wanted = set(wanted)
    if not wanted:
        return {}
    match = Q()
    for level, k in wanted:
        match |= Q(level=level, k=k)
    rows = LedgerNode.objects.filter(match, round_id=round_id).values_list("level", "k", "hash")
    found = {(level, k): bytes.fromhex(h) for level, k, h in rows}
    missing = wanted - set(found)
    if missing:
        raise RuntimeError(f"log of round {round_id} lacks stored hashes {sorted(missing)[:5]}")
    return found


def _log_locked(round_id: int) -> LedgerLog:
    log = lock_first(LedgerLog.objects.filter(pk=round_id))
    if log is None:
        LedgerLog.objects.get_or_create(pk=round_id)
        log = lock_first(LedgerLog.objects.filter(pk=round_id))
    assert log is not None
    return log


def sequence_round(*, round_id: int, now: datetime | None = None, batch: int = BATCH):
    """One pass over one round: index up to `batch` committed pending entries, extend the
    tree and sign a head. Returns the new head, or None when nothing was pending."""
    with transaction.atomic():
        log = _log_locked(round_id)
        # Read after taking the lock: a sequencer that held it before committed its indexes.
        pending = list(
            LedgerEntry.objects.filter(round_id=round_id, index__isnull=True)
            .order_by("id")
            .values_list("id", "leaf_hash")[:batch]
        )
        if not pending:
            return None
        n = log.size
        # The subtrees that make up the current tree are all that appending ever reads.
        known = _hashes(round_id, merkle.root_indexes(n)) if n else {}
        new_nodes: dict[tuple[int, int], bytes] = {}
        first = n
        for _, leaf in pending:
            for level, k, value in merkle.stored_hashes_for_append(n, bytes.fromhex(leaf), known):
                known[level, k] = value
                new_nodes[level, k] = value
            n += 1
        LedgerNode.objects.bulk_create(
            LedgerNode(round_id=round_id, level=level, k=k, hash=value.hex())
            for (level, k), value in new_nodes.items()
        )
        _set_indexes([entry_id for entry_id, _ in pending], first)
        time = now or timezone.now()
        _announce_taken(round_id, [entry_id for entry_id, _ in pending], time)
        root = merkle.tree_root(n, known).hex()
        LedgerLog.objects.filter(pk=round_id).update(size=n, root=root)
        head = TreeHead.objects.create(
            round_id=round_id,
            size=n,
            root=root,
            time=time,
            key_id=logkey.key_id(),
            signature=logkey.sign(
                head_message(log=log_name(round_id), size=n, root=root, time=time)
            ),
        )
    return head


# What `taken_events` reads of an allocation (the sequencer announces thousands a second).
TAKEN_FIELDS = (
    "round_id",
    "how",
    "unit__building",
    "unit__number",
    "unit__layout",
    "unit__orientation",
    "session__kind",
    "ledger_entry__index",
)


def _set_indexes(entry_ids: list[int], first: int) -> None:
    """entry_ids[i] gets index first + i: one statement on PostgreSQL (two arrays unnested),
    Django's bulk update elsewhere (the embedded SQLite quick start)."""
    if connection.vendor == "postgresql":
        table = LedgerEntry._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE {table} AS e SET "index" = v.i '  # noqa: S608 (our table name)
                "FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, i) WHERE e.id = v.id",
                [entry_ids, list(range(first, first + len(entry_ids)))],
            )
        return
    LedgerEntry.objects.bulk_update(
        [LedgerEntry(pk=entry_id, index=first + i) for i, entry_id in enumerate(entry_ids)],
        ["index"],
        batch_size=500,
    )


def _announce_taken(round_id: int, entry_ids: list[int], now: datetime) -> None:
    """The public board's `selection.unit_taken` for the allocations among the entries just
    indexed, in log order, recorded in the sequencer's transaction (after its log lock)."""
    from events.services import events_record
    from selection.events import taken_events
    from selection.models import Allocation

    allocations = list(
        Allocation.objects.filter(ledger_entry_id__in=entry_ids)
        .select_related("unit", "session", "ledger_entry")
        .only(*TAKEN_FIELDS)
        .order_by("ledger_entry__index")
    )
    if allocations:
        events_record(events=taken_events(allocations), now=now)


def sequence_pending(*, now: datetime | None = None) -> list[TreeHead]:
    """Sequence every round with pending entries until none is left; returns the new heads."""
    heads: list[TreeHead] = []
    while True:
        rounds = list(
            LedgerEntry.objects.filter(index__isnull=True)
            .order_by()
            .values_list("round_id", flat=True)
            .distinct()
        )
        if not rounds:
            return heads
        for round_id in sorted(rounds):
            head = sequence_round(round_id=round_id, now=now)
            if head is not None:
                heads.append(head)


def sequencer_run(*, stop: threading.Event, tick: float = TICK_SECONDS) -> None:
    """Sequence until `stop` is set: a pass that finds pending entries signs a head. On
    PostgreSQL the pass starts as the entries commit (their NOTIFY), at most one per `tick`;
    elsewhere every `tick`. Either way a committed allocation is in a signed head within
    about `tick` seconds. A failing pass is logged and retried; nothing half-done survives a
    rollback."""

    def step() -> None:
        for head in sequence_pending():
            logger.info("round %s: signed head size %s", head.round_id, head.size)

    loop_every(
        stop=stop,
        tick=tick,
        step=step,
        logger=logger,
        what="sequencer tick",
        wake_on=LEDGER_CHANNEL,
    )


def sequencer_start_in_process() -> None:
    """The embedded quick start's sequencer: a daemon thread inside the server process."""
    start_in_process("ledger-sequencer", sequencer_run)


# ------------------------------------------------------------------------- reading the log


def latest_head(*, round_id: int) -> TreeHead | None:
    return TreeHead.objects.filter(round_id=round_id).order_by("-size", "-time").first()


def _tree_size(round_id: int) -> int:
    head = latest_head(round_id=round_id)
    return head.size if head else 0


def _require_size(round_id: int, size: int) -> None:
    if size > _tree_size(round_id):
        raise ValidationFailed("size_beyond_tree", "所请求的日志规模超出当前已签名的日志")


def leaf_get(*, round_id: int, index: int) -> LedgerEntry:
    entry = LedgerEntry.objects.filter(round_id=round_id, index=index).first()
    if entry is None:
        raise LeafNotFound()
    return entry


def inclusion_proof(*, round_id: int, index: int, size: int) -> list[str]:
    if not 0 <= index < size:
        raise ValidationFailed("invalid_range", "日志序号须小于日志规模")
    _require_size(round_id, size)
    known = _hashes(round_id, merkle.inclusion_proof_indexes(index, size))
    return [h.hex() for h in merkle.inclusion_proof(index, size, known)]


def consistency_proof(*, round_id: int, first: int, second: int) -> list[str]:
    if not 0 < first <= second:
        raise ValidationFailed("invalid_range", "须满足 0 < from ≤ to")
    _require_size(round_id, second)
    known = _hashes(round_id, merkle.consistency_proof_indexes(first, second))
    return [h.hex() for h in merkle.consistency_proof(first, second, known)]


@dataclass(frozen=True)
class Receipt:
    entry: LedgerEntry
    head: TreeHead | None
    inclusion: list[str]

    @property
    def pending(self) -> bool:
        return self.head is None

    def as_json(self) -> dict:
        return {
            "log": log_name(self.entry.round_id),
            "index": self.entry.index,
            "leaf_hash": self.entry.leaf_hash,
            "code": self.entry.code,
            "entry": stored_entry(self.entry),
            "head": head_json(self.head) if self.head else None,
            "inclusion": self.inclusion,
        }


def receipt_for(entry: LedgerEntry) -> Receipt:
    """The entry, the latest signed head and the inclusion proof against it; while the entry
    waits for the sequencer (well under a second), no head and no proof yet."""
    if entry.index is None:
        entry.refresh_from_db(fields=["index"])
    head = latest_head(round_id=entry.round_id) if entry.index is not None else None
    if head is None or entry.index is None or entry.index >= head.size:
        return Receipt(entry, None, [])
    known = _hashes(entry.round_id, merkle.inclusion_proof_indexes(entry.index, head.size))
    proof = [h.hex() for h in merkle.inclusion_proof(entry.index, head.size, known)]
    return Receipt(entry, head, proof)


RESULT_KINDS = (*ALLOCATING, "give_up", "no_unit", "absent")


def family_receipt(*, family, round_id: int) -> Receipt:
    """The receipt of the family's result in the round: the entry of its allocation, else its
    latest give-up / no-unit / absent entry. 404 `round_not_found` for a family with no
    seat in the round (as every family endpoint), `receipt_not_found` before any result."""
    from selection.models import Allocation
    from selection.phases import family_state

    family_state(family=family, round_id=round_id, now=timezone.now())
    allocation = (
        Allocation.objects.filter(round_id=round_id, family=family)
        .select_related("ledger_entry")
        .first()
    )
    entry = (
        allocation.ledger_entry
        if allocation
        else LedgerEntry.objects.filter(
            round_id=round_id, kind__in=RESULT_KINDS, payload__family=family.pk
        )
        .order_by("-id")
        .first()
    )
    if entry is None:
        raise DomainError("receipt_not_found", "暂无选房结果凭证", kind="not_found")
    return receipt_for(entry)


def receipt_by_code(*, round_id: int, code: str) -> Receipt:
    """A family's receipt from the 核验码 in its SMS: the allocating entry whose leaf hash
    starts with the code (10 hex digits; two in one round match — about 1 in 20,000 for a
    round of 10,000 families — is a 409 that sends the family to its result page)."""
    code = code.strip().lower()
    if len(code) != CODE_LENGTH or any(c not in "0123456789abcdef" for c in code):
        raise ValidationFailed("invalid_code", "核验码为10位数字或字母a-f")
    entries = list(
        LedgerEntry.objects.filter(
            round_id=round_id, kind__in=ALLOCATING, leaf_hash__startswith=code
        ).order_by("id")[:2]
    )
    if not entries:
        raise LeafNotFound("leaf_not_found", "未找到该核验码对应的选房记录")
    if len(entries) > 1:
        raise Conflict(
            "code_ambiguous", "该核验码对应多条记录，请登录后在「我的选房结果」中查看凭证"
        )
    return receipt_for(entries[0])


# ---------------------------------------------------------------------- checking it live


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    first_bad: int | None  # the index of the first bad entry (or the size a head claims)
    reason: str = ""
    round_id: int | None = None


def log_verify(*, round_id: int) -> VerifyResult:
    """Check one round's log as stored: every sequenced entry's leaf hash from its content,
    indexes consecutive from 0, every stored subtree hash recomputed from the leaves, every
    head's signature with the configured key and its root at its size, the latest head
    covering every sequenced entry (entries cut from the end are caught by it), and each
    allocation pointing at an allocating entry of its own family and unit.

    The signature is what a database rewrite cannot redo: recomputing every hash after an
    edit leaves heads whose roots no longer match, and new heads cannot be signed without
    the key, which never enters the database."""
    from selection.ledger import entry_leaf_hash
    from selection.models import Allocation

    leaves: list[bytes] = []
    for entry in LedgerEntry.objects.filter(round_id=round_id, index__isnull=False).order_by(
        "index"
    ):
        if entry.index != len(leaves):
            return VerifyResult(len(leaves), len(leaves), "an entry is missing", round_id)
        if entry_leaf_hash(stored_entry(entry)) != entry.leaf_hash:
            return VerifyResult(
                len(leaves), entry.index, "leaf hash does not match the entry", round_id
            )
        leaves.append(bytes.fromhex(entry.leaf_hash))
    n = len(leaves)
    expected = merkle.all_stored_hashes(leaves)
    heads = list(TreeHead.objects.filter(round_id=round_id).order_by("size", "time"))
    for head in heads:
        if not head_signature_ok(head):
            return VerifyResult(n, head.size, "a tree head's signature is not valid", round_id)
        if head.size > n:
            return VerifyResult(n, n, f"entries {n}..{head.size - 1} are missing", round_id)
        if merkle.tree_root(head.size, expected).hex() != head.root:
            return VerifyResult(n, head.size, "a tree head's root does not match", round_id)
    stored = {
        (level, k): bytes.fromhex(h)
        for level, k, h in LedgerNode.objects.filter(round_id=round_id).values_list(
            "level", "k", "hash"
        )
    }
    differ = sorted(k for k in stored.keys() | expected.keys() if stored.get(k) != expected.get(k))
    if differ:
        level, k = differ[0]
        return VerifyResult(n, k << level, "stored tree hashes differ", round_id)
    if n and (not heads or heads[-1].size != n):
        return VerifyResult(n, n, "sequenced entries are not covered by a signed head", round_id)
    log = LedgerLog.objects.filter(pk=round_id).first()
    if log is not None and (log.size, log.root) != (n, merkle.tree_root(n, expected).hex()):
        return VerifyResult(n, n, "the log's size or root does not match its entries", round_id)
    for allocation in Allocation.objects.filter(round_id=round_id).select_related("ledger_entry"):
        entry = allocation.ledger_entry
        if (
            entry.kind not in ALLOCATING
            or entry.payload.get("family") != allocation.family_id
            or entry.payload.get("unit") != allocation.unit_id
        ):
            return VerifyResult(
                n, entry.index, "an allocation does not match its log entry", round_id
            )
    return VerifyResult(n, None, "", round_id)


def logs_verify() -> list[VerifyResult]:
    rounds = LedgerEntry.objects.order_by().values_list("round_id", flat=True).distinct()
    return [log_verify(round_id=round_id) for round_id in sorted(set(rounds))]


# ------------------------------------------------------------------------ offline export


def ledger_export(*, round_id: int, directory) -> dict:
    """Write the round's log up to its latest signed head into `directory` (the layout of
    docs/TRANSPARENCY.md) and return the manifest. The carts at each close are the formal
    carts the close recorded in the same transaction as its allocations (its auto_assign /
    no_unit entries); the live `ledger_replay` also compares them with the stored carts."""
    import hashlib
    import json
    from pathlib import Path

    from core.hashchain import canonical_json
    from selection.models import Round

    if not Round.objects.filter(pk=round_id).exists():
        raise ValueError(f"no round {round_id}")
    sequence_pending()
    head = latest_head(round_id=round_id)
    size = head.size if head else 0
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    carts: dict[int | None, dict[str, list[int]]] = {}
    with (out / "entries.jsonl").open("w", encoding="utf-8") as f:
        for entry in LedgerEntry.objects.filter(round_id=round_id, index__lt=size).order_by(
            "index"
        ):
            line = {
                "index": entry.index,
                "leaf_hash": entry.leaf_hash,
                "entry": stored_entry(entry),
            }
            f.write(canonical_json(line) + "\n")
            if entry.kind in ("auto_assign", "no_unit"):
                carts.setdefault(entry.session_id, {})[str(entry.payload["family"])] = list(
                    entry.payload.get("cart") or []
                )
            elif entry.kind == "session_close":
                carts.setdefault(entry.session_id, {})
    with (out / "heads.jsonl").open("w", encoding="utf-8") as f:
        for row in TreeHead.objects.filter(round_id=round_id, size__lte=size).order_by(
            "size", "time"
        ):
            f.write(canonical_json(head_json(row)) + "\n")
    with (out / "carts.jsonl").open("w", encoding="utf-8") as f:
        for session_id in sorted(s for s in carts if s is not None):
            f.write(canonical_json({"session": session_id, "carts": carts[session_id]}) + "\n")
    (out / "public_key.pem").write_text(logkey.public_key_pem(), encoding="ascii")
    names = ["entries.jsonl", "heads.jsonl", "public_key.pem", "carts.jsonl"]
    manifest = {
        "log": log_name(round_id),
        "round": round_id,
        "exported_at": utc_iso(timezone.now()),
        "files": {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in names},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return {
        **manifest,
        "entries": size,
        "heads": TreeHead.objects.filter(round_id=round_id, size__lte=size).count(),
    }
