"""Shared set-up for the benchmarks: a private PostgreSQL database, Django bootstrapped
against it, and fast bulk creation of a round whose families are seated in one session.

Never touches the `test` / `test_test` databases: each benchmark names its own (`anju_bench*`,
plus ANJU_BENCH_DB_SUFFIX when set) and drops and recreates it on every run. The suite runs
every bench at its smallest size (tests/tools/test_benches_run.py).
"""

from __future__ import annotations

import os
import re
import secrets
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where the benchmarks' PostgreSQL and Redis are: libpq's own variables (PGHOST, PGPORT,
# PGUSER) and ANJU_BENCH_REDIS_URL, so that a bench runs unchanged on a bigger machine.
PG = {
    "host": os.environ.get("PGHOST") or "127.0.0.1",
    "port": int(os.environ.get("PGPORT") or 5432),
    "user": os.environ.get("PGUSER") or "postgres",
}
BENCH_SECRET_KEY = "bench-only-secret-key-not-for-production-0123456789abcdefghijklmnopqrstuv"
REDIS_URL = os.environ.get("ANJU_BENCH_REDIS_URL") or "redis://127.0.0.1:6379/10"


def db_name(base: str) -> str:
    """A bench's database name: its own, plus ANJU_BENCH_DB_SUFFIX (letters, digits, _) so that
    the suite's run of the benches (tests/tools/test_benches_run.py) never drops the database
    of a bench someone is running by hand."""
    suffix = os.environ.get("ANJU_BENCH_DB_SUFFIX", "")
    if not re.fullmatch(r"[a-z0-9_]*", suffix):
        raise SystemExit(f"ANJU_BENCH_DB_SUFFIX={suffix!r}: lower-case letters, digits, _")
    return base + suffix


def pg_is_local() -> bool:
    """PostgreSQL's backends are processes of this machine (their CPU is read from /proc)."""
    return PG["host"] in ("127.0.0.1", "localhost", "::1") or PG["host"].startswith("/")


def database_url(name: str) -> str:
    password = os.environ.get("PGPASSWORD", "")
    auth = f"{PG['user']}:{password}" if password else PG["user"]
    return f"postgres://{auth}@{PG['host']}:{PG['port']}/{name}"


_LEDGER_KEY: list[str] = []
_RUN_KEYS = (secrets.token_hex(32), secrets.token_hex(32))


def bench_ledger_key() -> str:
    """An Ed25519 key (PKCS#8 PEM) for this bench's processes: DEBUG is off, so the settings
    require the allocation log's signing key from the environment (docs/TRANSPARENCY.md)."""
    if not _LEDGER_KEY:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _LEDGER_KEY.append(pem.decode())
    return _LEDGER_KEY[0]


def bench_env(db_name: str, *, conn_max_age: int = 0) -> dict[str, str]:
    """The environment of the benchmark process and of the servers it starts."""
    return {
        "ANJU_LEDGER_SIGNING_KEY": os.environ.get("ANJU_LEDGER_SIGNING_KEY") or bench_ledger_key(),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(db_name),
        "DATABASE_CONN_MAX_AGE": str(conn_max_age),
        "DEBUG": "0",
        "SECRET_KEY": BENCH_SECRET_KEY,
        # Personal data at rest (issue 15): this run's keys, the same in every process it starts.
        "ANJU_FIELD_ENCRYPTION_KEYS": os.environ.get("ANJU_FIELD_ENCRYPTION_KEYS") or _RUN_KEYS[0],
        "ANJU_PII_SEARCH_HASH_KEY": os.environ.get("ANJU_PII_SEARCH_HASH_KEY") or _RUN_KEYS[1],
        "ALLOWED_HOSTS": "127.0.0.1",
        # Links the server makes; plain http on loopback is accepted on purpose (core/urls.py).
        "SITE_URL": "http://127.0.0.1",
        "SITE_URL_ALLOW_HTTP": "1",
        "SECURE_COOKIES": "0",  # plain http on 127.0.0.1
        "REDIS_URL": REDIS_URL,
        "REDIS_PREFIX": f"{db_name}",
        "SMS_PROVIDER": "console",
        "OIDC_ISSUER": "",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def recreate_database(name: str) -> None:
    """Drop and create the bench's database. With ANJU_BENCH_TEMPLATE_DB (a migrated
    `anju_bench*` database nobody is connected to) it is created as a copy of that one, and
    the migrate that follows has nothing to apply: the suite migrates once for all its
    benches instead of once per bench (~9 s of CPU each on a 2-core VM)."""
    template = os.environ.get("ANJU_BENCH_TEMPLATE_DB", "")
    for each in (name, template):
        if each and not each.startswith("anju_bench"):
            raise SystemExit(f"refusing {each!r}: bench databases are named anju_bench*")
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **PG) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))


