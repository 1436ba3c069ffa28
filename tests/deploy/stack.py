"""Live processes for the deployment tests: daphne, the relay, the clock and the log's
sequencer as subprocesses on pytest-django's test database, a private redis-server, and a private nginx running the
shipped deploy/nginx/anju.conf.

Every process gets a free loopback port and its own log file under a tmp dir; nothing here
touches the shared Redis or a system nginx. Waiting is always polling a condition with a
deadline (a port answers, /healthz says ok, a process has exited), never a fixed sleep.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from tests.conftest import CI, NGINX

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_NGINX_CONF = ROOT / "deploy" / "nginx" / "anju.conf"
SHIPPED_DAPHNE_PORTS = (8001, 8002)  # the HTTP pool's process, the socket pool's
REDIS_SERVER = os.environ.get("REDIS_SERVER_PATH", "redis-server")
STARTUP_SECONDS = 120  # a bound for failing, not a wait: four Django processes import at once
POLL_SECONDS = 0.05

T = TypeVar("T")


def unavailable(reason: str) -> None:
    """The rule of tests/conftest.py: skip locally, fail under CI."""
    if CI:
        pytest.fail(f"CI requires {reason}", pytrace=False)
    pytest.skip(f"needs {reason}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    condition: Callable[[], T], *, timeout: float, what: str, interval: float = POLL_SECONDS
) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def live_database_url() -> str:
    """DATABASE_URL of the test database pytest-django created (known once it exists)."""
    db = connection.settings_dict
    if "postgresql" not in db["ENGINE"]:
        unavailable("PostgreSQL (set DATABASE_URL): the processes share the test database")
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "localhost"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{quote(db['NAME'], safe='')}"


def app_env(*, redis_url: str, prefix: str, extra: dict[str, str] | None = None) -> dict:
    """The environment of a production process (DEBUG off, behind one proxy), on the test
    database and the given Redis."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": live_database_url(),
        "DATABASE_CONN_MAX_AGE": "0",  # no idle connection may hold up the flush between tests
        "DATABASE_POOL_MAX_SIZE": "0",
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "SECRET_KEY": settings.SECRET_KEY,  # sessions made by the test are valid there
        "ANJU_LEDGER_SIGNING_KEY": settings.LEDGER_SIGNING_KEY,  # heads the test can check
        # Personal data the test writes is read there (required with DEBUG off).
        "ANJU_FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "ANJU_PII_SEARCH_HASH_KEY": settings.PII_SEARCH_HASH_KEY,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        # Links the server makes; plain http on loopback is accepted on purpose (core/urls.py).
        "SITE_URL": "http://127.0.0.1",
        "SITE_URL_ALLOW_HTTP": "1",
        "SECURE_COOKIES": "0",  # plain http on loopback
        "BEHIND_PROXY": "1",
        "NUM_PROXIES": "1",
        "SMS_PROVIDER": "console",
        "OIDC_ISSUER": "",
        "ANJU_WORKERS_IN_PROCESS": "0",
        "PYTHONUNBUFFERED": "1",
        **(extra or {}),
    }


