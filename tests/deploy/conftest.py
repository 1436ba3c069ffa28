"""Deployment tests: the processes of a deployment on loopback, against pytest-django's test
database: nginx running the shipped deploy/nginx/anju.conf in front of two daphne processes,
the event relay and the selection clock as processes of their own, and a PRIVATE redis-server
that tests may stop and start again (the shared Redis is never touched). One stack serves
the package; each test leaves it serving (a killed daphne stays dead, which the others
tolerate: nginx routes around it). Helpers: stack.py (processes), live.py (a page's moves)."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import override_settings

from tests.deploy.stack import (
    PrivateNginx,
    PrivateRedis,
    Proc,
    app_env,
    daphne,
    free_port,
    manage,
    wait_healthy,
)


@dataclass
class Stack:
    redis: PrivateRedis
    nginx: PrivateNginx
    daphnes: list[Proc]
    ports: list[int]
    relay: Proc
    clock: Proc
    static_root: Path

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"

    def ws(self, path: str, i: int | None = None) -> str:
        """The socket URL through nginx, or straight to daphne i."""
        port = self.nginx.port if i is None else self.ports[i]
        return f"ws://127.0.0.1:{port}{path}"

    @property
    def processes(self) -> list[Proc]:
        return [*self.daphnes, self.relay, self.clock, self.nginx.proc, self.redis.proc]


@pytest.fixture(scope="package")
def stack(django_db_setup, tmp_path_factory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("deploy")
    logs = base / "logs"
    logs.mkdir()
    static_root = base / "var" / "static"
    redis = PrivateRedis(base / "redis")
    ports = [free_port(), free_port()]
    nginx = PrivateNginx(base / "nginx", upstream_ports=ports, static_root=static_root)
    env = app_env(
        redis_url=redis.url,
        prefix="anju",
        extra={"ANJU_VAR_DIR": str(base / "var"), "CSRF_TRUSTED_ORIGINS": nginx.url},
    )
    started: list[Proc] = []
    try:
        started.append(redis.start().proc)
        started += [daphne(port, env=env, logs=logs).start() for port in ports]
        started.append(manage("realtime_relay", env=env, logs=logs).start())
        started.append(manage("selection_clock", env=env, logs=logs).start())
        started.append(manage("ledger_sequencer", env=env, logs=logs).start())
        # collectstatic here, while the processes import (one Django start fewer).
        with override_settings(STATIC_ROOT=static_root):
            call_command("collectstatic", interactive=False, verbosity=0)
        started.append(nginx.start().proc)
        for port in ports:
            wait_healthy(f"http://127.0.0.1:{port}/healthz", started)
        wait_healthy(f"{nginx.url}/healthz", started)
        yield Stack(redis, nginx, started[1:3], ports, started[3], started[4], static_root)
    finally:
        # The redis-server running now may be a restarted one, not the first.
        if redis.proc is not None and redis.proc not in started:
            started.append(redis.proc)
        # Signal everything at once, then wait: a sequential stop costs seconds per process.
        for proc in started:
            proc.send(signal.SIGQUIT if proc is nginx.proc else signal.SIGTERM)
        for proc in started:
            proc.stop(None, timeout=3)  # then SIGKILL: nothing of value is left in these processes


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    """The ORM calls of these async tests run on a worker thread whose connection would
    otherwise outlive the test and block the flush of the test database."""
    yield
    from django.db import connections

    from tests.deploy.live import aio

    await aio(connections.close_all)()
