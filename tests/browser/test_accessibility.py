"""Accessibility of the H5 pages (issue 16 item 3).

- axe-core (node_modules/axe-core, from the npm registry) finds no serious or critical
  violation. Every screenshot a browser test takes runs it (tests/browser/conftest.py); the
  tests here add the states no other test photographs: the login page's notice and form
  errors, a home without a family, the error page, a full broadcast board, care mode.
- axe runs through the DevTools protocol, outside the page's Content-Security-Policy: it adds
  nothing the policy forbids, and csp_watch still reports what the page itself breaks.
- The largest text size of a phone: Android's largest font scale (200 % since Android 14)
  reaches a WebView page as its text zoom, which multiplies every computed font size and
  leaves every other length (widths, px line heights) as it is. `LARGEST_TEXT` does the same
  to the page as it stands; login, home, formal selection and the signing page must then
  neither scroll sideways nor clip any text (ellipsis included). iOS Safari and WeChat's
  own font setting enlarge less than this.
"""

from __future__ import annotations

import re
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Layout
from selection.models import Round, Unit
from tests.browser.conftest import (
    CLIPPED,
    PHONE,
    assert_accessible,
    axe_violations,
    chromium_launch,
    csp_watch,
)
from tests.browser.test_care_mode import _enter_formal, _open_window_now
from tests.browser.test_lease_flow import _allocated_just_now, _lease_started, _signed_at_deposit
from tests.browser.test_login import log_in
from tests.browser.test_records_viewer import records_world
from tests.browser.test_selection_flow import _round_in_preselection
from tests.browser.test_signing_flow import _agreement_open_now, _ticket_for
from tests.factories import ApplicantFactory

pytestmark = pytest.mark.browser

TEXT_ZOOM = 2.0

# Android's text zoom on the page as it is now: each element's computed font size times the
# factor (set through the CSSOM, which the Content-Security-Policy allows).
LARGEST_TEXT = """(factor) => {
  const nodes = [document.documentElement, ...document.querySelectorAll("body *")];
  const sizes = nodes.map((node) => parseFloat(getComputedStyle(node).fontSize));
  nodes.forEach((node, i) =>
    node.style.setProperty("font-size", `${sizes[i] * factor}px`, "important"));
}"""


def _at_largest_text(page, label: str, screenshot) -> None:
    page.evaluate(LARGEST_TEXT, TEXT_ZOOM)
    problems = page.evaluate(CLIPPED)
    screenshot(f"large-text-{label}")
    assert not problems, f"{label} at {TEXT_ZOOM:.0%} text:\n" + "\n".join(problems)


# Each step label of the page's flowbar, as the lines it is drawn in (characters grouped by the
# top of their box).
FLOWBAR_LINES = """() => [...document.querySelectorAll(".anju-flowbar__item")].map((item) => {
  const lines = new Map();
  const walker = document.createTreeWalker(item, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const top = Math.round(range.getBoundingClientRect().top);
      lines.set(top, (lines.get(top) || "") + node.data[i]);
    }
  }
  return [...lines.keys()].sort((a, b) => a - b).map((top) => lines.get(top));
})"""


# The title bar's lines: the tops of its line boxes (closer than the font size: lines drawn
# over each other).
TITLE_LINES = """() => {
  const title = document.querySelector(".anju-titlebar__title");
  const range = document.createRange();
  range.selectNodeContents(title);
  const tops = [...new Set([...range.getClientRects()].map((r) => Math.round(r.top)))];
  return { size: parseFloat(getComputedStyle(title).fontSize), tops: tops.sort((a, b) => a - b) };
}"""


def _no_family_applicant():
    return ApplicantFactory(real_name="林无家")


def _board_round() -> int:
    """A round of 38 units in four buildings: one taken (confirmed, in the feed), one
    withdrawn, the rest available."""
    setup = _round_in_preselection()
    rnd = Round.objects.get(pk=setup.round_id)
    for building in ("3", "5"):
        for floor in range(2, 10):
            for door in (1, 2):
                Unit.objects.create(
                    round=rnd,
                    building=building,
                    number=f"{floor}0{door}",
                    floor=floor,
                    layout=Layout.TWO_BED if door == 1 else Layout.ONE_BED,
                    orientation="S",
                    area=Decimal("64.80"),
                    monthly_rent=Decimal("2106"),
                )
    Unit.objects.filter(round=rnd, building="5", number="901").update(status="withdrawn")
    return rnd.pk


