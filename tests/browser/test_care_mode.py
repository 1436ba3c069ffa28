"""关怀模式 (issue 16 item 4) on a phone: switched on from the home page, remembered on the
device (a cookie the server reads, so each page is drawn in it from its first paint), applied
to every H5 page, measured on the formal selection page against the normal mode, switched off;
and offered on the login page, where older applicants arrive first."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from selection.models import Session
from tests.browser.conftest import CLIPPED
from tests.browser.test_login import log_in
from tests.browser.test_selection_flow import _round_in_preselection

pytestmark = pytest.mark.browser

CARE_HTML = re.compile(r'<html lang="zh-Hans" class="anju-care">')
TOUCH_MIN = 48  # CSS px, WCAG 2.5.5 (AAA) and the 适老化 guidance for main controls

MEASURE = """() => {
  const size = (node) => parseFloat(getComputedStyle(node).fontSize);
  const box = (node) => { const r = node.getBoundingClientRect(); return [r.width, r.height]; };
  const q = (sel) => document.querySelector(sel);
  return {
    tips: size(q("#formal-tips")),
    unitTitle: size(q("#units .anju-unit__title")),
    unitDesc: size(q("#units .anju-unit__desc")),
    unitButtons: [...document.querySelectorAll("#units li button")].map(box),
    buttons: ["#sync-btn", "#give-up-btn", "#confirm-btn"].map((s) => box(q(s))),
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
  };
}"""


# Visible buttons and links-as-buttons smaller than `min` CSS px either way.
SMALL_TARGETS = """(min) => [...document.querySelectorAll("button, [role=button], select")]
  .filter((node) => node.offsetParent !== null || getComputedStyle(node).position === "fixed")
  .map((node) => [node.textContent.trim() || node.getAttribute("aria-label"),
                  node.getBoundingClientRect()])
  .filter(([, box]) => box.width && (box.width < min || box.height < min))
  .map(([name, box]) => `${name}: ${Math.round(box.width)}x${Math.round(box.height)}`)"""


def _open_window_now(session_id: int) -> None:
    """The family's session is open now, long enough for the whole test."""
    now = timezone.now()
    Session.objects.filter(pk=session_id).update(
        starts_at=now - timedelta(seconds=1), ends_at=now + timedelta(minutes=15)
    )


def _enter_formal(page, live_url, rid: int) -> None:
    page.goto(f"/h5/selection/{rid}/")
    page.get_by_role("button", name="开始选房").tap()
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/declaration/formal/")
    page.get_by_label("上述条款，我已阅知").tap()
    page.get_by_role("button", name="去选房").tap()
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/formal/")
    expect(page.locator("#units li button").first).to_be_visible()


def _care_on(page) -> bool:
    return page.evaluate("() => document.documentElement.classList.contains('anju-care')")


def _came_back(page, checked: str) -> None:
    """The switch posted and the page came back drawn in the new mode: its switch says so
    and the page has loaded, stylesheets included (measured before that, the old sizes)."""
    expect(page.get_by_role("switch", name="关怀模式")).to_have_attribute("aria-checked", checked)
    page.wait_for_load_state("load")


def test_care_mode_from_the_home_page_on_every_page_then_off(page, live_url, orm, screenshot):
    setup = orm(_round_in_preselection)
    rid = setup.round_id
    orm(_open_window_now, setup.session_id)
    log_in(page, orm, setup.applicant)

    care = page.get_by_role("switch", name="关怀模式")
    expect(care).to_have_attribute("aria-checked", "false")
    assert not _care_on(page)

    # The normal mode's measures on the formal page.
    _enter_formal(page, live_url, rid)
    normal = page.evaluate(MEASURE)
    screenshot("care-off-formal")

    # On, from the home page: the page comes back in care mode.
    page.goto("/h5/")
    page.get_by_role("switch", name="关怀模式").tap()
    expect(page).to_have_url(f"{live_url}/h5/")
    _came_back(page, "true")
    assert _care_on(page)
    assert page.evaluate(CLIPPED) == []
    screenshot("care-home")
    page.reload()
    assert _care_on(page)

    # Every H5 page is sent already in care mode: the class is in the HTML, not added later.
    for path in (
        f"/h5/selection/{rid}/",
        f"/h5/selection/{rid}/formal/",
        f"/h5/broadcast/{rid}/",
        "/h5/signing/",
        "/h5/lease/",
        "/h5/me/",
        "/h5/no-such-page/",
    ):
        response = page.goto(path)
        assert CARE_HTML.search(response.text()), f"{path} is not sent in care mode"
        assert _care_on(page), path
    page.goto(f"/h5/broadcast/{rid}/")
    expect(page.get_by_role("heading", name="房源状态")).to_be_visible()
    screenshot("care-broadcast")
    page.goto("/h5/signing/")
    expect(page.locator(".anju-loading")).to_be_hidden()
    screenshot("care-signing")

    # The formal page in care mode: larger text, bigger targets, nothing wider than the screen.
    page.goto(f"/h5/selection/{rid}/formal/")
    expect(page.locator("#units li button").first).to_be_visible()
    cared = page.evaluate(MEASURE)
    screenshot("care-formal")
    assert cared["tips"] >= 18 and cared["tips"] >= normal["tips"] * 1.2, (normal, cared)
    assert cared["unitTitle"] >= 20 and cared["unitTitle"] >= normal["unitTitle"] * 1.2
    assert cared["unitDesc"] >= 16 and cared["unitDesc"] >= normal["unitDesc"] * 1.2
    for width, height in cared["unitButtons"] + cared["buttons"]:
        assert width >= TOUCH_MIN and height >= TOUCH_MIN, (normal, cared)
    normal_height = min(h for _, h in normal["unitButtons"])
    assert min(h for _, h in cared["unitButtons"]) > normal_height, (normal, cared)
    assert cared["overflow"] <= 0, cared
    assert page.evaluate(CLIPPED) == []
    # With a unit in the cart, every button on the page, its 上移/下移/置顶/删除 included.
    page.get_by_role("button", name=re.compile("^选择 1栋")).first.tap()
    expect(page.locator("#cart li").first).to_be_visible()
    small = page.evaluate(SMALL_TARGETS, TOUCH_MIN)
    assert not small, small
    screenshot("care-formal-cart")

    # Off again, from the home page: every page back to normal.
    page.goto("/h5/")
    page.get_by_role("switch", name="关怀模式").tap()
    _came_back(page, "false")
    assert not _care_on(page)
    page.goto(f"/h5/selection/{rid}/formal/")
    expect(page.locator("#units li button").first).to_be_visible()
    assert not _care_on(page)
    assert page.evaluate(MEASURE)["unitTitle"] == normal["unitTitle"]


def test_care_mode_is_offered_on_the_login_page(page, live_url, screenshot):
    page.goto("/h5/login/?reason=replaced")
    care = page.get_by_role("switch", name="关怀模式")
    expect(care).to_have_attribute("aria-checked", "false")
    care.tap()
    # Back on the same login page, with its notice, now in care mode.
    expect(page).to_have_url(f"{live_url}/h5/login/?reason=replaced")
    _came_back(page, "true")
    assert _care_on(page)
    size = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector('#id_number')).fontSize)"
    )
    assert size >= 20
    assert page.evaluate(CLIPPED) == []
    screenshot("care-login")
    cookie = next(c for c in page.context.cookies() if c["name"] == "anju_care")
    assert cookie["value"] == "1" and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["expires"] > timezone.now().timestamp() + 300 * 24 * 3600
