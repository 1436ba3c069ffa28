"""Confirm (确认正选) through the full HTTP stack: N logged-in families fire their confirm at
once against real daphne processes on a private PostgreSQL database, and the CPU a 201 and a
409 cost set against the framework's floor, measured on the same servers in the same run.

    .venv/bin/python bench/confirm_http.py [--families 200 --units 20 --workers 1 --runs 4]
        [--pool 10] [--backlog 1024] [--concurrency 1] [--conn-max-age 60]
        [--cpu-requests 100] [--pg HOST[:PORT]] [--redis-url URL]

Targets (issue 14): 200 simultaneous confirms, p99 ≤ 600 ms on the 2-core VM (≤ 150 ms at 14
processes on a bigger machine), no status but 201 and 409; CPU per 201 and per 409 ≤ 2.0 × the
floor.

Each burst run builds a fresh round in the bench database (`anju_bench`, dropped and
recreated when the script starts): U units, N families seated and entered in one open
session (started a second ago, ends in 10 minutes), family i holding unit i mod U in its
formal cart, and a logged-in Django session per family (written straight into the session
table with its device session, as a login would leave them). The client (asyncio + httpx)
opens every request, waits on one asyncio.Event, and sends them all together; each latency
runs from the release to the end of the response. Afterwards the database is checked: no
unit twice, no family twice, one ledger entry per winner, `ledger_verify` clean. The first
run hits cold servers and is reported as the warm-up; the summary covers the rest.

Then the CPU phase, one request at a time on the same servers (daphne's CPU from /proc, and
the PostgreSQL backends' when PostgreSQL is local and the pool keeps them alive; --pool 0
leaves them unmeasured): the framework floor (`/bench/floor/`, a trivial Django view behind
the project's middleware, anonymous: mobile_api/floor.py, routed because the servers run with
ANJU_BENCH_FLOOR=1), the API floor (`/bench/floor/api/`, DRF with the applicant's login), C
confirms that win (201) and C that lose (409 `unit_taken`), each group's CPU per request and
its ratio to the floor. Last, the queries of one 201, one 409 and one `GET /api/v1/me/`,
counted in this process with Django's test client.

PostgreSQL comes from PGHOST/PGPORT/PGUSER/PGPASSWORD or --pg, Redis from ANJU_BENCH_REDIS_URL
or --redis-url (default redis://127.0.0.1:6379/10). Exit status 1 when any status other than
201/409 came back or an invariant failed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import secrets
import shutil
import socket
import ssl
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import _lib  # noqa: E402

DB_NAME = _lib.db_name("anju_bench")
STARTUP_SECONDS = 30
REQUEST_TIMEOUT = 60.0
RUN_TIMEOUT = 180.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", type=int, default=200, help="N, all fired at once")
    parser.add_argument("--units", type=int, default=20, help="U (200 for a no-contention run)")
    parser.add_argument(
        "--workers", type=int, default=1, help="daphne processes (ports), at most 16"
    )
    parser.add_argument("--runs", type=int, default=4, help="runs; the first is the warm-up")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=0,
        help="at most this many requests in flight (default: all N at once; 1 = one by one)",
    )
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=0,
        help="DATABASE_CONN_MAX_AGE for the servers (the app's default is 0)",
    )
    parser.add_argument(
        "--pool",
        type=int,
        default=10,
        metavar="SIZE",
        help="DATABASE_POOL_MAX_SIZE for each server (Django's psycopg pool, as .env.example "
        "ships it; 0 = none, and the PostgreSQL CPU is then not measured)",
    )
    parser.add_argument(
        "--cpu-requests",
        type=int,
        default=100,
        metavar="C",
        help="CPU phase: C winning and C losing confirms one at a time, and 2C floor requests "
        "(0 = skip)",
    )
    parser.add_argument(
        "--db",
        default=DB_NAME,
        help="the bench database, dropped and recreated (named anju_bench*; default %(default)s)",
    )
    parser.add_argument(
        "--pg",
        default="",
        metavar="HOST[:PORT]",
        help="PostgreSQL server (default: PGHOST/PGPORT, else 127.0.0.1:5432)",
    )
    parser.add_argument(
        "--redis-url",
        default="",
        help="Redis for the servers (default: ANJU_BENCH_REDIS_URL, else redis://127.0.0.1:6379/10)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the daphne processes (repeatable)",
    )
    parser.add_argument(
        "--without-notify",
        action="store_true",
        help="drop the outbox's and the log's NOTIFY triggers (core/wakeup.py) after migrating: "
        "the confirm's cost without them, to set against a run with them",
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=0,
        help="listen backlog (daphne -e tcp:…:backlog=N; default: daphne's -b/-p, backlog 50)",
    )
    args = parser.parse_args()
    if args.families < 1 or args.units < 1 or args.workers < 1 or args.runs < 1:
        parser.error("--families, --units, --workers and --runs must be positive")
    if args.workers > 16:
        parser.error("--workers: at most 16")
    if not args.db.startswith("anju_bench"):
        parser.error("--db: bench databases are named anju_bench*")
    globals()["DB_NAME"] = args.db
    if args.cpu_requests < 0:
        parser.error("--cpu-requests must not be negative")
    if args.pg:
        host, _, port = args.pg.rpartition(":") if ":" in args.pg else (args.pg, "", "")
        _lib.PG["host"] = host
        if port:
            _lib.PG["port"] = int(port)
    if args.redis_url:
        _lib.REDIS_URL = args.redis_url
    return args


# ------------------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (127.0.0.1)
            return response.status == 200
    except urllib.error.HTTPError as exc:
        exc.close()
        return False
    except OSError:
        return False


class Servers:
    """K daphne processes on K free ports of 127.0.0.1, stopped on exit."""

    def __init__(self, count: int, env: dict[str, str], log_dir: Path, backlog: int = 0) -> None:
        self.count, self.env, self.log_dir, self.backlog = count, env, log_dir, backlog
        self.processes: list[subprocess.Popen] = []
        self.ports: list[int] = []
        self.logs: list[Path] = []

    def __enter__(self) -> Servers:
        daphne = _lib.ROOT / ".venv" / "bin" / "daphne"
        try:
            for index in range(self.count):
                port = free_port()
                log = self.log_dir / f"daphne-{index}.log"
                if self.backlog:
                    listen = ["-e", f"tcp:port={port}:interface=127.0.0.1:backlog={self.backlog}"]
                else:
                    listen = ["-b", "127.0.0.1", "-p", str(port)]  # Twisted's backlog: 50
                with log.open("wb") as out:
                    process = subprocess.Popen(  # noqa: S603 (fixed command)
                        [str(daphne), *listen, "config.asgi:application"],
                        cwd=_lib.ROOT,
                        env=self.env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                self.processes.append(process)
                self.ports.append(port)
                self.logs.append(log)
            for process, port, log in zip(self.processes, self.ports, self.logs, strict=True):
                deadline = time.monotonic() + STARTUP_SECONDS
                while not healthy(f"http://127.0.0.1:{port}/healthz"):
                    try:
                        process.wait(timeout=0.1)
                    except subprocess.TimeoutExpired:
                        pass
                    else:
                        raise SystemExit(f"daphne exited early:\n{log.read_text()[-3000:]}")
                    if time.monotonic() > deadline:
                        raise SystemExit(f"daphne not healthy in time:\n{log.read_text()[-3000:]}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def __exit__(self, *exc) -> None:
        self.stop()

    def cpu_seconds(self) -> float:
        """User + system CPU the servers have used so far."""
        return sum(_lib.proc_cpu_seconds(process.pid) for process in self.processes)

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-chars:]}" for log in self.logs)


class ConnectionWatch:
    """Samples the bench database's backend count every 50 ms (peak = what the servers held)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(dbname="postgres", autocommit=True, **_lib.PG) as conn:
            while not self._stop.wait(0.05):
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [DB_NAME]
                ).fetchone()
                self.peak = max(self.peak, count)

    def __enter__(self) -> ConnectionWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# -------------------------------------------------------------------------------- world


