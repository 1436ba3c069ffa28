"""One active device, made explicit, in two browsers: a desktop (1280×800) is logged in and
on the formal selection page; the applicant logs in on a phone, is asked 「在此设备继续登录，
另一设备将退出」 and confirms. The desktop says so at once, at the top of its screen, and its
live updates stop (its sockets were closed with 4409 by the server, not at a next request).

Every wait is on what a page shows, never on time."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from sms.models import SmsCode
from tests.browser.conftest import RESULTS
from tests.browser.test_login import latest_code
from tests.browser.test_realtime import _open_session_with_two_families

pytestmark = pytest.mark.browser

DESKTOP = {
    "viewport": {"width": 1280, "height": 800},
    "locale": "zh-CN",
    "timezone_id": "Asia/Shanghai",
}
NOTICE = "您的账号已在其他设备登录，本页面已退出。如非本人操作，请立即联系工作人员。"
# Every socket the page opens reports how it closed (code and path) in window.socketCloses.
RECORD_CLOSES = """
(() => {
  window.socketCloses = [];
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("close", (event) =>
        window.socketCloses.push({ path: new URL(this.url).pathname, code: event.code }));
    }
  };
})();
"""


def closed_with(tab, prefix: str, code: int | None):
    """Wait until a socket of the page under `prefix` has closed with `code` (None: any).

    Ten seconds, not three: once on CI both of a desktop's sockets dropped (no code of ours,
    nothing in the server's log) between the phone's 409 and its confirmation. The page then
    reconnects with backoff (1, 2, 4 s ±30 %), and the server closes a socket of an ended
    login with its code as it connects: still no request of the page's, still on screen
    without a reload. A failed test's journal shows the sockets' own events."""
    tab.wait_for_function(
        "([prefix, code]) => window.socketCloses.some("
        "(c) => c.path.startsWith(prefix) && (code === null || c.code === code))",
        arg=[prefix, code],
        timeout=10_000,
    )


@pytest.fixture
def desktop(page, live_url) -> Iterator[Any]:
    """A desktop browser: its own context (cookies), no touch, a large screen."""
    context = page.context.browser.new_context(base_url=live_url, **DESKTOP)
    context.set_default_timeout(10_000)
    errors: list[str] = []
    tab = context.new_page()
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"uncaught JavaScript errors on the desktop: {errors}"


def _past_the_resend_cooldown() -> None:
    """The same ID number asks for a code again on the phone a few seconds after the
    desktop did: as if the desktop's had been sent a minute ago."""
    SmsCode.objects.update(created_at=timezone.now() - timedelta(seconds=61))


def _log_in(tab, orm, applicant, *, press) -> None:
    tab.goto("/h5/login/")
    tab.get_by_label("身份证号码").fill(applicant.id_number)
    press(tab.get_by_role("button", name="获取验证码", exact=True))
    expect(tab.locator("#form-info")).to_contain_text("验证码已发送至登记的手机号码")
    tab.get_by_label("短信验证码").fill(orm(latest_code, applicant.mobile))
    press(tab.get_by_role("button", name="登录", exact=True))


def shot(tab, name: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(RESULTS / f"{name}.png"))  # the viewport: what is on screen


