"""Browser tests: Debian's Chromium, driven by Playwright's sync API, against a live daphne.

- `daphne_server` (session): daphne in a subprocess on a free port, pointed at pytest-django's
  test database, started once and stopped before the test database is dropped. It serves
  the static files collected for the run (`collected_static`), hashed as in production.
  Beside it, in the same environment, the event relay (`manage.py realtime_relay`) and the
  allocation log's sequencer (`manage.py ledger_sequencer`): the server uses
  Redis as its channel layer, so events reach the pages' sockets only through the relay.
  Its identity platform (OIDC) is `oidc_issuer`, the adapter tests' fake issuer.
- `live_url`: the server's base URL for one test, with `transactional_db`, so that what the
  test writes is committed (visible to the server) and what the server writes is visible to
  the test; the tables are flushed after each test.
- `page`: a phone (390×844 @3x, touch, zh-CN, Asia/Shanghai) in a fresh browser context of
  the worker's one Chromium (`shared_browser`). The test fails if the page raised an uncaught
  JavaScript error, asked anything of another host or broke the Content-Security-Policy
  (`csp_watch`: every page, every context of the test).
- `orm`: runs Django ORM code while Playwright is active (see its docstring).
- Accessibility (issue 16 item 3): every screenshot a test takes of an H5 page (the
  `screenshot` fixture or any page's own `.screenshot()`, in any context of the test) first
  runs axe-core on that page and fails the test on a serious or critical violation, so each
  state a test photographs is checked. `assert_accessible(page)` checks one state on demand;
  `page.evaluate(CLIPPED)` lists what does not fit the screen (sideways scroll, cut text).
- Chinese: the same screenshots first check that the page's visible text has no English word
  (`assert_in_chinese`; codes marked translate="no" and file formats aside).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings
from django.db import connection, connections

from tests.conftest import CHROMIUM, CI

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "test-results"
STARTUP_SECONDS = 30
# axe-core from the npm registry (package.json devDependencies; `npm ci`).
AXE_JS = ROOT / "node_modules" / "axe-core" / "axe.min.js"
AXE_IMPACTS = ("serious", "critical")

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_launch(playwright: Any) -> Any:
    """Debian's Chromium, headless. LANGUAGE makes the browser's own words Chinese, as on the
    applicants' phones (a file input's 「选择文件」 and 「未选择任何文件」; the locale packs come
    with chromium-l10n): the context's locale sets only the page's language and its
    Accept-Language, and `--lang` alone is ignored on Linux."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        env={**os.environ, "LANGUAGE": "zh_CN"},
    )


PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
}


# A desktop beside the phone (the desktop fixture): wide screen, no touch.
DESKTOP = {
    "viewport": {"width": 1280, "height": 800},
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
}


# Reports every Content-Security-Policy violation of a page to the test (csp_watch): the
# event fires on the document for blocked inline scripts, styles, handlers and loads.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__anjuCspViolation(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} at ` +
      `${event.sourceFile || document.location.href}:${event.lineNumber} ` +
      `(${(event.sample || "").slice(0, 80)})`
  );
});
"""


def csp_watch(context: Any, violations: list[str]) -> None:
    """Collect into `violations` every CSP violation in `context`'s pages: the
    securitypolicyviolation events and Chromium's console errors about the policy."""
    context.expose_binding("__anjuCspViolation", lambda source, text: violations.append(text))
    context.add_init_script(CSP_LISTENER)

    def console(message: Any) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            violations.append(f"console: {message.text}")

    context.on("console", console)


def _new_context_with(
    new_context: Callable[..., Any], violations: list[str], **options: Any
) -> Any:
    context = new_context(**options)
    csp_watch(context, violations)
    axe_on_screenshots(context)
    JOURNAL.watch(context)
    return context


