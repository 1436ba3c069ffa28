"""Every benchmark in bench/ still runs against the code as it is, at its smallest size.

The figures in docs/BENCHMARKS.md are only as good as the benches that take them, and a bench
that nobody runs rots without a sound: the fan-out bench failed every run for a whole issue
(the board's events had moved to the allocation log's sequencer, which it never started)
before anyone noticed. Each bench exits 1 when one of its own checks fails (a confirm not
answered, an event lost, a frame that differs from the outbox, a log that does not verify, a
sealed PDF that does not validate), never for a speed target; this runs each one with a few
families, in private databases (ANJU_BENCH_DB_SUFFIX) and this test process's own Redis
database, and asserts on those checks alone. No figure is asserted (tests never assert on
wall-clock time); page_weight.py needs the demo and is run by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]

BENCHES = {
    "realtime_fanout": [
        "--clients",
        "20",
        "--units",
        "60",
        "--no-warmup",
        "--systems",
        "ours",
        "--split",
        "--runs",
        "1",
        "--layers",
        "pubsub",
    ],
    "confirm_http": ["--families", "10", "--units", "5", "--runs", "1"],
    "session_close": ["--families", "20", "--units", "20", "--confirmed", "5", "--runs", "1"],
    "sequencer": ["--allocations", "200", "--rate", "200", "--seconds", "1"],
    "signing_pdf": ["--runs", "1", "--qr-runs", "2", "--clauses", "2"],
}


# Each bench's database (bench/*.py DB_NAME), dropped after its run here.
DATABASES = {
    "realtime_fanout": "anju_bench_fanout",
    "confirm_http": "anju_bench",
    "session_close": "anju_bench_close",
    "sequencer": "anju_bench_sequencer",
    "signing_pdf": "anju_bench_pdf",
}


def drop_database(name: str, env: dict[str, str]) -> None:
    import psycopg

    with psycopg.connect(
        dbname="postgres",
        host=env["PGHOST"],
        port=env["PGPORT"],
        user=env["PGUSER"],
        password=env.get("PGPASSWORD", ""),
        autocommit=True,
    ) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_env() -> dict[str, str]:
    database = urlsplit(os.environ["DATABASE_URL"])
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "ANJU_", "PG")) and key not in {"DATABASE_URL", "DEBUG"}
    }
    env.update(
        PGHOST=database.hostname or "127.0.0.1",
        PGPORT=str(database.port or 5432),
        PGUSER=database.username or "postgres",
        ANJU_BENCH_DB_SUFFIX=f"_suite_{worker}",
        ANJU_BENCH_REDIS_URL=settings.REDIS_URL,  # this process's own database (conftest)
        PYTHONUNBUFFERED="1",
    )
    if database.password:
        env["PGPASSWORD"] = database.password
    return env


@pytest.fixture(scope="module")
def migrated_template():
    """One migrated database that every bench of this worker starts as a copy of
    (ANJU_BENCH_TEMPLATE_DB, bench/_lib.py recreate_database), made by the benches' own
    bootstrap in a process that has exited, so nothing is connected to it when it is copied."""
    env = bench_env()
    name = "anju_bench_template" + env["ANJU_BENCH_DB_SUFFIX"]
    code = "import sys; sys.path.insert(0, 'bench'); import _lib; _lib.bootstrap(sys.argv[1])"
    try:
        subprocess.run(  # noqa: S603 (fixed command)
            [sys.executable, "-c", code, name], cwd=ROOT, env=env, check=True, timeout=300
        )
        yield name
    finally:
        drop_database(name, env)


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.parametrize("bench", sorted(BENCHES))
def test_the_bench_runs_and_its_checks_pass(bench, migrated_template):
    env = bench_env() | {"ANJU_BENCH_TEMPLATE_DB": migrated_template}
    try:
        done = subprocess.run(  # noqa: S603 (fixed command)
            [sys.executable, f"bench/{bench}.py", *BENCHES[bench]],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        drop_database(DATABASES[bench] + env["ANJU_BENCH_DB_SUFFIX"], env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"bench/{bench}.py exited {done.returncode}:\n{output[-4000:]}"
    if bench in ("realtime_fanout", "confirm_http", "session_close"):
        assert "result: ok" in done.stdout, done.stdout[-2000:]
