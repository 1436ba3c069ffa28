"""Page weight of the H5 pages on a phone over slow 4G, with a cold cache (issue 16 item 1).

Loads each H5 page a demo family can reach in Debian's Chromium (Playwright, as the browser
tests launch it), 390×844 at 3x, with the browser cache cleared before each page and Chrome
DevTools' "Slow 4G" profile (CDP Network.emulateNetworkConditions: 562.5 ms latency,
1.44 Mbit/s down, 675 kbit/s up — DevTools' own figures, the 150 ms / 1.6 Mbit/s link with
its request-level factors), and prints for each page:

- bytes: what came over the network for the page's HTTP requests (CDP encodedDataLength:
  compressed bodies plus headers), the document, its assets and its data (XHR/fetch);
- requests: HTTP requests until the page was usable (websockets are not counted);
  -v lists them with when each was sent and done (ms from the navigation's start);
- usable: ms from the navigation's start until the page is usable: DOMContentLoaded, the
  page's loading placeholder (#loading) gone and no 正在加载 on screen, and its data loaded
  (the last response before the network stays quiet for 1 s).

Against a running demo (`make demo`, which collects the hashed, gzipped static files):

    make demo PORT=8000 &            # in another terminal
    .venv/bin/python bench/page_weight.py --base http://127.0.0.1:8000 --formal-wait 420

--screenshots DIR saves each page, once usable, as a PNG to look at.

--compare URL weighs each page a second time, right after the first and in the same browser
context, through another front of the same demo: bench/tls_front.py puts nginx with TLS and
HTTP/2 before it (`--insecure` accepts its self-signed certificate). The two figures of a page
are then taken a few seconds apart, under the same load; the protocol column says what the
responses came over (h2, http/1.1).

It logs in as demo families through the demo's SMS page (/dev/sms/), reads the privacy notice
and the declarations where a page needs them. The formal-selection page is only reachable
while a family's session is open: --formal-rank picks the family (rank 1 plays in 第1场,
21 in 第2场, …) and --formal-wait how long to wait for its window (0: skip it if shut).
The targets (issue 16): ≤ 150 KB transferred and ≤ 8 requests per page; docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
}
# Chrome DevTools' "Slow 4G" preset (front_end/core/sdk/NetworkManager.ts).
SLOW_4G = {
    "offline": False,
    "latency": 150 * 3.75,
    "downloadThroughput": 1.6 * 1000 * 1000 / 8 * 0.9,
    "uploadThroughput": 750 * 1000 / 8 * 0.9,
    "connectionType": "cellular4g",
}
TARGET_BYTES = 150 * 1024
TARGET_REQUESTS = 8
QUIET_S = 1.0
SETTLE_LIMIT_S = 40.0
CODE_IN_TEXT = re.compile(r"验证码为(\d{6})")


def demo_id_number(rank: int) -> str:
    """selection.demo.demo_id_number, without starting Django."""
    from stdnum.cn import ric

    body = f"440304{1970 + rank % 30:04d}{1 + rank % 12:02d}{1 + rank % 28:02d}{rank:03d}"
    return body + ric.calc_check_digit(body + "0")


@dataclass
class Weight:
    name: str
    url: str
    landed: str
    bytes: int
    requests: int
    usable_ms: int
    protocols: str
    urls: list[str]

    @property
    def meets(self) -> bool:
        return self.bytes <= TARGET_BYTES and self.requests <= TARGET_REQUESTS


class Family:
    """A demo family logged in inside a browser context (its cookies are the pages')."""

    def __init__(self, browser, base: str, rank: int, **options):
        self.base = base
        self.context = browser.new_context(base_url=base, **PHONE, **options)
        self.http = self.context.request
        self.rank = rank

    def _csrf(self) -> dict[str, str]:
        token = next(c["value"] for c in self.context.cookies() if c["name"] == "csrftoken")
        return {"X-CSRFToken": token, "Origin": self.base, "Referer": f"{self.base}/h5/"}

    def post(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        response = self.http.post(
            path,
            data=json.dumps(body or {}),
            headers={**self._csrf(), "Content-Type": "application/json"},
        )
        text = response.text()
        return response.status, (json.loads(text) if text else {})

    def get(self, path: str) -> dict:
        response = self.http.get(path)
        assert response.ok, (path, response.status, response.text()[:300])
        return response.json()

    def _codes(self) -> list[str]:
        return CODE_IN_TEXT.findall(self.http.get("/dev/sms/").text())

    def log_in(self) -> None:
        id_number = demo_id_number(self.rank)
        assert self.http.get("/h5/login/").ok
        before = len(self._codes())
        status, _ = self.post("/api/v1/auth/sms-code/", {"id_number": id_number})
        assert status == 202, status
        deadline = time.monotonic() + 10
        while len(codes := self._codes()) <= before:
            assert time.monotonic() < deadline, "the demo sent no login code (is it `make demo`?)"
            time.sleep(0.2)
        status, body = self.post("/api/v1/auth/login/", {"id_number": id_number, "code": codes[0]})
        if status == 409:  # another device holds the login (an earlier run): take it over
            status, body = self.post("/api/v1/auth/login/confirm/")
        assert status == 200, (status, body)
        notice = self.get("/api/v1/me/privacy/")
        if notice["required"]:
            status, body = self.post("/api/v1/me/privacy/", {"version": notice["version"]})
            assert status == 200, (status, body)

    def declare(self, rid: int, phase: str) -> None:
        text = self.get(f"/api/v1/selection/{rid}/declaration/{phase}/")
        status, body = self.post(
            f"/api/v1/selection/{rid}/declaration/{phase}/",
            {"acknowledged": True, "text_version": text["text_version"]},
        )
        assert status in (200, 201), (status, body)

    def state(self, rid: int) -> dict:
        return self.get(f"/api/v1/selection/{rid}/state/")


def weigh(context, name: str, path: str, shots: Path | None = None, base: str = "") -> Weight:
    """Load `path` in a new page of `context` on a cold cache over slow 4G (through `base`,
    when given, instead of the context's own base URL).

    With `shots`, the page as it stands once usable is saved there as a PNG (to look at)."""
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Page.enable")
    cdp.send("Network.clearBrowserCache")
    cdp.send("Network.setCacheDisabled", {"cacheDisabled": False})
    cdp.send("Network.emulateNetworkConditions", SLOW_4G)
    started: dict[str, float] = {}  # requestId → CDP timestamp
    urls: dict[str, str] = {}
    finished: dict[str, tuple[float, int]] = {}
    protocols: set[str] = set()
    marks: dict[str, float] = {}
    prefix = base or context_base(context)

    def sent(event):
        url = event["request"]["url"]
        if url.startswith(("data:", "blob:")) or event["requestId"] in started:
            return
        started[event["requestId"]] = event["timestamp"]
        urls[event["requestId"]] = url.removeprefix(prefix)
        marks.setdefault("start", event["timestamp"])

    def done(event):
        if event["requestId"] in started:
            finished[event["requestId"]] = (event["timestamp"], int(event["encodedDataLength"]))

    def failed(event):
        if event["requestId"] in started:
            finished[event["requestId"]] = (event["timestamp"], 0)

    def answered(event):
        if event["requestId"] in started and event["response"].get("protocol"):
            protocols.add(event["response"]["protocol"])

    cdp.on("Network.requestWillBeSent", sent)
    cdp.on("Network.responseReceived", answered)
    cdp.on("Network.loadingFinished", done)
    cdp.on("Network.loadingFailed", failed)
    cdp.on("Page.domContentEventFired", lambda e: marks.setdefault("dcl", e["timestamp"]))

    page.goto(base + path, wait_until="domcontentloaded", timeout=60_000)
    # Nothing on screen says 正在加载: the board's loading line is no #loading, and when its
    # read still waited for the socket's hello the HTTP side could be quiet for 1 s before
    # that read was even sent (the board then counted as usable with nothing on it).
    page.wait_for_function(
        "() => { const l = document.getElementById('loading'); return (!l || l.hidden ||"
        " l.offsetParent === null) && !document.body.innerText.includes('正在加载'); }",
        timeout=60_000,
    )
    # The page's data: wait until no HTTP request is in flight and none starts for QUIET_S.
    deadline = time.monotonic() + SETTLE_LIMIT_S
    quiet_since = None
    while time.monotonic() < deadline:
        page.wait_for_timeout(100)
        busy = any(r not in finished for r in started)
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_S:
            break
    landed = page.url.removeprefix(prefix)
    if shots is not None:
        slug = re.sub(r"[^a-z0-9]+", "-", name.split(" ", 1)[-1].lower()).strip("-")
        slug += "-2" if base else ""
        page.screenshot(path=str(shots / f"{slug}.png"), full_page=True)
    ends = [at for at, _ in finished.values()]
    usable = max([marks.get("dcl", 0.0), *ends]) - marks["start"]
    weight = Weight(
        name=name,
        url=path,
        landed=landed,
        bytes=sum(size for _, size in finished.values()),
        requests=len(started),
        usable_ms=round(usable * 1000),
        protocols=",".join(sorted(protocols)),
        urls=[timeline(urls[r], started[r], finished.get(r), marks["start"]) for r in started],
    )
    page.close()
    return weight


def timeline(url: str, sent: float, done: tuple[float, int] | None, start: float) -> str:
    """One request for -v: when it was sent and done (ms from the navigation), and its bytes."""
    at = f"{(sent - start) * 1000:6.0f}"
    if done is None:
        return f"{at} →    ... {url} (unfinished)"
    return f"{at} → {(done[0] - start) * 1000:6.0f}  {url} {done[1]}"


def context_base(context) -> str:
    return context._impl_obj._options.get("baseURL", "")  # noqa: SLF001 (for the report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", default="http://127.0.0.1:8000", help="the running demo")
    parser.add_argument("--formal-rank", type=int, default=1)
    parser.add_argument("--formal-wait", type=float, default=0, help="seconds (0: no wait)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("-v", "--verbose", action="store_true", help="list each page's requests")
    parser.add_argument("--screenshots", type=Path, help="save each usable page as a PNG here")
    parser.add_argument("--compare", help="weigh each page again through this front of the demo")
    parser.add_argument(
        "--insecure", action="store_true", help="accept a self-signed certificate (tls_front.py)"
    )
    args = parser.parse_args()
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    base = args.base.rstrip("/")
    compare = (args.compare or "").rstrip("/")
    options = {"ignore_https_errors": True} if args.insecure else {}
    weights: list[Weight] = []
    notes: list[str] = []

    def measure(context, name: str, path: str) -> None:
        """The page through --base, then (--compare) at once through the other front. The
        login's cookie names a host, not a port: both fronts see the same login."""
        weights.append(weigh(context, name, path, args.screenshots))
        if compare:
            weights.append(weigh(context, name, path, args.screenshots, base=compare))

    with sync_playwright() as playwright:
        # LANGUAGE: Chromium's own words in Chinese on the screenshots, as on a phone.
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, env={**os.environ, "LANGUAGE": "zh_CN"}
        )
        # The server's first request imports and compiles what every later one reuses: make
        # it outside the measurement, so the login page is weighed on a warm server like the rest.
        for front in filter(None, (base, compare)):
            warm = playwright.request.new_context(base_url=front, **options)
            assert warm.get("/h5/login/").ok, f"the demo is not answering at {front}"
            warm.dispose()
        visitor = browser.new_context(base_url=base, **PHONE, **options)
        measure(visitor, "登录 login", "/h5/login/")
        visitor.close()

        family = Family(browser, base, rank=1, **options)
        family.log_in()
        rounds = family.get("/api/v1/selection/rounds/")
        rid = (rounds[0] if isinstance(rounds, list) else rounds["results"][0])["id"]
        if family.state(rid)["phase"] == "pre" and not family.state(rid)["declared_pre"]:
            family.declare(rid, "pre")
        pages = [
            ("首页 home", "/h5/"),
            ("房源信息播报 broadcast board", f"/h5/broadcast/{rid}/"),
            ("选房 round", f"/h5/selection/{rid}/"),
            ("预选 pre-selection", f"/h5/selection/{rid}/pre/"),
            ("网上签约 signing list", "/h5/signing/"),
        ]
        agreements = family.get("/api/v1/signing/agreements/")
        if agreements:
            aid = agreements[0]["id"]
            pages += [
                ("签约 sign (agreement)", f"/h5/signing/{aid}/sign/"),
                ("扫码签约 QR", f"/h5/signing/{aid}/qr/"),
            ]
        for name, path in pages:
            measure(family.context, name, path)
        # Rank 1 is the family above, still logged in: a second login would ask for another
        # code within the minute the service makes a person wait between two (429).
        if args.formal_rank == family.rank:
            formal = family
        else:
            family.context.close()
            formal = Family(browser, base, rank=args.formal_rank, **options)
            formal.log_in()
        state = formal.state(rid)
        session = state["session"] or state["next_session"]
        opens = datetime.fromisoformat(session["starts_at"]).timestamp() if session else None
        wait = (opens - time.time()) if opens else None
        if wait is not None and 0 < wait <= args.formal_wait:
            if state["phase"] == "pre" and not state["declared_pre"]:
                formal.declare(rid, "pre")
            print(f"waiting {wait:.0f} s for rank {args.formal_rank}'s session", file=sys.stderr)
            time.sleep(wait + 2)
            state = formal.state(rid)
        if state["phase"] == "formal":
            if not state["declared_formal"]:
                formal.declare(rid, "formal")
            measure(formal.context, "正式选房 formal selection", f"/h5/selection/{rid}/formal/")
        else:
            notes.append(
                f"formal selection not measured: rank {args.formal_rank}'s session is not open "
                f"(phase {state['phase']}); use --formal-rank/--formal-wait"
            )
        formal.context.close()
        browser.close()

    if args.json:
        print(json.dumps([w.__dict__ | {"meets": w.meets} for w in weights], ensure_ascii=False))
    else:
        print(
            f"{'page':<30} {'KB':>7} {'req':>4} {'usable ms':>10}  target  "
            f"{'protocol':<14} landed on"
        )
        for w in weights:
            print(
                f"{w.name:<30} {w.bytes / 1024:7.1f} {w.requests:4d} {w.usable_ms:10d}  "
                f"{'met' if w.meets else 'MISSED':<6}  {w.protocols:<14} {w.landed}"
            )
            if args.verbose:
                for line in w.urls:
                    print(f"    {line}")
    for note in notes:
        print(note, file=sys.stderr)


if __name__ == "__main__":
    main()