# What the browsers asked of the server and when the answers came, for a failed test's
# report. The server's access log writes a line when a response is done, so a request that is
# still waiting (or was never sent) looks the same there; the browser's side tells them apart.
class _Journal:
    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=80)
        self.reset()

    def reset(self) -> None:
        self.lines.clear()
        self.start = time.monotonic()
        self.contexts = 0

    def watch(self, context: Any) -> None:
        """Note each of `context`'s requests: sent, answered (status) or failed; static
        files only when they fail; its pages' websockets (opened, failed, closed) and console
        errors and warnings (the browser reports a socket's network failure there). c1 is
        the test's phone, c2… a desktop or another phone."""
        self.contexts += 1
        tag = f"c{self.contexts}"

        def line(text: str) -> None:
            self.lines.append(f"+{time.monotonic() - self.start:7.3f}s {tag} {text}")

        def note(mark: str, request: Any, after: str = "") -> None:
            parts = urlsplit(request.url)
            query = f"?{parts.query}" if parts.query else ""
            line(f"{mark} {request.method} {parts.path}{query}{after}")

        def wanted(request: Any) -> bool:
            return not request.url.startswith("data:") and "/static/" not in request.url

        def websocket(ws: Any) -> None:
            path = urlsplit(ws.url).path
            line(f"⇄ WS {path}")
            ws.on("socketerror", lambda error: line(f"✗ WS {path} ({error})"))
            ws.on("close", lambda _ws: line(f"⇥ WS {path} closed"))

        def console(message: Any) -> None:
            if message.type in ("error", "warning"):
                line(f"! console {message.type}: {message.text[:200]}")

        context.on("request", lambda r: wanted(r) and note("→", r))
        context.on("requestfinished", lambda r: wanted(r) and note("←", r, f" {_status(r)}"))
        context.on("requestfailed", lambda r: note("✗", r, f" ({r.failure})"))
        context.on("page", lambda tab: tab.on("websocket", websocket))
        context.on("console", console)


def _status(request: Any) -> str:
    try:
        response = request.response()
    except Exception:  # the context closed meanwhile
        return "?"
    return str(response.status) if response else "?"


JOURNAL = _Journal()


# ---- axe-core ------------------------------------------------------------------------------
# axe's source is evaluated through the DevTools protocol (page.evaluate), which the page's
# Content-Security-Policy does not govern: no <script> is added to the page, no inline script
# is allowed, and csp_watch keeps reporting the page's own violations (a test checks that).
# bypass_csp would have hidden them. The options: WCAG 2.x A and AA plus axe's best
# practices, all rules on; only serious and critical findings fail a test.
AXE_RUN = """async () => {
  const result = await window.axe.run(document, {
    resultTypes: ["violations"],
    runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa",
                                     "best-practice"] },
  });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => ({ target: n.target.join(" "), summary: n.failureSummary,
                                 html: n.html.slice(0, 160) })),
  }));
}"""


# What does not fit: the page wider than the screen, text outside it, text a box cuts off.
CLIPPED = """() => {
  const root = document.documentElement;
  const width = root.clientWidth;
  const problems = [];
  if (root.scrollWidth > width) problems.push(`page ${root.scrollWidth}px wide > ${width}px`);
  const ownText = (node) => [...node.childNodes].some(
    (child) => child.nodeType === Node.TEXT_NODE && child.textContent.trim());
  const name = (node) => node.tagName.toLowerCase() + (node.id ? `#${node.id}` : "") +
    (node.className && typeof node.className === "string"
      ? "." + node.className.trim().split(/\\s+/).join(".") : "");
  for (const node of document.querySelectorAll("body *")) {
    const style = getComputedStyle(node);
    if (style.display === "none" || style.visibility === "hidden") continue;
    const box = node.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue; // visually hidden (screen readers only)
    const text = node.innerText ? node.innerText.trim().slice(0, 30) : "";
    if (ownText(node) && (box.right > width + 1 || box.left < -1)) {
      problems.push(`${name(node)} sticks out of the screen: "${text}"`);
    }
    if (node.tagName === "SELECT" && node.selectedIndex >= 0) {
      // A native select draws its chosen option itself (no scrollWidth to compare): measure
      // the option's text in the select's font against the box less padding and the arrow.
      const ctx = document.createElement("canvas").getContext("2d");
      ctx.font = style.font;
      const shown = node.options[node.selectedIndex].text;
      const room = node.clientWidth - parseFloat(style.paddingLeft) -
        parseFloat(style.paddingRight) - 16;
      if (ctx.measureText(shown).width > room + 1) {
        problems.push(`${name(node)} cuts its choice off: "${shown}"`);
      }
    }
    if (!text) continue;
    const cutX = style.overflowX !== "visible" && node.scrollWidth > node.clientWidth + 1;
    const cutY = (style.overflowY === "hidden" || style.overflowY === "clip") &&
      node.scrollHeight > node.clientHeight + 1;
    if (cutX || cutY) {
      problems.push(`${name(node)} clips its text (${node.scrollWidth}x${node.scrollHeight} ` +
        `in ${node.clientWidth}x${node.clientHeight}): "${text}"`);
    }
  }
  return problems;
}"""