def test_axe_runs_outside_the_csp_and_csp_watch_still_reports(live_url):
    """axe's source is evaluated through the DevTools protocol: no violation of the page's
    policy. A script the page adds itself still is one, and csp_watch still hears it."""
    from playwright.sync_api import sync_playwright

    violations: list[str] = []
    with sync_playwright() as playwright:
        browser = chromium_launch(playwright)
        try:
            context = browser.new_context(base_url=live_url, **PHONE)
            csp_watch(context, violations)
            tab = context.new_page()
            tab.goto("/h5/login/")
            assert axe_violations(tab) == []
            assert tab.evaluate("() => typeof window.axe") == "object"
            tab.wait_for_timeout(200)
            assert violations == []
            # An inline script the page would add: blocked, and reported.
            tab.evaluate(
                """() => { const s = document.createElement("script");
                s.textContent = "window.__inline = 1"; document.body.append(s); }"""
            )
            expect(tab.locator("body")).to_be_visible()
            tab.wait_for_timeout(300)
            assert tab.evaluate("() => window.__inline") is None
            assert any("script-src" in v for v in violations), violations
        finally:
            browser.close()


def test_the_login_page_in_each_of_its_states(page, live_url, screenshot):
    page.goto("/h5/login/?reason=replaced")
    expect(page.locator("#notice")).to_be_visible()
    screenshot("a11y-login-notice")

    # Sent empty: the field errors and the summary.
    page.goto("/h5/login/")
    page.get_by_role("button", name="登录", exact=True).tap()
    expect(
        page.locator("[data-error-for]:not([hidden]), #form-error:not([hidden])").first
    ).to_be_visible()
    screenshot("a11y-login-errors")

    # A wrong ID number for the code.
    page.get_by_label("身份证号码").fill("123")
    page.get_by_role("button", name="获取验证码", exact=True).tap()
    expect(
        page.locator("[data-error-for]:not([hidden]), #form-error:not([hidden])").first
    ).to_be_visible()
    assert_accessible(page, "login, bad ID number")

    # In care mode.
    page.get_by_role("switch", name="关怀模式").tap()
    expect(page.get_by_role("switch", name="关怀模式")).to_have_attribute("aria-checked", "true")
    screenshot("a11y-login-care")


def test_home_without_a_family(page, live_url, orm, screenshot):
    applicant = orm(_no_family_applicant)
    log_in(page, orm, applicant)
    expect(page.get_by_text("未找到您的选房家庭信息")).to_be_visible()
    screenshot("a11y-home-no-family")


