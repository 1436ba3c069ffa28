"""关怀模式 (issue 16 item 4) on a phone: switched on from the home page, remembered on the
device (a cookie the server reads, so each page is drawn in it from its first paint), applied
to every H5 page, measured on the formal selection page against the normal mode, switched off;
and offered on the login page, where older applicants arrive first. Then the pages found wanting
on the demo walk, measured at 390 px in care mode: labels and title-bar links on one line (the
lease page, the viewer), the filters' selected text clear of the arrow, and the inline links
(咨询电话, 在线核验, 查看押金收据) and the formal cart's radios at least 44 px to tap."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from selection.models import Session
from tests.browser.conftest import CLIPPED
from tests.browser.test_lease_flow import _allocated_just_now, _lease_started
from tests.browser.test_login import log_in
from tests.browser.test_records_viewer import records_world
from tests.browser.test_selection_flow import _round_in_preselection

pytestmark = pytest.mark.browser

CARE_HTML = re.compile(r'<html lang="zh-Hans" class="anju-care">')
TOUCH_MIN = 48  # CSS px, WCAG 2.5.5 (AAA) and the 适老化 guidance for main controls
LINK_MIN = 44  # CSS px, the least for a link inside a sentence (WCAG 2.5.5's 44 px)

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
SMALL_TARGETS = """(min) => [...document.querySelectorAll(
    "button, [role=button], select, input[type=radio]")]
  .filter((node) => node.offsetParent !== null || getComputedStyle(node).position === "fixed")
  .map((node) => [node.textContent.trim() || node.getAttribute("aria-label"),
                  node.getBoundingClientRect()])
  .filter(([, box]) => box.width && (box.width < min || box.height < min))
  .map(([name, box]) => `${name}: ${Math.round(box.width)}x${Math.round(box.height)}`)"""

# The lines each node's text is drawn on: the distinct tops of its text's line boxes (a label
# broken inside a word, 「登记 / 手机 / 号码」, is drawn on three).
LINES = """(nodes) => nodes.map((node) => {
  const range = document.createRange();
  range.selectNodeContents(node);
  const tops = new Set([...range.getClientRects()].filter((r) => r.width && r.height)
    .map((r) => Math.round(r.top)));
  return [node.textContent.trim(), tops.size];
})"""

# Each node's box to tap, width x height.
BOXES = """(nodes) => nodes.map((node) => {
  const box = node.getBoundingClientRect();
  return [node.textContent.trim() || node.getAttribute("aria-label"),
          Math.round(box.width), Math.round(box.height)];
})"""

# A select's selected text against the room the select leaves it: its content box, that is
# without the padding on the right, where the arrow is drawn.
SELECTS = """(nodes) => nodes.map((node) => {
  const style = getComputedStyle(node);
  const text = node.selectedOptions[0].textContent;
  const canvas = document.createElement("canvas").getContext("2d");
  canvas.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
  const room = node.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  return {text, width: Math.ceil(canvas.measureText(text).width), room,
          arrow: parseFloat(style.paddingRight)};
})"""
ARROW_MIN = 24  # CSS px the arrow takes at the select's right, beside its text


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


def _care_cookie(page, live_url) -> None:
    """Care mode on this phone, as the switch leaves it (the switch itself is tested above)."""
    page.context.add_cookies([{"name": "anju_care", "value": "1", "url": live_url}])


def _one_line(page, selector: str) -> None:
    found = page.locator(selector).evaluate_all(LINES)
    assert found, selector
    assert all(lines == 1 for _, lines in found), found


def _big_enough(page, selector: str, *, width: int = 0) -> None:
    found = page.locator(selector).evaluate_all(BOXES)
    assert found, selector
    assert all(w >= width and h >= LINK_MIN for _, w, h in found), found


def test_care_mode_selection_filters_radios_and_the_receipt_link(page, live_url, orm, screenshot):
    """Pre-selection's filters: the selected 「我家可选」 / 「全部户型」 fits beside the arrow.
    The formal cart's radio (选定) and the result page's 「在线核验」 are big enough to tap."""
    setup = orm(_round_in_preselection)
    rid = setup.round_id
    log_in(page, orm, setup.applicant)
    _care_cookie(page, live_url)

    page.goto(f"/h5/selection/{rid}/pre/")
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/declaration/pre/")
    page.get_by_label("上述条款，我已阅知").tap()
    page.get_by_role("button", name="开始预选").tap()
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/pre/")
    assert _care_on(page)
    expect(page.locator("#units li button").first).to_be_visible()
    screenshot("care-pre-filters")
    layout = page.locator("select[name=layout]")
    for choice in ("我家可选", "全部户型"):
        layout.select_option(label=choice)
        for select in page.locator(".anju-filter__select").evaluate_all(SELECTS):
            assert select["arrow"] >= ARROW_MIN, select
            assert select["width"] <= select["room"], select
    assert page.evaluate(CLIPPED) == []
    screenshot("care-pre-filters-all")

    orm(_open_window_now, setup.session_id)
    _enter_formal(page, live_url, rid)
    page.get_by_role("button", name=re.compile("^选择 1栋")).first.tap()
    radio = page.locator("#cart input[type=radio]")
    expect(radio).to_have_count(1)
    screenshot("care-formal-radio")
    for _, width, height in radio.evaluate_all(BOXES):
        assert width >= TOUCH_MIN and height >= TOUCH_MIN, (width, height)
    assert page.evaluate(CLIPPED) == []
    radio.tap()
    page.locator("#confirm-btn").tap()
    page.get_by_role("dialog", name="确认正选").get_by_role("button", name="确认选定").tap()
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/result/")
    expect(page.locator("#receipt-verify")).to_have_text("在线核验", timeout=15_000)
    screenshot("care-result-receipt")
    _big_enough(page, "#receipt p a")
    _one_line(page, "#receipt p a")
    assert page.evaluate(CLIPPED) == []


def test_care_mode_lease_page_labels_on_one_line(page, live_url, orm, screenshot):
    """租赁合同签约 at 完善承租信息: 「登记手机号码」 and every stage of the stepper on one line."""
    setup = orm(_allocated_just_now)
    lid = orm(_lease_started, setup.applicant.pk)
    log_in(page, orm, setup.applicant)
    _care_cookie(page, live_url)
    page.goto(f"/h5/lease/{lid}/")
    assert _care_on(page)
    expect(page.locator("#stage-info")).to_be_visible()
    expect(page.locator("#mobile-masked")).not_to_be_empty()
    screenshot("care-lease-info")
    mobile_label = "#stage-info .weui-cell__bd:text-is('登记手机号码')"
    _one_line(page, mobile_label)
    _one_line(page, "#stepper li")
    expect(page.locator("#stepper li").first).to_have_text("完善承租信息")
    _one_line(page, ".anju-titlebar__back")
    assert page.evaluate(CLIPPED) == []


def test_care_mode_records_viewer_and_receipt(page, live_url, orm, settings, tmp_path, screenshot):
    """网上签约记录, the viewer and the deposit receipt, the lease approved: the title bar's
    「‹ 签约记录」 on one line, the 咨询电话 numbers (also on 网上签约) and 「查看押金收据」 /
    「查看合同」 big enough to tap."""
    setup = records_world(page, live_url, orm, settings, tmp_path, approved=True)
    _care_cookie(page, live_url)
    tel = "a[href^='tel:']"

    page.goto("/h5/me/leases/")
    assert _care_on(page)
    expect(page.locator("article[data-agreement-id]")).to_have_count(2)
    screenshot("care-records")
    _big_enough(page, f"#records-tips {tel}")
    _one_line(page, f"#records-tips {tel}")
    assert page.evaluate(CLIPPED) == []

    page.goto("/h5/signing/")
    expect(page.locator(".anju-loading")).to_be_hidden()
    screenshot("care-signing-tips")
    _big_enough(page, f"#signing-tips {tel}")
    _one_line(page, f"#signing-tips {tel}")
    assert page.evaluate(CLIPPED) == []

    agreement = setup["lease_agreement"]
    for path, other in (("view", "查看押金收据"), ("receipt", "查看合同")):
        page.goto(f"/h5/signing/{agreement}/{path}/?from=records")
        expect(page.locator(".anju-viewer__page img").first).to_have_js_property("complete", True)
        expect(page.locator(".anju-titlebar__back")).to_have_text("‹ 签约记录")
        screenshot(f"care-viewer-{path}")
        _one_line(page, ".anju-titlebar__back")
        _one_line(page, ".anju-titlebar__title")
        expect(page.locator("#viewer-other")).to_have_text(other)
        _big_enough(page, "#viewer-other", width=LINK_MIN)
        assert page.evaluate(CLIPPED) == []