def _axe_source() -> str:
    if not AXE_JS.exists():
        _unavailable(f"axe-core at {AXE_JS.relative_to(ROOT)} (npm ci)")
    return AXE_JS.read_text()


def _is_h5(url: str) -> bool:
    """The applicant's and the public's pages: everything the site serves but the admin, the
    API and Swagger (staff tools in Django's own look)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return False
    return not parts.path.startswith(("/admin/", "/api/"))


def axe_violations(page: Any) -> list[dict]:
    """axe-core's serious and critical violations on `page` as it is now, once its
    stylesheets are in: a check right after a navigation (a form posted, 303, the new
    document) could otherwise measure buttons the stylesheet had not sized yet (a 21 px
    登录 button failed target-size once that way)."""
    page.wait_for_load_state("load")
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
    found = page.evaluate(AXE_RUN)
    return [v for v in found if v["impact"] in AXE_IMPACTS]


def axe_report(violations: list[dict]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}, {len(v['nodes'])} nodes): {v['help']}")
        for node in v["nodes"][:5]:
            summary = " ".join((node["summary"] or "").split())[:300]
            lines.append(f"    {node['target']}: {node['html']}\n      {summary}")
    return "\n".join(lines)


def assert_accessible(page: Any, label: str = "") -> None:
    """Fail when axe-core finds a serious or critical violation on `page`."""
    violations = axe_violations(page)
    where = f"{label} ({page.url})" if label else page.url
    assert not violations, f"axe-core on {where}:\n{axe_report(violations)}"


# Not words: names of file formats the pages mention.
LATIN_ALLOWED = {"PDF", "ZIP"}
# The page's visible text without its codes (verification codes, 识别码, 核验码: the pages
# mark them translate="no", as lib/dom.js CODE does).
PAGE_WORDS = """() => {
  let text = document.body.innerText;
  for (const code of document.querySelectorAll('[translate="no"]')) {
    if (code.innerText) text = text.split(code.innerText).join(" ");
  }
  return text;
}"""


def assert_in_chinese(page: Any, label: str = "") -> None:
    """Fail when the page's visible text has an English word (three letters or more, outside
    LATIN_ALLOWED and the page's codes): a code where a word belongs, or a message nobody
    translated. Letters inside a run with digits (a hash, a key id) are not a word, as in the
    admin crawl: a code not marked translate="no" would otherwise fail only when its random
    digits happen to leave three letters together."""
    text = page.evaluate(PAGE_WORDS)
    words = set(re.findall(r"(?<![A-Za-z0-9])[A-Za-z]{3,}(?![A-Za-z0-9])", text)) - LATIN_ALLOWED
    where = f"{label} ({page.url})" if label else page.url
    assert not words, f"English on {where}: {sorted(words)}\n{text[:1500]}"


def _axe_before_screenshot(tab: Any) -> None:
    if getattr(tab, "_anju_axe", False):
        return
    original = tab.screenshot

    def screenshot(*args: Any, **kwargs: Any) -> Any:
        if _is_h5(tab.url):
            path = kwargs.get("path")
            assert_accessible(tab, Path(path).name if path else "screenshot")
            assert_in_chinese(tab, Path(path).name if path else "screenshot")
        return original(*args, **kwargs)

    tab.screenshot = screenshot
    tab._anju_axe = True


def axe_on_screenshots(context: Any) -> None:
    """Every page of `context` runs axe before each screenshot (see the module docstring)."""
    context.on("page", _axe_before_screenshot)
    original_new_page = context.new_page

    def new_page(*args: Any, **kwargs: Any) -> Any:
        tab = original_new_page(*args, **kwargs)
        _axe_before_screenshot(tab)
        return tab

    context.new_page = new_page


def _unavailable(reason: str) -> None:
    # The rule of tests/conftest.py: skip locally, fail under CI.
    if CI:
        pytest.fail(f"CI requires {reason}", pytrace=False)
    pytest.skip(f"needs {reason}")


def _test_database_url() -> str:
    """DATABASE_URL for the test database pytest-django created (its name is only known
    once it exists)."""
    db = connection.settings_dict
    engine = db["ENGINE"]
    if "postgresql" in engine:
        auth = quote(db["USER"] or "", safe="")
        if db["PASSWORD"]:
            auth += ":" + quote(db["PASSWORD"], safe="")
        host = db["HOST"] or "localhost"
        port = f":{db['PORT']}" if db["PORT"] else ""
        return f"postgres://{auth}{'@' if auth else ''}{host}{port}/{quote(db['NAME'], safe='')}"
    if "sqlite" in engine and not connection.is_in_memory_db():
        return f"sqlite:///{db['NAME']}"
    _unavailable(
        "PostgreSQL for the browser tests (set DATABASE_URL): the live server runs in "
        "another process, which cannot see an in-memory SQLite test database"
    )
    raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (local URL)
            return response.status == 200
    except urllib.error.HTTPError as exc:
        # 503 "degraded": up, but Redis or the database does not answer; keep waiting.
        exc.close()
        return False
    except OSError:  # refused while daphne binds, reset, timeout
        return False


# The logs of this worker's server and its workers, for a failed test's report.
_SERVER_LOGS: list[Path] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed browser test's report carries the tail of the server's log (every request with
    its status, and any traceback): CI keeps only the test output, and what the server did is
    half of what a failure in a browser means."""
    report = yield
    if report.failed and _SERVER_LOGS:
        for log in _SERVER_LOGS:
            lines = log.read_text(errors="replace").splitlines()[-40:] if log.exists() else []
            report.sections.append((f"{log.name} (last lines)", "\n".join(lines)))
    if report.failed and JOURNAL.lines:
        report.sections.append(("browser requests (last lines)", "\n".join(JOURNAL.lines)))
    return report


