"""`make demo HOST=127.0.0.1 PORT=<not 8000>`, for real: the commands the Makefile runs
(read with `make -n`, so SITE_URL is derived exactly as `make demo` derives it) on a fresh
embedded database (SQLite and the in-memory layer under a temporary ANJU_VAR_DIR), then an
applicant over HTTP against that port:

- logs in with the demo banner's ID number and the code read from the dev SMS page;
- issues the desktop's QR code for the demo agreement; its PNG, decoded with zxing-cpp,
  holds a URL on the chosen port, which a phone (a second client, not logged in) opens;
- on the phone, starts the face check: the provider page, the return URL and the callback
  URL are on that port, and the dev provider's server-to-server callback reaches the server
  (the face check is passed in the database before the phone comes back);
- signs, and the PDF's verification link (pdftotext) is on that port and answers;
- pays a lease's deposit: the cashier and return URLs are on that port and the dev cashier's
  signed notification reaches the server (the lease is paid in the database). The lease is
  prepared before the server starts, its contract recorded as signed (a selection session
  and the whole lease flow are covered by tests/signing/test_lease_journey.py and
  tests/browser/test_lease_flow.py; what matters here is where the URLs point).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import zxingcpp
from PIL import Image

from signing.models import ConsentKind
from tests.signing.worlds import strokes

pytestmark = pytest.mark.pdftools

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60
CODE_IN_TEXT = re.compile(r"验证码为(\d{6})")
# core/webhooks.py's warnings when a dev provider's server-to-server call does not land.
WEBHOOK_TROUBLE = re.compile(
    r"(dev face callback|dev payment notification) to \S+ (failed|answered)"
)

# Before the server starts: a lease whose contract is signed and whose deposit is open.
LEASE_SETUP = """
import json
from datetime import timedelta
from django.utils import timezone
from core.context import RequestContext
from selection.models import Allocation
from signing.lease.services import lease_start
from signing.models import Agreement
from tests.factories import ApplicantFactory, FamilyFactory, UserFactory
from tests.signing.lease_worlds import make_lease_world

for factory in (ApplicantFactory, FamilyFactory, UserFactory):  # clear of the demo's ranks
    factory.reset_sequence(500)