def test_the_error_page_in_both_modes(page, live_url, screenshot):
    response = page.goto("/h5/no-such-page/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="页面不存在")).to_be_visible()
    screenshot("a11y-error-404")
    page.goto("/h5/login/")
    page.get_by_role("switch", name="关怀模式").tap()
    expect(page.get_by_role("switch", name="关怀模式")).to_have_attribute("aria-checked", "true")
    page.goto("/h5/no-such-page/")
    expect(page.get_by_role("heading", name="页面不存在")).to_be_visible()
    screenshot("a11y-error-404-care")


def test_a_full_broadcast_board(page, live_url, orm, screenshot):
    rid = orm(_board_round)
    page.goto(f"/h5/broadcast/{rid}/")
    expect(page.locator("li[title$='已选']").first).to_be_visible()
    expect(page.locator("li[title$='已撤回'], li[title$='撤回']").first).to_be_attached()
    screenshot("a11y-broadcast")
    page.goto("/h5/broadcast/")
    screenshot("a11y-broadcast-index")


def test_the_board_at_the_largest_text_size(page, live_url, orm, screenshot):
    """The broadcast board at 200 % text: nothing clipped or off the screen, and the title's
    two lines are not drawn over each other (they were, at a 24 px line height)."""
    rid = orm(_board_round)
    page.goto(f"/h5/broadcast/{rid}/")
    expect(page.locator("li[title$='已选']").first).to_be_visible()
    _at_largest_text(page, "board", screenshot)
    title = page.evaluate(TITLE_LINES)
    assert len(title["tops"]) == 2, title  # 房源信息播报 at 34 px does not fit one line
    assert title["tops"][1] - title["tops"][0] >= title["size"], title


def test_key_pages_at_the_largest_text_size(page, live_url, orm, screenshot):
    page.goto("/h5/login/")
    expect(page.get_by_label("身份证号码")).to_be_visible()
    _at_largest_text(page, "login", screenshot)

    setup = orm(_round_in_preselection)
    orm(_open_window_now, setup.session_id)
    log_in(page, orm, setup.applicant)
    _at_largest_text(page, "home", screenshot)

    _enter_formal(page, live_url, setup.round_id)
    page.get_by_role("button", name=re.compile("^选择 1栋")).first.tap()
    expect(page.locator("#cart li").first).to_be_visible()
    _at_largest_text(page, "formal", screenshot)

    # The question before the choice counts, enlarged with the page once it is open (a
    # dialog made after the enlargement would keep its own px sizes), then the result.
    page.reload()
    page.locator("#cart input[type=radio]").first.tap()
    page.locator("#confirm-btn").tap()
    asking = page.get_by_role("dialog", name="确认正选")
    expect(asking).to_be_visible()
    _at_largest_text(page, "formal-confirm", screenshot)
    # Nothing under the taller bar: the page keeps room below its last line as tall as the bar.
    page.wait_for_function(
        """() => parseFloat(getComputedStyle(document.getElementById("main")).paddingBottom)
          >= document.querySelector(".anju-bottom-bar").offsetHeight"""
    )
    asking.get_by_role("button", name="确认选定").tap()
    expect(page.locator("#result-title")).to_have_text("选房成功")
    expect(page.locator("#receipt")).to_contain_text("选房记录凭证")
    _at_largest_text(page, "result", screenshot)


def test_the_signing_page_at_the_largest_text_size(page, live_url, orm, screenshot):
    setup = orm(_agreement_open_now)
    token = orm(_ticket_for, setup.agreement_id)
    page.goto(f"/s/{token}")
    expect(page).to_have_url(re.compile(r"/h5/signing/\d+/sign/$"))
    expect(page.get_by_role("heading", name="电子合同", level=2)).to_be_visible()
    assert urlsplit(page.url).path.endswith("/sign/")
    _at_largest_text(page, "sign", screenshot)
    # The steps' names break between their words only (电子合 / 同 before).
    assert page.evaluate(FLOWBAR_LINES) == [
        ["电子", "合同"],
        ["身份", "核验"],
        ["阅读", "签署"],
        ["短信", "提交"],
    ]


def _lease_info_done(applicant_pk: int, lease_id: int) -> None:
    from accounts.models import Applicant
    from core.context import RequestContext
    from signing.models import Lease
    from tests.signing.lease_worlds import lease_info_filled

    lease_info_filled(
        applicant=Applicant.objects.get(pk=applicant_pk),
        lease=Lease.objects.get(pk=lease_id),
        account_number="6222021234567890128",
        ctx=RequestContext(ip="10.0.0.8", user_agent="pytest"),
        now=timezone.now(),
    )


def test_the_lease_page_at_the_largest_text_size(page, live_url, orm, screenshot):
    """租赁合同签约 at 200 % text, at 完善承租信息, 人脸识别 and 押金缴纳: nothing clipped, and
    each stage's name breaks between its words only (完善 / 承租 / 信息: Intl.Segmenter's
    words, a one-character word kept with the next)."""
    setup = orm(_allocated_just_now)
    lid = orm(_lease_started, setup.applicant.pk)
    log_in(page, orm, setup.applicant)
    page.goto(f"/h5/lease/{lid}/")
    expect(page.locator("#stage-info")).to_be_visible()
    _at_largest_text(page, "lease", screenshot)
    assert page.evaluate(FLOWBAR_LINES) == [
        ["完善", "承租", "信息"],
        ["人脸", "识别"],
        ["签订", "合同"],
        ["押金", "缴纳"],
        ["待审核"],
    ]

    orm(_lease_info_done, setup.applicant.pk, lid)
    page.reload()
    expect(page.locator("#stepper .anju-flowbar__item_on")).to_have_attribute("data-stage", "face")
    expect(page.locator("#qr-img")).to_be_visible()
    _at_largest_text(page, "lease-face", screenshot)

    orm(_signed_at_deposit, lid)
    page.reload()
    expect(page.locator("#stepper .anju-flowbar__item_on")).to_have_attribute(
        "data-stage", "deposit"
    )
    expect(page.locator("#deposit-amount")).to_have_text("¥2938.00")
    expect(page.locator("#qr-img")).to_be_visible()
    _at_largest_text(page, "lease-deposit", screenshot)


def test_the_records_and_the_approved_lease_at_the_largest_text_size(
    page, live_url, orm, settings, tmp_path, screenshot
):
    """After signing, at 200 % text: 网上签约记录, 网上签约, the viewer and the receipt, and the
    approved lease's page."""
    setup = records_world(page, live_url, orm, settings, tmp_path, approved=True)
    page.goto("/h5/me/leases/")
    expect(page.locator("article[data-agreement-id]")).to_have_count(2)
    _at_largest_text(page, "records", screenshot)

    page.goto("/h5/signing/")
    expect(page.locator(".anju-loading")).to_be_hidden()
    _at_largest_text(page, "signing-list", screenshot)

    agreement = setup["lease_agreement"]
    for path in ("view", "receipt"):
        page.goto(f"/h5/signing/{agreement}/{path}/?from=records")
        expect(page.locator(".anju-viewer__page img").first).to_have_js_property("complete", True)
        _at_largest_text(page, f"viewer-{path}", screenshot)

    page.goto(f"/h5/lease/{setup['lease']}/")
    expect(page.locator("#stepper .anju-flowbar__item_done")).to_have_count(5)
    _at_largest_text(page, "lease-approved", screenshot)