@pytest.fixture(scope="package")
def oidc_issuer() -> Iterator[Any]:
    """The province's identity platform for the live server: the fake issuer of the adapter's
    tests (tests/fakes/oidc_issuer.py), on its own port. A test sets `identity` to the
    person who logs in there; the platform's pages are another host, which `page` allows."""
    from tests.fakes.oidc_issuer import FakeIssuer

    fake = FakeIssuer().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory, worker_id: str) -> Path:
    """The static files as production serves them: collectstatic's hashed and gzipped set,
    collected once per run into a directory the xdist workers share (the first worker to get
    the lock collects; the manifest, written last, says the set is complete). The pages then
    load what the demo and nginx serve — hashed module imports included — and keep each file
    for the test's whole browser context (immutable) instead of asking again on every page."""
    import fcntl

    from django.core.management import call_command
    from django.test import override_settings

    base = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        base = base.parent  # pytest's root for this run, above every worker's own
    root = base / "browser-static"
    with (base / "browser-static.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "staticfiles.json").exists():
            with override_settings(STATIC_ROOT=root):
                call_command("collectstatic", interactive=False, verbosity=0)
    return root


# Package scope: the server and its relay stop when the browser tests are done. A relay left
# running would claim events that later tests (realtime, deploy) publish themselves.
@pytest.fixture(scope="package")
def daphne_server(
    django_db_setup, tmp_path_factory, oidc_issuer, collected_static
) -> Iterator[str]:
    """Start daphne on the test database; yield its base URL; stop it."""
    if not shutil.which(CHROMIUM):
        _unavailable(f"Chromium at {CHROMIUM} (apt-get install chromium)")
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": _test_database_url(),
        "DATABASE_CONN_MAX_AGE": "0",  # no idle connection may hold up the flush between tests
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "ANJU_LEDGER_SIGNING_KEY": settings.LEDGER_SIGNING_KEY,
        # The same personal-data keys as this process, which writes the rows it reads.
        "ANJU_FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "ANJU_PII_SEARCH_HASH_KEY": settings.PII_SEARCH_HASH_KEY,
        "DEBUG": "1",
        # Tests add consent texts from this process: the server reads the current privacy
        # notice on every request instead of remembering it (accounts/privacy.py).
        "ANJU_PRIVACY_NOTICE_CACHE_SECONDS": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        # URLs the server builds (the QR code's, the face provider's return and callback).
        "SITE_URL": f"http://127.0.0.1:{port}",
        "SECURE_COOKIES": "0",
        "SMS_PROVIDER": "console",
        "DEV_LOGIN_ENABLED": "1",
        # The login page offers the identity platform, as in production.
        "OIDC_ISSUER": oidc_issuer.url,
        "OIDC_CLIENT_ID": oidc_issuer.client_id,
        "OIDC_CLIENT_SECRET": oidc_issuer.client_secret,
        "PYTHONUNBUFFERED": "1",
        "ANJU_STATIC_ROOT": str(collected_static),
        "ANJU_STATIC_HASHED": "1",
    }
    log_path = tmp_path_factory.mktemp("daphne") / "daphne.log"
    command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
    command.append("config.asgi:application")
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (fixed command)
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    # The workers beside the server: the event relay and the allocation log's sequencer.
    workers = {}
    for name in ("realtime_relay", "ledger_sequencer"):
        with log_path.with_name(f"{name}.log").open("wb") as log:
            workers[name] = subprocess.Popen(  # noqa: S603 (fixed command)
                [sys.executable, "manage.py", name],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    base_url = f"http://127.0.0.1:{port}"
    _SERVER_LOGS[:] = [log_path, *(log_path.with_name(f"{name}.log") for name in workers)]

    def stop() -> None:
        for child in (*workers.values(), process):
            if child.poll() is None:
                child.terminate()
        for child in (*workers.values(), process):
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    deadline = time.monotonic() + STARTUP_SECONDS
    while not _healthy(f"{base_url}/healthz"):
        # Waiting on the process doubles as the pause between polls and notices a crash.
        try:
            process.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            pass
        else:
            pytest.fail(
                f"daphne exited with {process.returncode} before answering /healthz:\n"
                + log_path.read_text(errors="replace")[-4000:],
                pytrace=False,
            )
        if time.monotonic() > deadline:
            stop()
            pytest.fail(
                f"daphne did not answer {base_url}/healthz within {STARTUP_SECONDS} s:\n"
                + log_path.read_text(errors="replace")[-4000:],
                pytrace=False,
            )
    for name, worker in workers.items():
        if worker.poll() is not None:
            stop()
            pytest.fail(
                f"{name} exited with {worker.returncode}:\n"
                + log_path.with_name(f"{name}.log").read_text(errors="replace")[-4000:],
                pytrace=False,
            )
    try:
        yield base_url
    finally:
        stop()


@pytest.fixture
def live_url(daphne_server, transactional_db) -> str:
    return daphne_server


@pytest.fixture
def orm(transactional_db) -> Iterator[Callable[..., Any]]:
    """`orm(fn, *args, **kwargs)` runs `fn` in a worker thread and returns its result.

    Playwright's sync API keeps its asyncio loop marked as running on the test's thread, so
    Django refuses ORM calls there (SynchronousOnlyOperation). A worker thread has no running
    loop; its own database connection sees the committed data of `transactional_db` and is
    closed at the end. This keeps Django's async-safety check on (no
    DJANGO_ALLOW_ASYNC_UNSAFE)."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orm")

    def run(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return executor.submit(fn, *args, **kwargs).result(timeout=30)

    try:
        yield run
    finally:
        executor.submit(connections.close_all).result(timeout=30)
        executor.shutdown(wait=True)


class _SharedBrowser:
    """One Playwright driver and one Chromium per worker's run of browser tests (package
    scope), a fresh context per test. Starting them for each test cost CPU on a machine the
    suite keeps busy (0.57 s the driver, ~0.7 s the browser, measured alone); on 13 browser
    tests the machine's CPU fell from 100 to 91 s with one of each.

    Playwright's sync API marks its asyncio loop as running on the thread between its calls,
    and Django then refuses ORM calls there (SynchronousOnlyOperation: see `orm`). Each test
    had its own driver, so the mark lasted as long as the test's `page`. With one driver the
    loop is marked only while a test holds `page` (`attach`) and cleared after (`detach`), so
    fixtures and tests without a browser keep their synchronous thread."""

    def __init__(self) -> None:
        self.manager: Any = None
        self.loop: Any = None
        self.browser: Any = None
        self.new_context: Callable[..., Any] | None = None

    def attach(self) -> Any:
        import asyncio

        from playwright.sync_api import sync_playwright

        if self.loop is not None:
            asyncio._set_running_loop(self.loop)
        if self.browser is not None and not self.browser.is_connected():
            self.close()  # a crashed browser: start again
        if self.manager is None:
            self.manager = sync_playwright()
            self.browser = chromium_launch(self.manager.start())
            self.loop = asyncio.get_running_loop()
            self.new_context = self.browser.new_context
        return self.browser

    def detach(self) -> None:
        import asyncio

        try:
            if self.browser.is_connected():
                for context in list(self.browser.contexts):
                    context.close()  # contexts a test opened and left open
        finally:
            asyncio._set_running_loop(None)

    def close(self) -> None:
        import asyncio

        if self.manager is None:
            return
        if self.loop is not None:
            asyncio._set_running_loop(self.loop)
        try:
            if self.browser.is_connected():
                self.browser.close()
        finally:
            self.manager.__exit__(None, None, None)
            self.manager = self.loop = self.browser = self.new_context = None
            asyncio._set_running_loop(None)


@pytest.fixture(scope="package")
def shared_browser() -> Iterator[_SharedBrowser]:
    shared = _SharedBrowser()
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture
def page(live_url, oidc_issuer, shared_browser) -> Iterator[Any]:
    from playwright.sync_api import expect

    # Assertions wait as long as actions do (10 s; Playwright's own default for expect is 5 s):
    # a step that does a server-to-server callback, on two busy cores, once took over 5 s.
    expect.set_options(timeout=10_000)

    JOURNAL.reset()
    # The server's own host, and the identity platform's login, which it redirects to.
    hosts = {urlsplit(live_url).netloc, urlsplit(oidc_issuer.url).netloc}
    foreign: list[str] = []
    errors: list[str] = []
    violations: list[str] = []
    browser = shared_browser.attach()
    try:
        # Contexts a test opens itself (browser.new_context) are watched too.
        original_new_context = shared_browser.new_context
        browser.new_context = lambda **options: _new_context_with(
            original_new_context, violations, **options
        )
        context = browser.new_context(base_url=live_url, **PHONE)
        context.set_default_timeout(10_000)
        tab = context.new_page()
        tab.on(
            "request",
            lambda request: (
                None
                if request.url.startswith("data:") or urlsplit(request.url).netloc in hosts
                else foreign.append(request.url)
            ),
        )
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        yield tab
    finally:
        shared_browser.detach()
    assert not errors, f"uncaught JavaScript errors: {errors}"
    assert not foreign, f"the page requested other hosts (CDN, fonts?): {foreign}"
    assert not violations, f"Content-Security-Policy violations: {violations}"


@pytest.fixture
def screenshot(page) -> Callable[[str], Path]:
    """Save a full-page screenshot to test-results/<name>.png (gitignored), after axe-core
    found nothing serious on the page (see the module docstring)."""

    def take(name: str) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def desktop(page, live_url) -> Iterator[Any]:
    """A desktop browser (no touch, wide screen) beside the phone."""
    browser = page.context.browser
    context = browser.new_context(base_url=live_url, **DESKTOP)
    context.set_default_timeout(10_000)
    errors: list[str] = []
    tab = context.new_page()
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"uncaught JavaScript errors on the desktop: {errors}"