def test_a_confirmed_login_on_the_phone_ends_the_desktop_at_once(page, desktop, live_url, orm):
    setup = orm(_open_session_with_two_families)
    applicant = setup.b
    rid = setup.round_id
    phone = page

    # The desktop: logged in, on the formal page, live, with its account socket open.
    desktop.add_init_script(RECORD_CLOSES)
    _log_in(desktop, orm, applicant, press=lambda button: button.click())
    expect(desktop).to_have_url(f"{live_url}/h5/")
    with desktop.expect_websocket(lambda ws: ws.url.endswith("/ws/account/")):
        desktop.goto(f"/h5/selection/{rid}/formal/")
    expect(desktop.locator("#live-state")).to_have_text("实时")
    desktop.evaluate("window.notReloaded = true")

    # The phone logs in: asked first, with nothing ended yet.
    orm(_past_the_resend_cooldown)
    _log_in(phone, orm, applicant, press=lambda button: button.tap())
    dialog = phone.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("该账号已在其他设备登录")
    expect(dialog).to_contain_text("在此设备继续登录，另一设备将退出")
    expect(dialog.get_by_role("button", name="取消")).to_be_visible()
    expect(phone).to_have_url(f"{live_url}/h5/login/")
    expect(desktop.locator("#session-ended")).to_have_count(0)
    assert not [c for c in desktop.evaluate("window.socketCloses") if c["code"] >= 4000]
    shot(phone, "device-phone-asked")

    # 继续登录: the phone goes home; the desktop is told at once, on screen: the server
    # closed its account socket with 4409. It closes the selection socket with 4409 too
    # (tests/realtime/test_device_sockets.py), unless the page got there first: on the
    # account's 4409 the page stops its live updates and closes that socket itself. Either
    # way it is closed and, below, stays closed.
    dialog.get_by_role("button", name="继续登录").tap()
    expect(phone).to_have_url(f"{live_url}/h5/")
    closed_with(desktop, "/ws/account/", 4409)
    closed_with(desktop, "/ws/selection/", None)
    notice = desktop.locator("#session-ended")
    expect(notice).to_be_visible(timeout=3_000)
    expect(notice).to_have_text(re.compile(re.escape(NOTICE)))
    expect(notice).to_have_attribute("role", "alert")
    box = notice.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= 800
    expect(notice).to_be_in_viewport(ratio=1)
    # 重新登录 comes back to this page (h5/static/h5/lib/api.js `loginUrl`).
    login_href = f"/h5/login/?next=%2Fh5%2Fselection%2F{rid}%2Fformal%2F"
    expect(notice.get_by_role("link", name="重新登录")).to_have_attribute("href", login_href)
    # Live updates stopped: the badge says so, the page was not reloaded or sent away.
    expect(desktop.locator("#live-state")).to_have_text("已退出")
    expect(desktop).to_have_url(f"{live_url}/h5/selection/{rid}/formal/")
    assert desktop.evaluate("window.notReloaded") is True
    shot(desktop, "device-desktop-ended")
    shot(phone, "device-phone-home")

    # The phone is the one device now; the desktop's next request is refused with the reason.
    expect(phone.get_by_role("heading", name=re.compile("您好"))).to_be_visible()
    desktop.get_by_role("link", name="重新登录").click()
    expect(desktop).to_have_url(f"{live_url}{login_href}")


def test_cancelling_on_the_phone_leaves_the_desktop_alone(page, desktop, live_url, orm):
    setup = orm(_open_session_with_two_families)
    applicant = setup.b
    desktop.add_init_script(RECORD_CLOSES)
    _log_in(desktop, orm, applicant, press=lambda button: button.click())
    expect(desktop).to_have_url(f"{live_url}/h5/")
    with desktop.expect_websocket(lambda ws: ws.url.endswith("/ws/account/")):
        desktop.goto(f"/h5/selection/{setup.round_id}/formal/")
    expect(desktop.locator("#live-state")).to_have_text("实时")

    orm(_past_the_resend_cooldown)
    _log_in(page, orm, applicant, press=lambda button: button.tap())
    page.get_by_role("dialog").get_by_role("button", name="取消").tap()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.locator("#form-info")).to_have_text("已取消登录，另一设备保持登录。")
    expect(page.get_by_role("button", name="登录", exact=True)).to_be_enabled()
    expect(page).to_have_url(f"{live_url}/h5/login/")
    shot(page, "device-phone-cancelled")

    # No socket of the desktop was told anything; it still works after a reload.
    assert not [c for c in desktop.evaluate("window.socketCloses") if c["code"] >= 4000]
    expect(desktop.locator("#session-ended")).to_have_count(0)
    desktop.reload()
    expect(desktop.locator("#live-state")).to_have_text("实时")
    expect(desktop.locator("#session-ended")).to_have_count(0)
    expect(desktop).to_have_url(f"{live_url}/h5/selection/{setup.round_id}/formal/")


def test_logging_out_in_one_tab_tells_the_other_tabs_at_once(page, live_url, orm):
    """The same phone, two tabs: 退出登录 in one, and the other says so at once (4411)."""
    applicant = orm(_open_session_with_two_families).b
    _log_in(page, orm, applicant, press=lambda button: button.tap())
    expect(page).to_have_url(f"{live_url}/h5/")
    other = page.context.new_page()
    other.add_init_script(RECORD_CLOSES)
    with other.expect_websocket(lambda ws: ws.url.endswith("/ws/account/")):
        other.goto("/h5/")
    expect(other.get_by_role("heading", name=re.compile("您好"))).to_be_visible()

    page.get_by_role("button", name="退出登录").tap()
    expect(page).to_have_url(f"{live_url}/h5/login/")
    closed_with(other, "/ws/account/", 4411)
    notice = other.locator("#session-ended")
    expect(notice).to_have_text(re.compile("您已退出登录，本页面已停止更新。"))
    expect(notice).to_be_in_viewport(ratio=1)
    # The rest of the page is greyed out and inert: it can no longer be used.
    logout = other.get_by_role("button", name="退出登录")
    assert logout.evaluate("node => node.closest('[inert]') !== null")
    shot(other, "device-phone-logged-out-elsewhere")