@dataclass
class Proc:
    name: str
    command: list[str]
    log: Path
    env: dict | None = None
    popen: subprocess.Popen | None = field(default=None, repr=False)

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603 (fixed commands)
                self.command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n{text[-chars:]}"

    def send(self, sig: int) -> None:
        if self.alive:
            self.popen.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: the process dies mid-whatever, as in a crash or an OOM kill."""
        if self.alive:
            self.popen.kill()
        if self.popen is not None:
            self.popen.wait(timeout=10)

    def stop(self, sig: int | None = signal.SIGTERM, timeout: float = 10) -> None:
        """Send `sig` (None: it was sent already), wait up to `timeout`, then SIGKILL."""
        if self.popen is None:
            return
        if self.alive:
            if sig is not None:
                self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)

    def check_running(self) -> None:
        if not self.alive:
            code = self.popen.returncode if self.popen else None
            raise AssertionError(f"{self.name} exited with {code}:\n{self.tail()}")


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy


def http_status(url: str, timeout: float = 2) -> int | None:
    try:
        with _DIRECT.open(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code
    except OSError:  # refused while binding, reset, timeout
        return None


def wait_healthy(url: str, procs: list[Proc], *, timeout: float = STARTUP_SECONDS) -> None:
    """Wait until `url` (a /healthz) answers 200; fail early, with logs, if a process died."""

    def ready() -> bool:
        for proc in procs:
            proc.check_running()
        return http_status(url) == 200

    try:
        wait_until(ready, timeout=timeout, what=f"{url} to answer 200")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + "\n".join(p.tail() for p in procs)) from None


def daphne(port: int, *, env: dict, logs: Path) -> Proc:
    # As deploy/systemd/anju-daphne@.service runs it.
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    command += ["--proxy-headers", "config.asgi:application"]
    return Proc(f"daphne:{port}", command, logs / f"daphne-{port}.log", env)


def manage(name: str, *args: str, env: dict, logs: Path) -> Proc:
    return Proc(name, [sys.executable, "manage.py", name, *args], logs / f"{name}.log", env)


class PrivateRedis:
    """A redis-server of our own on a free loopback port, without persistence, that a test may
    stop and start again on the same port. Never the shared Redis."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: Proc | None = None

    def start(self) -> PrivateRedis:
        from shutil import which

        if which(REDIS_SERVER) is None:
            unavailable(f"redis-server ({REDIS_SERVER}; apt-get install redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.directory)]
        self.proc = Proc(f"redis:{self.port}", command, self.directory / "redis.log").start()
        wait_until(self.answers, timeout=10, what=f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        import redis

        self.proc.check_running()
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """SHUTDOWN NOSAVE (SIGTERM does the same without persistence); wait for the exit."""
        if self.proc is not None:
            self.proc.stop(signal.SIGTERM)


class PrivateNginx:
    """nginx with its own prefix, pid, temp dirs and logs, on a free port, running the shipped
    server config with the deployment-specific lines substituted."""

    def __init__(self, directory: Path, *, upstream_ports: list[int], static_root: Path):
        self.port = free_port()
        self.directory = directory
        self.upstream_ports = upstream_ports
        self.static_root = static_root
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: Proc | None = None

    def site_config(self) -> str:
        text = SHIPPED_NGINX_CONF.read_text()
        # The shipped ports, in the order of `upstream_ports`: 8001 heads the HTTP pool, 8002
        # the socket pool; each is the other pool's backup.
        for shipped, port in zip(SHIPPED_DAPHNE_PORTS, self.upstream_ports, strict=True):
            text, count = re.subn(rf"(\bserver 127\.0\.0\.1:){shipped}\b", rf"\g<1>{port}", text)
            assert count == 2, f"deploy/nginx/anju.conf: expected {shipped} in both upstreams"
        servers = {int(p) for p in re.findall(r"\bserver 127\.0\.0\.1:(\d+)", text)}
        assert servers == set(self.upstream_ports), f"deploy/nginx/anju.conf: servers {servers}"
        logs = self.directory / "logs"
        for pattern, replacement in [
            (r"listen 80;", f"listen 127.0.0.1:{self.port};"),
            (r"alias /var/lib/anju/static/;", f"alias {self.static_root}/;"),
            (r"access_log /var/log/nginx/anju\.access\.log;", f"access_log {logs}/access.log;"),
            (r"error_log /var/log/nginx/anju\.error\.log", f"error_log {logs}/error.log"),
        ]:
            text, count = re.subn(pattern, replacement, text)
            assert count == 1, f"deploy/nginx/anju.conf: expected one `{pattern}`, found {count}"
        return text

    def main_config(self) -> str:
        d = self.directory
        lines = [
            "user root;" if os.geteuid() == 0 else "",  # workers must read the tmp dirs
            "daemon off;",
            "worker_processes 1;",
            f"pid {d / 'nginx.pid'};",
            f"error_log {d / 'logs' / 'error.log'} info;",
            "events { worker_connections 256; }",
            "http {",
            "    include /etc/nginx/mime.types;",
            "    default_type application/octet-stream;",
            f"    access_log {d / 'logs' / 'access.log'};",
            *(
                f"    {kind}_temp_path {d / 'temp' / kind};"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            ),
            f"    include {d / 'anju.conf'};",
            "}",
        ]
        return "\n".join(lines) + "\n"

    def start(self) -> PrivateNginx:
        from shutil import which

        if which(NGINX) is None:
            unavailable(f"nginx at {NGINX} (apt-get install nginx)")
        (self.directory / "logs").mkdir(parents=True, exist_ok=True)
        (self.directory / "temp").mkdir(exist_ok=True)
        (self.directory / "anju.conf").write_text(self.site_config())
        (self.directory / "nginx.conf").write_text(self.main_config())
        command = [NGINX, "-p", str(self.directory), "-c", str(self.directory / "nginx.conf")]
        command += ["-e", str(self.directory / "logs" / "error.log")]
        self.proc = Proc("nginx", command, self.directory / "logs" / "stdout.log").start()
        return self

    def tail(self) -> str:
        return self.proc.tail() + "\n" + (self.directory / "logs" / "error.log").read_text()[-3000:]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop(signal.SIGQUIT)  # graceful: finish requests, then exit