def build_world(run: int, families: int, units: int):
    """A fresh round, its families entered with their target unit in the formal cart, and a
    logged-in session (plus the active device session a login writes) per family."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session as DjangoSession
    from django.utils import timezone
    from django.utils.crypto import get_random_string

    from accounts.middleware import DEVICE_SESSION_FLAG
    from accounts.models import DeviceSession, User
    from selection.models import CartItem

    now = timezone.now()
    world = _lib.build_round(
        tag=f"confirm-{run}-{secrets.token_hex(3)}",
        families=families,
        units=units,
        starts_at=now - timedelta(seconds=1),
        ends_at=now + timedelta(minutes=10),
        rank_base=run * 100_000,
    )
    targets = [world.unit_ids[i % units] for i in range(families)]
    CartItem.objects.bulk_create(
        CartItem(
            family_id=family_id,
            round_id=world.round_id,
            kind=CartItem.Kind.FORMAL,
            unit_id=unit_id,
            position=1,
            added_at=now,
        )
        for family_id, unit_id in zip(world.family_ids, targets, strict=True)
    )
    users = {user.pk: user for user in User.objects.filter(pk__in=world.user_ids)}
    store = SessionStore()
    keys, rows, devices = [], [], []
    for user_id in world.user_ids:
        key = get_random_string(32, string.ascii_lowercase + string.digits)
        data = {
            SESSION_KEY: str(user_id),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: users[user_id].get_session_auth_hash(),
            DEVICE_SESSION_FLAG: True,
        }
        rows.append(
            DjangoSession(
                session_key=key,
                session_data=store.encode(data),
                expire_date=now + timedelta(seconds=settings.SESSION_COOKIE_AGE),
            )
        )
        devices.append(
            DeviceSession(
                user_id=user_id, session_key=key, ip="127.0.0.1", provider="dev", created_at=now
            )
        )
        keys.append(key)
    DjangoSession.objects.bulk_create(rows)
    DeviceSession.objects.bulk_create(devices)
    return world, targets, keys


# ------------------------------------------------------------------------------- client


async def fire(world, targets, session_keys, ports, concurrency) -> tuple[list[dict], float, float]:
    """Send every confirm at once; return the results, the wall time and the client's own
    CPU seconds over that time. Each family is its own client (one connection, like one
    phone): a single shared httpx pool of N connections costs the client O(N²) bookkeeping
    and would compete with the servers for this machine's two cores."""
    import httpx

    n = len(targets)
    gate = asyncio.Semaphore(concurrency or n)
    timeout = httpx.Timeout(REQUEST_TIMEOUT)
    release = asyncio.Event()
    tls = ssl.create_default_context()  # unused (plain http), but built once, not N times
    clients = [
        httpx.AsyncClient(limits=httpx.Limits(max_connections=1), timeout=timeout, verify=tls)
        for _ in range(n)
    ]
    try:

        async def confirm(i: int) -> dict:
            client = clients[i]
            port = ports[i % len(ports)]
            csrf = get_random_string(32)
            body = json.dumps(
                {"unit_id": targets[i], "idempotency_key": f"bench-{i:06d}-{secrets.token_hex(4)}"}
            )
            request = client.build_request(
                "POST",
                f"http://127.0.0.1:{port}/api/v1/selection/{world.round_id}/confirm/",
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "Cookie": f"sessionid={session_keys[i]}; csrftoken={csrf}",
                    "X-CSRFToken": csrf,
                    "Origin": f"http://127.0.0.1:{port}",
                },
            )
            await release.wait()
            async with gate:
                started = time.perf_counter()
                try:
                    response = await client.send(request)
                    status, text = response.status_code, response.text
                except httpx.HTTPError as exc:
                    status, text = 0, f"{exc.__class__.__name__}: {exc}"
                elapsed = time.perf_counter() - started
            return {"i": i, "status": status, "body": text, "ms": elapsed * 1000}

        tasks = [asyncio.create_task(confirm(i)) for i in range(n)]
        await asyncio.sleep(0.2)  # every task is waiting on the event
        cpu_start = time.process_time()
        wall_start = time.perf_counter()
        release.set()
        results = await asyncio.wait_for(asyncio.gather(*tasks), timeout=RUN_TIMEOUT)
        wall = time.perf_counter() - wall_start
        client_cpu = time.process_time() - cpu_start
    finally:
        await asyncio.gather(*(client.aclose() for client in clients))
    return results, wall, client_cpu