world = make_lease_world(name="王小明")
now = timezone.now()
Allocation.objects.filter(pk=world.allocation.pk).update(at=now - timedelta(minutes=5))
lease = lease_start(
    applicant=world.applicant, ctx=RequestContext(ip="127.0.0.1", user_agent="test"), now=now
)
Agreement.objects.filter(pk=lease.agreement_id).update(
    status=Agreement.Status.SIGNED, signed_at=now
)
print(json.dumps({"lease": lease.pk, "id_number": world.applicant.id_number}))
"""


def _free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port != 8000:
            return port


def make_demo_commands(host: str, port: int) -> dict[str, str]:
    """The demo's five commands as `make demo HOST=… PORT=…` would run them."""
    env = {k: v for k, v in os.environ.items() if k != "SITE_URL"}
    printed = subprocess.run(  # noqa: S603 (fixed command)
        ["make", "-n", "--no-print-directory", "demo", f"HOST={host}", f"PORT={port}"],  # noqa: S607
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    needles = {
        "migrate": "manage.py migrate",
        "load": "manage.py demo_load",
        "collect": "manage.py collectstatic",
        "banner": "manage.py demo_banner",
        "serve": "bin/daphne",
    }
    return {name: next(line for line in printed if n in line) for name, n in needles.items()}


@dataclass
class Demo:
    base: str
    port: int
    banner: str
    database: Path
    log: Path
    lease_id: int
    lease_id_number: str

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=20)


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Iterator[Demo]:
    var = tmp_path_factory.mktemp("demo_var")
    port = _free_port()
    commands = make_demo_commands("127.0.0.1", port)
    # The embedded default, as `make demo` runs with nothing set: no DATABASE_URL (SQLite
    # under ANJU_VAR_DIR), no REDIS_URL (in-memory layer), console SMS, DEBUG on.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "SITE_URL", "ALLOWED_HOSTS", "SECRET_KEY"}
    }
    env.update(ANJU_VAR_DIR=str(var), DEBUG="1", SMS_PROVIDER="console", PYTHONUNBUFFERED="1")
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def run(line: str) -> str:
        done = subprocess.run(  # noqa: S602 (the Makefile's own command line)
            line, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{line}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    run(commands["migrate"])
    run(commands["load"])
    run(commands["collect"])  # the hashed, gzipped static files the demo links
    banner = run(commands["banner"])
    setup = subprocess.run(  # noqa: S603 (fixed command)
        [str(ROOT / ".venv/bin/python"), "manage.py", "shell", "-c", LEASE_SETUP],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert setup.returncode == 0, setup.stderr[-3000:]
    lease = json.loads(setup.stdout.strip().splitlines()[-1])

    log = var / "daphne.log"
    with log.open("wb") as out:
        server = subprocess.Popen(  # noqa: S602 (the Makefile's own command line)
            commands["serve"],
            shell=True,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one below
        )

    def stop() -> None:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()

    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_SECONDS
    try:
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2, trust_env=False).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            try:  # waiting on the process is the pause between polls and notices a crash
                server.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            else:
                pytest.fail(f"daphne exited {server.returncode}:\n{log.read_text()[-4000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"daphne did not answer on {base}:\n{log.read_text()[-4000:]}")
        yield Demo(
            base=base,
            port=port,
            banner=banner,
            database=var / "anju.sqlite3",
            log=log,
            lease_id=lease["lease"],
            lease_id_number=lease["id_number"],
        )
    finally:
        stop()


class Browser:
    """An httpx client that behaves like the H5 pages: CSRF token from the cookie, Origin."""

    def __init__(self, base: str):
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=30, trust_env=False)
        assert self.http.get("/h5/login/").status_code == 200

    def headers(self) -> dict[str, str]:
        return {"X-CSRFToken": self.http.cookies["csrftoken"], "Origin": self.base}

    def post(self, path: str, body: dict | None = None, expect: int = 200) -> dict:
        response = self.http.post(path, json=body or {}, headers=self.headers())
        assert response.status_code == expect, (path, response.status_code, response.text)
        return response.json()

    def put(self, path: str, body: dict) -> dict:
        response = self.http.put(path, json=body, headers=self.headers())
        assert response.status_code == 200, (path, response.text)
        return response.json()

    def form_post(self, url: str, fields: dict) -> httpx.Response:
        """Submit the page's form (its CSRF token) as the browser would."""
        page = self.http.get(url)
        assert page.status_code == 200, page.text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        return self.http.post(
            url,
            data={"csrfmiddlewaretoken": token, **fields},
            headers={"Origin": self.base, "Referer": url},
        )

    def codes(self) -> list[str]:
        """The codes on the dev SMS page, newest first, as a demo user reads them."""
        page = self.http.get("/dev/sms/")
        assert page.status_code == 200
        return CODE_IN_TEXT.findall(page.text)

    def latest_code(self, *, after: int = 0) -> str:
        """The newest code once the page shows more than `after` of them: the demo's
        in-process outbox worker delivers a login code just after the answer (woken at the
        request's commit), so the page is asked again until it is there."""
        deadline = time.monotonic() + 10
        codes = self.codes()
        while len(codes) <= after and time.monotonic() < deadline:
            codes = self.codes()
        assert len(codes) > after, "the demo delivered no login code within 10 s"
        return codes[0]

    def log_in(self, id_number: str) -> None:
        before = len(self.codes())
        self.post("/api/v1/auth/sms-code/", {"id_number": id_number}, expect=202)
        code = self.latest_code(after=before)
        self.post("/api/v1/auth/login/", {"id_number": id_number, "code": code})


def _on_port(url: str, demo: Demo) -> None:
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", demo.port), url


def test_the_demo_on_another_port_makes_every_url_on_that_port(demo, tmp_path):
    assert demo.port != 8000
    # The banner's links are the server's.
    id_number = re.search(r"enter ID number (\S+)", demo.banner).group(1)
    assert f"open {demo.base}/h5/login/" in demo.banner
    assert ":8000" not in demo.banner

    desktop = Browser(demo.base)
    desktop.log_in(id_number)
    agreements = desktop.http.get("/api/v1/signing/agreements/").json()
    assert agreements, "the demo data has an agreement to sign for family 1"
    aid = agreements[0]["id"]

    # The desktop's QR code: decode the picture, not the JSON.
    issued = desktop.post(f"/api/v1/signing/agreements/{aid}/qr/", expect=201)
    picture = Image.open(io.BytesIO(base64.b64decode(issued["png_base64"])))
    decoded = zxingcpp.read_barcodes(picture)
    assert len(decoded) == 1
    scanned = decoded[0].text
    assert scanned == issued["url"]
    assert scanned.startswith(f"{demo.base}/s/")
    _on_port(scanned, demo)

    # A phone scans it: the page answers on that port and the code starts its session.
    phone = Browser(demo.base)
    assert phone.http.get(scanned).status_code == 200
    token = scanned.rsplit("/", 1)[1]
    opened = phone.post("/api/v1/signing/qr/open/", {"token": token})
    assert opened["agreement"] == aid

    base = f"/api/v1/signing/agreements/{aid}"
    versions = {
        kind: phone.http.get(f"/api/v1/signing/consents/{kind}/").json()["version"]
        for kind in ConsentKind.values
    }
    phone.post(f"{base}/steps/contract-viewed/")
    phone.post(
        f"{base}/steps/ecert-consent/",
        {"versions": {k: versions[k] for k in ("ecert_service", "privacy")}},
    )
    phone.post(
        f"{base}/steps/identity-confirm/",
        {"versions": {k: versions[k] for k in ("privacy", "biometric")}},
    )

    # Face check: the provider's page on this port, its callback to this port.
    started = phone.post(f"{base}/steps/face-start/")
    assert started["redirect_url"].startswith(f"{demo.base}/dev/face/")
    decided = phone.form_post(started["redirect_url"], {"decision": "pass"})
    assert decided.status_code == 302, decided.text
    back = decided.headers["location"]
    _on_port(back, demo)
    assert urlsplit(back).path == f"/h5/signing/{aid}/sign/"
    query = parse_qs(urlsplit(back).query)
    assert query["face_order"] == [started["order_id"]]
    with demo.db() as db:  # the callback reached the server before the phone came back
        status, score = db.execute(
            "SELECT status, score FROM signing_facecheck WHERE order_id = ?",
            (started["order_id"],),
        ).fetchone()
    assert status == "passed" and score is not None and score >= 70
    assert phone.http.get(back).status_code == 200
    phone.post(
        f"{base}/steps/face-complete/",
        {"order_id": started["order_id"], "token": query["token"][0]},
    )

    # Read, sign each character, confirm with the SMS code.
    phone.post(f"{base}/steps/read/", {"scrolled_to_end": True, "reading_seconds": 40})
    detail = phone.http.get(f"{base}/").json()
    for index in range(len(detail["signer_name"])):
        phone.put(f"{base}/signature/{index}/", {"strokes": strokes(), "width": 300, "height": 300})
    phone.post(f"{base}/steps/signature-complete/")
    assert phone.post(f"{base}/steps/sms-code/", expect=202)["sent"] is True
    signed = phone.post(f"{base}/steps/submit/", {"code": phone.latest_code()})
    assert signed["status"] == "signed"

    # The PDF's verification link is on this port, and it answers there.
    pdf = desktop.http.get(f"{base}/document/")
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
    path = tmp_path / "agreement.pdf"
    path.write_bytes(pdf.content)
    text = subprocess.run(  # noqa: S603 (fixed command)
        ["pdftotext", "-enc", "UTF-8", str(path), "-"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    links = re.findall(r"https?://\S+/verify/\S+", text)
    assert links, text[-2000:]
    assert "127.0.0.1:8000" not in text
    for link in links:
        _on_port(link, demo)
    assert desktop.http.get(links[0]).status_code == 200

    log = demo.log.read_text(errors="replace")
    assert not WEBHOOK_TROUBLE.search(log)
    # The in-process workers (the login code above came through the SMS outbox's) start once
    # every app is ready, not from AppConfig.ready() while the others are still loading.
    assert "during app initialization" not in log, log[-3000:]


def test_the_deposit_on_another_port_pays_through_that_port(demo):
    payer = Browser(demo.base)
    payer.log_in(demo.lease_id_number)
    started = payer.post(f"/api/v1/lease/{demo.lease_id}/deposit/")
    assert started["pay_url"].startswith(f"{demo.base}/dev/pay/")

    paid = payer.form_post(started["pay_url"], {})
    assert paid.status_code == 302, paid.text
    back = paid.headers["location"]
    _on_port(back, demo)
    assert urlsplit(back).path == f"/h5/lease/{demo.lease_id}/deposit/"
    assert parse_qs(urlsplit(back).query)["out_trade_no"] == [started["out_trade_no"]]
    with demo.db() as db:  # the signed notification reached this server over HTTP
        (paid_at,) = db.execute(
            "SELECT deposit_paid_at FROM signing_lease WHERE id = ?", (demo.lease_id,)
        ).fetchone()
        outcomes = [
            row[0]
            for row in db.execute(
                "SELECT outcome FROM signing_paymentnotification WHERE out_trade_no = ?",
                (started["out_trade_no"],),
            )
        ]
    assert paid_at is not None
    assert outcomes and set(outcomes) <= {"applied", "duplicate"}, outcomes
    assert payer.http.get(back).status_code == 200
    assert not WEBHOOK_TROUBLE.search(demo.log.read_text(errors="replace"))


def test_the_demo_links_hashed_gzipped_static_files_cached_for_a_year(demo):
    # Issue 16 item 1: `make demo` collects the static files and its pages link the hashed
    # names, served gzipped and immutable (core/staticfiles.py, WhiteNoise).
    http = httpx.Client(base_url=demo.base, timeout=30, trust_env=False)
    page = http.get("/h5/login/")
    assert page.status_code == 200
    assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)
    assert any(a.endswith(".css") for a in assets) and any(a.endswith(".js") for a in assets)
    for url in assets:
        assert re.search(r"\.[0-9a-f]{12}\.(css|js)$", url), url
        response = http.get(url, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, url
        assert response.headers["Content-Encoding"] == "gzip", url
        cache = response.headers["Cache-Control"]
        assert "immutable" in cache and "max-age=315360000" in cache, (url, cache)


def test_the_demo_shows_an_unknown_url_the_chinese_404(demo):
    http = httpx.Client(base_url=demo.base, timeout=30, trust_env=False)
    response = http.get("/h5/no-such-page/")
    assert response.status_code == 404
    assert "页面不存在" in response.text and "Page not found" not in response.text
