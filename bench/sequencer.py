"""The allocation log's sequencer on PostgreSQL: throughput, and how long a committed
allocation waits for a signed head.

    .venv/bin/python bench/sequencer.py [--allocations 20000 --rate 2000 --seconds 5 --tick 0.1]

Targets (issue 14): the sequencer keeps up with 2,000 allocations/s on this machine, and a
head covers every committed allocation within 1 s.

1. Throughput: N allocations (allocation rows, units 已选, log entries pending: what a burst
   of confirms leaves) are committed, then one `sequence_pending()` indexes them, stores the
   tree, announces each unit taken on the board's stream and signs heads. Reported: entries/s,
   and this process's CPU per entry beside PostgreSQL's (its backends' CPU from /proc when
   PostgreSQL is local).
2. Lag: the sequencer runs in its own thread (its loop, `--tick`) while a writer commits
   `--rate` allocations per second for `--seconds`, in small transactions every 10 ms. For
   each allocation: from its commit to the commit of the first signed head that covers it.
   Reported: p50 / p99 / max, and whether every allocation was covered. The floor is the tick
   itself (a head can only come at the next tick); the ceiling the target, 1 s.

PostgreSQL from PGHOST/PGPORT/PGUSER; the database is `anju_bench_sequencer`, dropped and
recreated. Exit status 1 when a check fails (a gap, a duplicate, the log does not verify).
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _lib  # noqa: E402

DB_NAME = _lib.db_name("anju_bench_sequencer")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--allocations", type=int, default=20000, help="throughput burst")
    parser.add_argument("--rate", type=int, default=2000, help="allocations/s in the lag run")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the lag run")
    parser.add_argument("--tick", type=float, default=0.1, help="the sequencer's tick")
    return parser.parse_args()


def pg_cpu() -> float:
    """CPU seconds of every PostgreSQL backend on this machine (0 when PostgreSQL is remote)."""
    if not _lib.pg_is_local():
        return 0.0
    total = 0.0
    ticks = __import__("os").sysconf("SC_CLK_TCK")
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "comm").read_text().strip() not in ("postgres", "postmaster"):
                continue
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def allocate(world, start: int, count: int, now) -> list[int]:
    """Commit `count` allocations as confirms leave them: unit 已选, allocation, pending
    entry (with its leaf hash), in one transaction. Returns the entry ids."""
    from django.db import transaction

    from selection.ledger import LedgerWriter
    from selection.models import Allocation, Unit

    with transaction.atomic():
        writer = LedgerWriter(now=now)
        rows = []
        for i in range(start, start + count):
            entry = writer.append(
                round_id=world.round_id,
                session_id=world.session_id,
                kind="confirm",
                payload={
                    "family": world.family_ids[i],
                    "rank": i + 1,
                    "unit": world.unit_ids[i],
                    "how": "confirmed",
                    "idempotency_key": f"bench-{i:08d}",
                },
            )
            rows.append((i, entry))
        writer.flush()
        Unit.objects.filter(pk__in=[world.unit_ids[i] for i, _ in rows]).update(status="taken")
        Allocation.objects.bulk_create(
            Allocation(
                round_id=world.round_id,
                unit_id=world.unit_ids[i],
                family_id=world.family_ids[i],
                session_id=world.session_id,
                how="confirmed",
                at=now,
                ledger_entry=entry,
            )
            for i, entry in rows
        )
    return [entry.pk for _, entry in rows]


def throughput(args) -> list[str]:
    from django.utils import timezone

    from selection import translog
    from selection.models import LedgerEntry

    n = args.allocations
    now = timezone.now()
    world = _lib.build_round(
        tag="seq-burst",
        families=n,
        units=n,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
        rank_base=0,
    )
    for start in range(0, n, 1000):
        allocate(world, start, min(1000, n - start), now)
    cpu0, pg0, t0 = time.process_time(), pg_cpu(), time.perf_counter()
    heads = translog.sequence_pending()
    wall, cpu, pg = time.perf_counter() - t0, time.process_time() - cpu0, pg_cpu() - pg0
    print(
        f"throughput: {n} allocations sequenced in {wall:.2f} s = {n / wall:,.0f}/s "
        f"({len(heads)} heads); CPU per entry {1000 * cpu / n:.3f} ms here + "
        f"{1000 * pg / n:.3f} ms PostgreSQL; target ≥ 2,000/s → "
        f"{'met' if n / wall >= 2000 else 'NOT met'} ({n / wall / 2000:.1f}× the target)"
    )
    problems = []
    indexes = sorted(
        LedgerEntry.objects.filter(round_id=world.round_id).values_list("index", flat=True)
    )
    if indexes != list(range(n)):
        problems.append("throughput: indexes are not 0..n-1 exactly once")
    result = translog.log_verify(round_id=world.round_id)
    if result.first_bad is not None:
        problems.append(f"throughput: log_verify: {result.reason}")
    return problems


def lag(args) -> list[str]:
    from django.db import close_old_connections
    from django.utils import timezone

    from selection import translog
    from selection.models import LedgerEntry, TreeHead

    total = int(args.rate * args.seconds)
    now = timezone.now()
    world = _lib.build_round(
        tag="seq-lag",
        families=total,
        units=total,
        starts_at=now - timedelta(minutes=1),
        ends_at=now + timedelta(hours=1),
        rank_base=10**7,
    )
    stop = threading.Event()
    head_seen: dict[int, float] = {}  # head size → wall time the sequencer committed it
    real_sequence_round = translog.sequence_round

    def timed_sequence_round(**kwargs):
        head = real_sequence_round(**kwargs)
        if head is not None and head.round_id == world.round_id:
            head_seen[head.size] = time.perf_counter()  # after its commit
        return head

    translog.sequence_round = timed_sequence_round
    sequencer = threading.Thread(
        target=translog.sequencer_run, kwargs={"stop": stop, "tick": args.tick}
    )
    sequencer.start()
    committed: dict[int, float] = {}  # entry id → commit time
    per_batch = max(1, args.rate // 100)  # one transaction every 10 ms
    started = time.perf_counter()
    done = 0
    while done < total:
        due = started + done / args.rate
        pause = due - time.perf_counter()
        if pause > 0:
            stop.wait(pause)  # pacing the writer, not waiting for a result
        count = min(per_batch, total - done)
        ids = allocate(world, done, count, timezone.now())
        at = time.perf_counter()
        committed.update(dict.fromkeys(ids, at))
        done += count
    close_old_connections()
    deadline = time.perf_counter() + 10
    while time.perf_counter() < deadline and (max(head_seen, default=0) < total):
        stop.wait(0.05)  # the sequencer's catching up is what is measured
    stop.set()
    sequencer.join(10)
    translog.sequence_round = real_sequence_round
    index_of = dict(LedgerEntry.objects.filter(round_id=world.round_id).values_list("id", "index"))
    sizes = sorted(head_seen)
    lags = []
    uncovered = 0
    for entry_id, at in committed.items():
        index = index_of.get(entry_id)
        covering = next((s for s in sizes if index is not None and s > index), None)
        if covering is None:
            uncovered += 1
        else:
            lags.append(head_seen[covering] - at)
    lags.sort()
    p = lambda q: 1000 * lags[min(len(lags) - 1, int(q * len(lags)))]  # noqa: E731
    rate = total / (time.perf_counter() - started)
    print(
        f"lag: {total} allocations at {args.rate}/s for {args.seconds:g} s, tick "
        f"{1000 * args.tick:.0f} ms: commit → signed head p50 {p(0.50):.0f} ms, p99 "
        f"{p(0.99):.0f} ms, max {1000 * lags[-1]:.0f} ms; floor (tick) "
        f"{1000 * args.tick:.0f} ms, ceiling (target) 1000 ms → "
        f"{'met' if lags[-1] <= 1.0 and not uncovered else 'NOT met'}; "
        f"{len(TreeHead.objects.filter(round_id=world.round_id))} heads"
    )
    print(f"     (the run took {total / rate:.1f} s of wall time for {args.seconds:g} s of load)")
    return [f"lag: {uncovered} allocations not covered by a head"] if uncovered else []


def main() -> int:
    args = parse_args()
    _lib.bootstrap(DB_NAME)
    problems = throughput(args) + lag(args)
    for problem in problems:
        print("FAILED:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
