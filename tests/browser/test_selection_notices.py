"""Stale selection notices, on a phone against the live server's clock: the formal declaration
page says when the family's window opens and opens 【去选房】 by itself at that time; the
pre-selection page's 「…时间已开始…去选房」 notice moves on once the session is over; the home
page's 当前事项 moves on at the opening."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Layout
from selection.models import Round, Seat, Session, Unit
from tests.browser.test_login import log_in
from tests.factories import FamilyFactory

pytestmark = pytest.mark.browser


def _session_soon(opens_in: float, lasts: float):
    now = timezone.now()
    rnd = Round.objects.create(
        name="2026年第三批公共租赁住房网上选房",
        preselect_starts_at=now - timedelta(hours=1),
        window_seconds=120,
    )
    Unit.objects.create(
        round=rnd,
        building="2",
        number="0601",
        floor=6,
        layout=Layout.ONE_BED,
        orientation="S",
        area=Decimal("45.20"),
        monthly_rent=Decimal("1469"),
    )
    family = FamilyFactory(rank=11, eligible_layouts=[Layout.ONE_BED])
    starts = now + timedelta(seconds=opens_in)
    session = Session.objects.create(
        round=rnd, order=1, starts_at=starts, ends_at=starts + timedelta(seconds=lasts)
    )
    Seat.objects.create(session=session, family=family)
    return rnd.pk, family.main_applicant


def test_formal_declaration_says_when_and_opens_by_itself(page, orm, screenshot):
    rid, applicant = orm(_session_soon, 12, 120)
    log_in(page, orm, applicant)
    page.goto(f"/h5/selection/{rid}/declaration/formal/")
    status = page.locator("#window-status")
    expect(status).to_contain_text("您的正选时间为")
    expect(status).to_contain_text("届时本页将自动开放【去选房】")
    page.get_by_label("上述条款，我已阅知").tap()
    go = page.get_by_role("button", name="去选房")
    expect(go).to_be_disabled()
    screenshot("formal-declaration-waiting")
    expect(go).to_be_enabled(timeout=25_000)  # the page moves on at the window's start
    expect(status).to_have_text("正选已开始，请勾选声明后点击【去选房】。")
    screenshot("formal-declaration-open")


def test_the_round_page_moves_on_at_the_opening_with_its_button_in_place(page, orm, screenshot):
    """At the window's start the round page's tips change (the pre-selection advice, then
    「正在开启」, then the time left): 【开始选房】, which a family taps at that moment, stays
    where it is."""
    rid, applicant = orm(_session_soon, 12, 120)
    log_in(page, orm, applicant)
    page.goto(f"/h5/selection/{rid}/")
    tips = page.locator("#phase-tips")
    expect(tips).to_contain_text("开始前完成预选")
    start = page.get_by_role("button", name="开始选房")
    at = start.bounding_box()
    expect(page.locator("#phase")).to_have_text("正选进行中", timeout=25_000)
    expect(tips).to_contain_text("请立即开始选房")
    assert start.bounding_box() == at
    screenshot("round-open")


def test_the_home_page_says_the_next_step_and_moves_on_at_the_opening(page, orm, screenshot):
    """当前事项 on the home page: the family's session and what to do before it, the way
    there in green; at the window's start the page reads again by itself (no tap, no
    refresh) and says the window is open."""
    rid, applicant = orm(_session_soon, 12, 120)
    log_in(page, orm, applicant)
    page.goto("/h5/")
    card = page.get_by_role("article", name="网上选房 · 2026年第三批公共租赁住房网上选房")
    expect(card).to_contain_text("预选进行中")
    expect(card).to_contain_text(
        re.compile(
            r"您的正选场次：第1场 \d+月\d+日 \d\d:\d\d–\d\d:\d\d，请在正选开始前完成预选（最多5套）。"
        )
    )
    expect(card.get_by_role("button", name="去预选")).to_have_class(
        re.compile(r"\bweui-btn_primary\b")
    )
    screenshot("home-next-step-pre")
    expect(card).to_contain_text("正选进行中", timeout=25_000)
    expect(card).to_contain_text("请立即进入选房。")
    screenshot("home-next-step-formal")
    card.get_by_role("button", name="去选房").tap()
    expect(page).to_have_url(re.compile(rf"/h5/selection/{rid}/$"))
    expect(page.locator("#phase")).to_have_text("正选进行中")


def test_pre_page_notice_moves_on_after_the_session(page, orm, screenshot):
    rid, applicant = orm(_session_soon, -1, 20)
    log_in(page, orm, applicant)
    page.goto(f"/h5/selection/{rid}/pre/")
    expect(page.get_by_text(re.compile("您的正选时间已开始"))).to_be_visible()
    expect(page.get_by_role("button", name="去选房")).to_be_visible()
    # The live socket opened beside the state's read; the notice page does not use it, so
    # no 实时 badge claims the notice is live.
    expect(page.locator("#live-state")).to_have_count(0)
    screenshot("pre-notice-formal")
    expect(page.get_by_text("您的选房场次已结束，请查看选房结果。")).to_be_visible(timeout=25_000)
    expect(page.get_by_role("button", name="去选房")).to_have_count(0)
    expect(page.get_by_text(re.compile("您的正选时间已开始"))).to_have_count(0)
    screenshot("pre-notice-ended")