def get_random_string(length: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


# ------------------------------------------------------------------------------- checks


def check(world, targets, results, units: int, families: int) -> list[str]:
    from selection.models import Allocation, LedgerEntry, Unit

    problems = []
    statuses = collections.Counter(r["status"] for r in results)
    winners_expected = min(units, families)
    if set(statuses) - {201, 409}:
        problems.append(f"unexpected statuses: {dict(statuses)}")
    if statuses[201] != winners_expected:
        problems.append(f"{statuses[201]} × 201, expected {winners_expected}")
    codes = collections.Counter(
        json.loads(r["body"])["error"]["code"] for r in results if r["status"] == 409
    )
    if set(codes) - {"unit_taken"}:
        problems.append(f"unexpected 409 codes: {dict(codes)}")
    allocations = list(
        Allocation.objects.filter(round_id=world.round_id).values_list("unit_id", "family_id")
    )
    if len({u for u, _ in allocations}) != len(allocations):
        problems.append("a unit is allocated twice")
    if len({f for _, f in allocations}) != len(allocations):
        problems.append("a family has two allocations")
    won = {world.family_ids[r["i"]]: targets[r["i"]] for r in results if r["status"] == 201}
    if dict((f, u) for u, f in allocations) != won:
        problems.append("the 201 answers differ from the allocation rows")
    taken = Unit.objects.filter(round_id=world.round_id, status=Unit.Status.TAKEN).count()
    if taken != len(allocations):
        problems.append(f"{taken} units taken, {len(allocations)} allocations")
    confirms = LedgerEntry.objects.filter(round_id=world.round_id, kind="confirm").count()
    if confirms != len(allocations):
        problems.append(f"{confirms} ledger confirms, {len(allocations)} allocations")
    try:  # the hash-chained ledger
        from selection.ledger import ledger_verify
    except ImportError:  # the transparency log (issue 14): its entries are sequenced later
        ledger_verify = None
    if ledger_verify is not None:
        verified = ledger_verify()
        if verified.first_bad_seq is not None:
            problems.append(f"ledger_verify: seq {verified.first_bad_seq}: {verified.reason}")
    return problems


# ---------------------------------------------------------------------------- CPU phase


def cpu_phase(servers: Servers, requests: int, pg_measured: bool) -> dict[str, dict]:
    """CPU per request, one request at a time on the same servers: the floor, the API floor,
    `requests` winning and `requests` losing confirms. Returns {label: figures}."""
    import httpx

    world, targets, keys = build_world(90, 2 * requests, requests)
    ports = servers.ports
    clients = [httpx.Client(timeout=REQUEST_TIMEOUT) for _ in ports]  # keep-alive per port

    def send(i: int, method: str, path: str, key: str = "", body: str | None = None):
        index = i % len(ports)
        headers = {}
        if key:
            csrf = get_random_string(32)
            headers = {"Cookie": f"sessionid={key}; csrftoken={csrf}", "X-CSRFToken": csrf}
        if body is not None:
            headers |= {
                "Content-Type": "application/json",
                "Origin": f"http://127.0.0.1:{ports[index]}",
            }
        response = clients[index].request(
            method, f"http://127.0.0.1:{ports[index]}{path}", headers=headers, content=body
        )
        clients[index].cookies.clear()
        code = ""
        if response.status_code == 409:
            code = json.loads(response.text)["error"]["code"]
        return f"{response.status_code}{' ' + code if code else ''}"

    def confirm(i: int) -> str:
        body = json.dumps(
            {"unit_id": targets[i], "idempotency_key": f"cpu-{i:06d}-{secrets.token_hex(4)}"}
        )
        return send(i, "POST", f"/api/v1/selection/{world.round_id}/confirm/", keys[i], body)

    groups = {
        "floor": [lambda i=i: send(i, "GET", "/bench/floor/") for i in range(2 * requests)],
        "api floor": [
            lambda i=i: send(i, "GET", "/bench/floor/api/", keys[i]) for i in range(2 * requests)
        ],
        "confirm 201": [lambda i=i: confirm(i) for i in range(requests)],
        "confirm 409": [lambda i=i: confirm(i) for i in range(requests, 2 * requests)],
    }
    figures: dict[str, dict] = {}
    try:
        for i in range(50):  # warm the floor paths (the confirm's were warmed by the bursts)
            send(i, "GET", "/bench/floor/")
            send(i, "GET", "/bench/floor/api/", keys[i % len(keys)])
        for label, calls in groups.items():
            cpu_before = servers.cpu_seconds()
            pg_before = _lib.backend_cpu(DB_NAME) if pg_measured else {}
            wall_before = time.perf_counter()
            statuses = collections.Counter(call() for call in calls)
            wall = time.perf_counter() - wall_before
            daphne = (servers.cpu_seconds() - cpu_before) * 1000 / len(calls)
            pg = None
            if pg_measured:
                pg_after = _lib.backend_cpu(DB_NAME)
                pg = (
                    sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
                    * 1000
                    / len(calls)
                )
            figures[label] = {
                "n": len(calls),
                "statuses": dict(statuses),
                "daphne": daphne,
                "pg": pg,
                "total": daphne + (pg or 0.0),
                "wall": wall * 1000 / len(calls),
            }
    finally:
        for client in clients:
            client.close()
    return figures


def query_counts() -> dict[str, tuple[int, int]]:
    """(status, queries) of one winning confirm, one losing confirm and one GET /api/v1/me/,
    through Django's test client in this process (the servers' settings, DEBUG off)."""
    import logging

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    logging.getLogger("django.request").setLevel(logging.ERROR)  # the expected 409
    world, targets, keys = build_world(91, 2, 1)
    client = Client(HTTP_HOST="127.0.0.1")
    counts = {}

    def count(label: str, method: str, path: str, key: str, body: dict | None = None) -> None:
        client.cookies["sessionid"] = key
        with CaptureQueriesContext(connection) as captured:
            if body is None:
                response = client.generic(method, path)
            else:
                response = client.generic(
                    method, path, json.dumps(body), content_type="application/json"
                )
        counts[label] = (response.status_code, len(captured))

    count("GET /api/v1/me/", "GET", "/api/v1/me/", keys[0])
    url = f"/api/v1/selection/{world.round_id}/confirm/"
    for i, label in ((0, "confirm (winner)"), (1, "confirm (loser)")):
        count(
            label,
            "POST",
            url,
            keys[i],
            {"unit_id": targets[i], "idempotency_key": f"q-{i}-x1234567"},
        )
    return counts


# --------------------------------------------------------------------------------- main


def main() -> int:
    args = parse_args()
    started = time.perf_counter()
    migrate_s = _lib.bootstrap(DB_NAME, conn_max_age=args.conn_max_age)
    if args.without_notify:
        from django.db import connection

        with connection.cursor() as cursor:
            for table in ("events_event", "selection_ledgerentry"):
                cursor.execute(f"DROP TRIGGER {table}_notify ON {table}")
    env = {**os.environ, "ANJU_BENCH_FLOOR": "1"}  # the floor views (mobile_api/floor.py)
    if args.pool:
        env["DATABASE_POOL_MAX_SIZE"] = str(args.pool)
        # Measure the wait for a connection instead of failing after the app's default 10 s.
        env["DATABASE_POOL_TIMEOUT"] = "60"
    for item in args.server_env:
        name, _, value = item.partition("=")
        env[name] = value
    if env.get("DATABASE_POOL_MAX_SIZE", "0") not in ("", "0"):
        probe = subprocess.run(  # noqa: S603 (fixed command)
            [sys.executable, "-c", "import psycopg_pool"], env=env, capture_output=True
        )
        if probe.returncode:
            print("--pool needs psycopg_pool importable by the servers (psycopg[pool])")
            return 2
    print(
        f"confirm_http: N={args.families} families, U={args.units} units, "
        f"{args.workers} daphne worker(s), CONN_MAX_AGE={args.conn_max_age}, "
        f"pool {env.get('DATABASE_POOL_MAX_SIZE') or 'off'}, "
        f"backlog {args.backlog or 'daphne default (50)'}"
        + (f", server env {args.server_env}" if args.server_env else "")
        + (", NOTIFY triggers dropped" if args.without_notify else "")
        + f"; database {DB_NAME} on {_lib.PG['host']}:{_lib.PG['port']} created and migrated "
        f"in {migrate_s:.1f} s; Redis {_lib.REDIS_URL}; server-side binding "
        f"{env.get('DATABASE_SERVER_SIDE_BINDING') or 'default'}, prepare threshold "
        f"{env.get('DATABASE_PREPARE_THRESHOLD') or 'default'}; {os.cpu_count()} CPUs"
    )
    failed = False
    measured: list[dict] = []
    log_dir = Path(tempfile.mkdtemp(prefix="anju-bench-"))
    with Servers(args.workers, env, log_dir, args.backlog) as servers:
        print(f"daphne on ports {servers.ports}")
        for run in range(1, args.runs + 1):
            world, targets, keys = build_world(run, args.families, args.units)
            cpu_before = servers.cpu_seconds()
            pg_before = _lib.backend_cpu(DB_NAME)
            with ConnectionWatch() as watch:
                results, wall, client_cpu = asyncio.run(
                    fire(world, targets, keys, servers.ports, args.concurrency)
                )
            cpu_ms = (servers.cpu_seconds() - cpu_before) * 1000 / len(results)
            # Backends that lived through the run (with a pool: all of them; without, the
            # per-request backends have exited and their CPU is not seen).
            pg_after = _lib.backend_cpu(DB_NAME)
            pg_ms = (
                sum(cpu - pg_before.get(pid, 0.0) for pid, cpu in pg_after.items())
                * 1000
                / len(results)
            )
            client_ms = client_cpu * 1000
            latencies = [r["ms"] for r in results]
            statuses = collections.Counter(r["status"] for r in results)
            problems = check(world, targets, results, args.units, args.families)
            figures = {
                "p50": _lib.percentile(latencies, 50),
                "p90": _lib.percentile(latencies, 90),
                "p99": _lib.percentile(latencies, 99),
                "max": max(latencies),
                "wall": wall * 1000,
                "peak_conn": watch.peak,
                "cpu": cpu_ms,
                "pg_cpu": pg_ms,
            }
            label = "warm-up" if run == 1 and args.runs > 1 else f"run {run}"
            print(
                f"{label:>8}: concurrency {args.concurrency or len(results)}, statuses "
                + ", ".join(f"{count} × {status}" for status, count in sorted(statuses.items()))
                + f"; p50 {figures['p50']:.0f} ms, p90 {figures['p90']:.0f} ms, "
                f"p99 {figures['p99']:.0f} ms, max {figures['max']:.0f} ms; "
                f"wall {figures['wall']:.0f} ms; CPU per request: daphne {cpu_ms:.1f} ms, "
                f"postgres {pg_ms:.1f} ms{'' if env.get('DATABASE_POOL_MAX_SIZE') else ' (n/a)'}, "
                f"client CPU {client_ms:.0f} ms in all; "
                f"peak DB backends {watch.peak}; load {os.getloadavg()[0]:.1f}; "
                + ("invariants ok" if not problems else "FAILED: " + "; ".join(problems))
            )
            if problems:
                failed = True
                odd = [r for r in results if r["status"] not in (201, 409)][:3]
                for r in odd:
                    print(f"    e.g. {r['status']}: {r['body'][:300]}")
            if label != "warm-up":
                measured.append(figures)
        pg_measured = bool(env.get("DATABASE_POOL_MAX_SIZE", "0") not in ("", "0"))
        pg_measured = pg_measured and _lib.pg_is_local()
        cpu = cpu_phase(servers, args.cpu_requests, pg_measured) if args.cpu_requests else {}
        if cpu:
            floor = cpu["floor"]["total"]
            print(
                "CPU per request, one at a time (daphne + postgres"
                + ("" if pg_measured else ", postgres not measured")
                + "):"
            )
            for label, f in cpu.items():
                pg = f"{f['pg']:.2f}" if f["pg"] is not None else "n/a"
                print(
                    f"  {label:>12}: {f['total']:6.2f} ms = {f['daphne']:.2f} + {pg}; "
                    f"{f['total'] / floor:4.2f} × floor; wall {f['wall']:.1f} ms; "
                    + ", ".join(f"{n} × {s}" for s, n in sorted(f["statuses"].items()))
                )
            expected = {
                "floor": {"200"},
                "api floor": {"200"},
                "confirm 201": {"201"},
                "confirm 409": {"409 unit_taken"},
            }
            for label, f in cpu.items():
                if set(f["statuses"]) != expected[label]:
                    failed = True
                    print(f"  FAILED: {label} answered {f['statuses']}")
            print(
                f"  ratios to the floor: 201 {cpu['confirm 201']['total'] / floor:.2f}×, "
                f"409 {cpu['confirm 409']['total'] / floor:.2f}× (target ≤ 2.0×)"
            )
        if failed:
            print(servers.log_tail())
    counts = query_counts()
    print(
        "queries per request (Django's test client, in process): "
        + "; ".join(f"{label} {status}: {n}" for label, (status, n) in counts.items())
    )
    if failed:
        print(f"server logs kept in {log_dir}")
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    if measured:
        print(
            f"summary over {len(measured)} measured run(s): "
            + "; ".join(
                f"{key} {_lib.spread([m[key] for m in measured])} ms"
                for key in ("p50", "p99", "max", "wall", "cpu", "pg_cpu")
            )
        )
    verdict = "FAIL" if failed else "ok"
    p99s = [m["p99"] for m in measured]
    if p99s and not failed:
        verdict += f" (p99 worst {max(p99s):.0f} ms vs target 600 ms on 2 cores)"
    print(f"result: {verdict}; total {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
