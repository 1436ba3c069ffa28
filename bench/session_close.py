"""Session close (场次结束, auto-assign) for 1,000 entered families on PostgreSQL.

    .venv/bin/python bench/session_close.py [--families 1000 --units 600 --confirmed 100 --runs 4]

Target (the issue): closing a session of 1,000 entered families takes ≤ 1 s.

Each run builds a fresh round in the bench database (`anju_bench_close`, dropped and
recreated when the script starts): U units, N families seated in one session and entered,
each with a formal cart of 5 distinct units drawn with popularity weights (a few units are
in many carts, as in a real pool), and C families that confirmed during the window through
`selection_confirm` (so their allocations, ledger entries and events are the real ones).
Then it times the whole `session_close(session_id=..., now=ends_at)` call, counts its
queries (CaptureQueriesContext) and checks the result: the log (`log_verify`) clean,
`session_replay` ok, no unit or family twice, every family with an outcome.

The first run is reported as the warm-up (cold caches); the summary covers the rest.
`--profile` prints the close's top functions (cProfile) for the last run.
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import random
import re
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _lib  # noqa: E402

DB_NAME = _lib.db_name("anju_bench_close")
CART = 5


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", type=int, default=1000)
    parser.add_argument("--units", type=int, default=600)
    parser.add_argument("--confirmed", type=int, default=100, help="confirmed before the close")
    parser.add_argument("--runs", type=int, default=4, help="runs; the first is the warm-up")
    parser.add_argument("--seed", type=int, default=20260303)
    parser.add_argument("--profile", action="store_true", help="cProfile the last close")
    parser.add_argument(
        "--queries", action="store_true", help="the last close's queries, grouped by shape"
    )
    args = parser.parse_args()
    if args.units < CART or args.families < 1 or args.runs < 1:
        parser.error(f"need --units ≥ {CART}, --families ≥ 1, --runs ≥ 1")
    if not 0 <= args.confirmed <= min(args.families, args.units):
        parser.error("--confirmed must be between 0 and min(families, units)")
    return args


def popular_carts(rng: random.Random, families: int, unit_ids: list[int]) -> list[list[int]]:
    """Each family's 5 distinct units, drawn with Zipf-like weights (weight 1/rank^0.9 over
    a shuffled pool): the top 10% of units appear in roughly half of all carts."""
    pool = unit_ids[:]
    rng.shuffle(pool)
    weights = [1 / (rank**0.9) for rank in range(1, len(pool) + 1)]
    carts = []
    for _ in range(families):
        chosen: list[int] = []
        while len(chosen) < CART:
            unit = rng.choices(pool, weights)[0]
            if unit not in chosen:
                chosen.append(unit)
        carts.append(chosen)
    return carts


def build_world(run: int, args: argparse.Namespace):
    from django.utils import timezone

    from accounts.models import Family
    from selection.allocation import selection_confirm
    from selection.models import CartItem

    rng = random.Random(args.seed + run)
    starts_at = timezone.now().replace(microsecond=0) - timedelta(minutes=10)
    ends_at = starts_at + timedelta(seconds=120)
    world = _lib.build_round(
        tag=f"close-{run}-{rng.getrandbits(24):06x}",
        families=args.families,
        units=args.units,
        starts_at=starts_at,
        ends_at=ends_at,
        rank_base=run * 100_000,
    )
    carts = popular_carts(rng, args.families, world.unit_ids)
    CartItem.objects.bulk_create(
        CartItem(
            family_id=family_id,
            round_id=world.round_id,
            kind=CartItem.Kind.FORMAL,
            unit_id=unit_id,
            position=position,
            added_at=starts_at,
        )
        for family_id, cart in zip(world.family_ids, carts, strict=True)
        for position, unit_id in enumerate(cart, start=1)
    )
    # C families confirm during the window, in a random order, each its first cart unit
    # that is still free (through the service: allocation, ledger entry, events).
    families = {f.pk: f for f in Family.objects.filter(pk__in=world.family_ids)}
    order = list(range(args.families))
    rng.shuffle(order)
    taken: set[int] = set()
    confirmed = 0
    for index in order:
        if confirmed == args.confirmed:
            break
        unit_id = next((u for u in carts[index] if u not in taken), None)
        if unit_id is None:
            continue
        at = starts_at + timedelta(seconds=5 + confirmed * 100 / max(1, args.confirmed))
        selection_confirm(
            family=families[world.family_ids[index]],
            round_id=world.round_id,
            unit_id=unit_id,
            idempotency_key=f"close-bench-{index:06d}",
            now=at,
        )
        taken.add(unit_id)
        confirmed += 1
    return world, ends_at, confirmed


def query_shapes(captured: list[dict], top: int = 12) -> str:
    """Queries grouped by their text with literals blanked: count and Django-timed ms."""
    shapes: dict[str, list[float]] = {}
    for query in captured:
        shape = re.sub(r"'[^']*'|\b\d+\b", "?", query["sql"])
        shape = re.sub(r"(\?, )+\?", "?…", shape)[:110]
        shapes.setdefault(shape, []).append(float(query["time"]) * 1000)
    ranked = sorted(shapes.items(), key=lambda item: -sum(item[1]))[:top]
    return "\n".join(
        f"    {len(times):>5} × {sum(times):7.1f} ms  {shape}" for shape, times in ranked
    )


def check(world, report, confirmed: int, families: int) -> list[str]:
    from selection.models import Allocation, Seat
    from selection.replay import session_replay
    from selection.translog import log_verify, sequence_pending

    problems = []
    allocations = list(
        Allocation.objects.filter(round_id=world.round_id).values_list("unit_id", "family_id")
    )
    if len({u for u, _ in allocations}) != len(allocations):
        problems.append("a unit is allocated twice")
    if len({f for _, f in allocations}) != len(allocations):
        problems.append("a family has two allocations")
    if len(allocations) != confirmed + len(report.assigned):
        problems.append(
            f"{len(allocations)} allocations, expected {confirmed} + {len(report.assigned)}"
        )
    outcomes = Counter(
        Seat.objects.filter(session_id=world.session_id).values_list("outcome", flat=True)
    )
    if outcomes.get("", 0):
        problems.append(f"{outcomes['']} seats without an outcome")
    if sum(outcomes.values()) != families:
        problems.append(f"{sum(outcomes.values())} seats, expected {families}")
    sequence_pending()  # the log's sequencer, as its worker would within a second
    verified = log_verify(round_id=world.round_id)
    if verified.first_bad is not None:
        problems.append(f"log_verify: index {verified.first_bad}: {verified.reason}")
    replay = session_replay(session_id=world.session_id)
    if not replay.ok:
        problems.append(f"session_replay: {replay.problems[:3]}")
    return problems, outcomes


def main() -> int:
    args = parse_args()
    started = time.perf_counter()
    migrate_s = _lib.bootstrap(DB_NAME)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from selection.allocation import session_close

    print(
        f"session_close: N={args.families} entered families, U={args.units} units, "
        f"carts of {CART} (popularity-weighted), C={args.confirmed} confirmed before; "
        f"database {DB_NAME} created and migrated in {migrate_s:.1f} s"
    )
    failed, measured = False, []
    for run in range(1, args.runs + 1):
        build_started = time.perf_counter()
        world, ends_at, confirmed = build_world(run, args)
        build_s = time.perf_counter() - build_started
        profiler = cProfile.Profile() if args.profile and run == args.runs else None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend = cursor.fetchone()[0]
        with CaptureQueriesContext(connection) as queries:
            if profiler:
                profiler.enable()
            py0, pg0 = time.process_time(), _lib.proc_cpu_seconds(backend)
            t0 = time.perf_counter()
            report = session_close(session_id=world.session_id, now=ends_at)
            elapsed = time.perf_counter() - t0
            py_ms = (time.process_time() - py0) * 1000
            pg_ms = (_lib.proc_cpu_seconds(backend) - pg0) * 1000
            if profiler:
                profiler.disable()
        sql_ms = sum(float(q["time"]) for q in queries.captured_queries) * 1000
        if report is None:
            print(f"run {run}: session_close returned None (not closed)")
            failed = True
            continue
        problems, outcomes = check(world, report, confirmed, args.families)
        label = "warm-up" if run == 1 and args.runs > 1 else f"run {run}"
        print(
            f"{label:>8}: close {elapsed * 1000:.0f} ms (CPU: python {py_ms:.0f} ms, postgres "
            f"{pg_ms:.0f} ms), {len(queries)} queries (SQL {sql_ms:.0f} ms as timed by "
            f"Django); auto-assigned {len(report.assigned)}, "
            f"no unit {len(report.no_unit)}, absent {len(report.absent)}, confirmed before "
            f"{confirmed}; seats {dict(sorted(outcomes.items()))}; load "
            f"{__import__('os').getloadavg()[0]:.1f}; setup {build_s:.1f} s; "
            + ("checks ok (log_verify, session_replay)" if not problems else "FAILED: ")
            + "; ".join(problems)
        )
        failed = failed or bool(problems)
        if label != "warm-up":
            measured.append(
                {
                    "close": elapsed * 1000,
                    "queries": len(queries),
                    "sql": sql_ms,
                    "py": py_ms,
                    "pg": pg_ms,
                }
            )
        if args.queries and run == args.runs:
            print(query_shapes(queries.captured_queries))
        if profiler:
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
            print(out.getvalue())
    if measured:
        print(
            f"summary over {len(measured)} measured run(s): close "
            f"{_lib.spread([m['close'] for m in measured])} ms; queries "
            f"{_lib.spread([m['queries'] for m in measured])}; SQL "
            f"{_lib.spread([m['sql'] for m in measured])} ms; CPU python "
            f"{_lib.spread([m['py'] for m in measured])} ms + postgres "
            f"{_lib.spread([m['pg'] for m in measured])} ms"
        )
    worst = max((m["close"] for m in measured), default=float("nan"))
    print(
        f"result: {'FAIL' if failed else 'ok'} (worst close {worst:.0f} ms vs target 1000 ms); "
        f"total {time.perf_counter() - started:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