def bootstrap(db_name: str, *, conn_max_age: int = 0, fresh: bool = True) -> float:
    """(Re)create the database, set the environment, django.setup(), migrate. Returns the
    seconds spent migrating."""
    os.environ.update(bench_env(db_name, conn_max_age=conn_max_age))
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    if fresh:
        recreate_database(db_name)
    import django

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    return time.perf_counter() - started


@dataclass
class BenchRound:
    round_id: int
    session_id: int
    unit_ids: list[int]
    family_ids: list[int]  # in rank order
    user_ids: list[int]  # the families' applicants' users, same order


def build_round(
    *,
    tag: str,
    families: int,
    units: int,
    starts_at: datetime,
    ends_at: datetime,
    rank_base: int,
    layout_cycle: bool = False,
) -> BenchRound:
    """A round with `units` units and `families` families (each with an applicant and a
    user with an unusable password), all seated and entered in one open session. Bulk
    inserts: realistic rows without going through the services that do not matter here."""
    from django.contrib.auth.hashers import make_password

    from accounts.models import Applicant, Family, Layout, User
    from selection.models import Round, Seat, Session, Unit

    rnd = Round.objects.create(
        name=f"bench {tag}",
        preselect_starts_at=starts_at - timedelta(days=1),
        cart_limit=5,
        window_seconds=max(10, int((ends_at - starts_at).total_seconds())),
    )
    session = Session.objects.create(
        round=rnd,
        order=1,
        starts_at=starts_at,
        ends_at=ends_at,
        status=Session.Status.OPEN,
        opened_at=starts_at,
    )
    layouts = [Layout.ONE_BED, Layout.TWO_BED, Layout.THREE_BED]
    made_units = Unit.objects.bulk_create(
        Unit(
            round=rnd,
            building=str(1 + i // 200),
            number=f"{(i % 200) // 10 + 2:02d}{i % 10 + 1:02d}",
            floor=(i % 200) // 10 + 2,
            layout=layouts[i % 3] if layout_cycle else Layout.ONE_BED,
            orientation="S",
            area=Decimal("45.20"),
            monthly_rent=Decimal("1469.00"),
        )
        for i in range(units)
    )
    password = make_password(None)
    users = User.objects.bulk_create(
        User(username=f"bench-{tag}-{i}", password=password) for i in range(families)
    )
    applicants = Applicant.objects.bulk_create(
        Applicant(
            user=user,
            real_name=f"测试{i}",
            id_number=f"4403{rank_base + i + 1:013d}X",
            mobile=f"139{(rank_base + i) % 10**8:08d}",
            privacy_version=1,  # read the seeded privacy notice (accounts/privacy.py)
        )
        for i, user in enumerate(users)
    )
    made_families = Family.objects.bulk_create(
        Family(
            rank=rank_base + i + 1,
            household_size=3,
            eligible_layouts=[Layout.ONE_BED, Layout.TWO_BED, Layout.THREE_BED],
            main_applicant=applicant,
        )
        for i, applicant in enumerate(applicants)
    )
    Seat.objects.bulk_create(
        Seat(session=session, family=family, entered_at=starts_at) for family in made_families
    )
    return BenchRound(
        round_id=rnd.pk,
        session_id=session.pk,
        unit_ids=[u.pk for u in made_units],
        family_ids=[f.pk for f in made_families],
        user_ids=[u.pk for u in users],
    )


def backend_cpu(db_name: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to `db_name` (PostgreSQL runs
    on this machine, so its backends are local processes)."""
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, connect_timeout=5, **PG) as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s", [db_name]
            ).fetchall()
        ]
    cpu = {pid: proc_cpu_seconds(pid) for pid in pids}
    return {pid: value for pid, value in cpu.items() if value > 0}  # 0: exited meanwhile


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100): p99 of 200 samples is the 198th smallest."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, -(-len(ordered) * p // 100))  # ceil
    return ordered[int(rank) - 1]


def spread(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.0f}" if values else "-"
    return f"median {statistics.median(values):.0f}, min {min(values):.0f}, max {max(values):.0f}"


# ------------------------------------------------------------------ added for realtime_fanout


def setup_django_only() -> None:
    """django.setup() for a helper process started with the bench environment already in
    os.environ (no database re-creation, no migrate, DJANGO_SETTINGS_MODULE left as given)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    import django

    django.setup()


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raise this process's open-file soft limit towards `wanted` (bounded by the hard
    limit); returns the new soft limit. Thousands of sockets need it."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process so far (Linux /proc); 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
