"""Replay a closed session's auto-assign from the ledger and the carts, and compare with the
stored allocations: every allocation can be explained from the append-only log."""

from __future__ import annotations

from dataclasses import dataclass, field

from selection.models import Allocation, CartItem, LedgerEntry

ALLOCATING = ("confirm", "auto_assign", "staff_assign")
# Staff withdraw a unit from the pool and restore it (selection.staff_ops): not available to
# the close in between.
WITHDRAWING = ("unit_withdraw", "unit_restore")


@dataclass
class ReplayReport:
    session_id: int
    families: int = 0
    assigned: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def session_replay(*, session_id: int) -> ReplayReport:
    """Re-run rank-order auto-assign from the allocation log, in log order (index): units taken
    (or withdrawn) before the close come from the log's earlier allocating (and
    withdraw/restore) entries; each family's cart from its entry, checked against the stored
    formal cart; the result against the log and the Allocation rows. Pending entries are
    sequenced first (the sequencer is safe to run beside the running one)."""
    from selection.translog import sequence_pending

    sequence_pending()
    report = ReplayReport(session_id)
    entries = list(
        LedgerEntry.objects.filter(session_id=session_id, index__isnull=False).order_by("index")
    )
    close = next((e for e in entries if e.kind == "session_close"), None)
    if close is None:
        report.problems.append("session has no session_close entry (not closed)")
        return report
    family_entries = [e for e in entries if e.kind in ("auto_assign", "no_unit")]
    start = family_entries[0].index if family_entries else close.index
    taken: set[int] = set()
    for e in LedgerEntry.objects.filter(
        round_id=close.round_id, index__lt=start, kind__in=(*ALLOCATING, *WITHDRAWING)
    ).order_by("index"):
        unit = e.payload.get("unit")
        if unit and e.kind == "unit_restore":
            taken.discard(unit)
        elif unit:
            taken.add(unit)
    stored_carts: dict[int, list[int]] = {}
    for family_id, unit_id in (
        CartItem.objects.filter(
            round_id=close.round_id,
            kind=CartItem.Kind.FORMAL,
            family_id__in=[e.payload["family"] for e in family_entries],
        )
        .order_by("family_id", "position")
        .values_list("family_id", "unit_id")
    ):
        stored_carts.setdefault(family_id, []).append(unit_id)

    expected: dict[int, int] = {}
    last_rank = 0
    for entry in family_entries:
        family, cart, recorded = (
            entry.payload["family"],
            entry.payload["cart"],
            entry.payload["unit"],
        )
        report.families += 1
        if entry.payload["rank"] < last_rank:
            report.problems.append(
                f"index {entry.index}: family {family} processed out of rank order"
            )
        last_rank = entry.payload["rank"]
        if stored_carts.get(family, []) != cart:
            report.problems.append(
                f"index {entry.index}: family {family}'s stored formal cart differs from the ledger"
            )
        replayed = next((unit for unit in cart if unit not in taken), None)
        if replayed != recorded:
            report.problems.append(
                f"index {entry.index}: family {family} replays to unit {replayed}, ledger says {recorded}"
            )
        if replayed is not None:
            taken.add(replayed)
            expected[family] = replayed
    stored = dict(
        Allocation.objects.filter(session_id=session_id, how=Allocation.How.AUTO).values_list(
            "family_id", "unit_id"
        )
    )
    if stored != expected:
        report.problems.append(
            f"stored auto allocations {stored} differ from the replay {expected}"
        )
    report.assigned = len(expected)
    return report
