"""A family that missed its formal session and applied for 补选, on its phone: its result page
says 预选结果作废, then shows its supplementary session as soon as staff scheduled it (labelled
补选, never 正选, on the pre-selection and selection pages too), the round page says 补选进行中
while it runs, and after the close its result page shows the unit with the auto-assign
explanation. A family that confirms in its 补选 is not told its formal session's miss next to
its unit."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Layout, User
from selection import allocation, carts, supplementary
from selection.models import Round, Seat, Session, Unit
from tests.browser.test_login import log_in
from tests.browser.test_selection_flow import BRAND_GREEN, CTX, PRIMARY
from tests.factories import FamilyFactory
from tests.worlds import declare

pytestmark = pytest.mark.browser


def _missed_and_applied(
    *, preselected: bool = True, applied: bool = True, ended_ago: timedelta = timedelta(minutes=10)
):
    now = timezone.now()
    rnd = Round.objects.create(
        name="2026年第二批公共租赁住房网上选房",
        preselect_starts_at=now - timedelta(hours=2),
        window_seconds=120,
    )
    units = [
        Unit.objects.create(
            round=rnd,
            building="1",
            number=number,
            floor=12,
            layout=Layout.ONE_BED,
            orientation="S",
            area=Decimal("45.20"),
            monthly_rent=Decimal("1469"),
        )
        for number in ("1201", "1202", "1203")
    ]
    family = FamilyFactory(
        rank=7, eligible_layouts=[Layout.ONE_BED], main_applicant__real_name="陈安居"
    )
    formal = Session.objects.create(
        round=rnd,
        order=1,
        starts_at=now - ended_ago - timedelta(minutes=2),
        ends_at=now - ended_ago,
    )
    Seat.objects.create(session=formal, family=family)
    pre_at = now - timedelta(minutes=30)
    declare(family, rnd, "pre", pre_at)
    if preselected:
        carts.cart_add(family=family, round_id=rnd.pk, kind="pre", unit_id=units[0].pk, now=pre_at)
    allocation.session_close(session_id=formal.pk, now=formal.ends_at)
    if applied:
        supplementary.supplementary_apply(
            family=family, round_id=rnd.pk, ctx=CTX, now=formal.ends_at
        )
    return rnd.pk, family.pk, family.main_applicant, [u.pk for u in units]


def _schedule(round_id: int) -> int:
    staff = User.objects.create(username="op-browser", is_staff=True)
    now = timezone.now()
    session = supplementary.supplementary_session_schedule(
        round_id=round_id, starts_at=now + timedelta(hours=1), actor=staff, now=now
    )
    return session.pk


def _preselect(session_id: int, family_id: int, unit_id: int) -> None:
    """Pre-select a unit before the supplementary session (the formal close voided the
    earlier pre-selection)."""
    from accounts.models import Family

    session = Session.objects.get(pk=session_id)
    family = Family.objects.get(pk=family_id)
    carts.cart_add(
        family=family, round_id=session.round_id, kind="pre", unit_id=unit_id, now=timezone.now()
    )


def _open_and_enter(session_id: int, family_id: int, unit_ids: list[int]) -> None:
    from accounts.models import Family

    now = timezone.now()
    Session.objects.filter(pk=session_id).update(
        starts_at=now - timedelta(seconds=1), ends_at=now + timedelta(seconds=119)
    )
    family = Family.objects.get(pk=family_id)
    session = Session.objects.get(pk=session_id)
    declare(family, session.round, "formal", now)
    carts.formal_enter(family=family, round_id=session.round_id, now=now)
    carts.cart_add(
        family=family, round_id=session.round_id, kind="formal", unit_id=unit_ids[1], now=now
    )


def _close(session_id: int) -> None:
    now = timezone.now()
    Session.objects.filter(pk=session_id).update(ends_at=now - timedelta(milliseconds=1))
    allocation.session_close(session_id=session_id, now=now)


def test_supplementary_family_result_page_before_during_and_after(page, orm, screenshot):
    rid, family_id, applicant, unit_ids = orm(_missed_and_applied)
    log_in(page, orm, applicant)

    page.goto(f"/h5/selection/{rid}/result/")
    expect(page.locator("#result-title")).to_have_text("未选定房源")
    # Said once: in the headline, not again under the session in the list below it.
    expect(page.get_by_text("您未在正选时间内进入选房，预选结果作废。")).to_have_count(1)
    expect(page.locator("#supplementary")).to_contain_text("待工作人员安排")
    screenshot("supplementary-result-before")
    # The round page says the application waits for staff, not only 「可查看选房结果」.
    page.goto(f"/h5/selection/{rid}/")
    expect(page.locator("#phase-tips")).to_have_text(
        "您的选房场次已结束，未选定房源。您已提交补选申请，补选场次待工作人员安排，"
        "安排后将以短信通知您。"
    )
    page.goto(f"/h5/selection/{rid}/result/")

    session_id = orm(_schedule, rid)
    page.reload()
    supplementary_card = page.locator("#supplementary")
    expect(supplementary_card).not_to_contain_text("待工作人员安排")
    expect(supplementary_card).not_to_contain_text("请于当天正选场次结束后登录查看")
    expect(page.locator("#sessions-title")).to_be_visible()
    sessions = page.locator("section[aria-labelledby=sessions-title]")
    expect(sessions.get_by_text("补选场次", exact=True)).to_be_visible()
    expect(supplementary_card).to_contain_text("补选场次")
    screenshot("supplementary-result-scheduled")

    page.goto(f"/h5/selection/{rid}/")
    expect(page.locator("#session-label")).to_have_text("我的补选场次")
    expect(page.locator("#session-time")).to_contain_text("补选场次")
    expect(page.get_by_role("button", name="开始选房")).to_be_enabled()  # back with the session
    screenshot("supplementary-round-scheduled")

    orm(_preselect, session_id, family_id, unit_ids[0])
    page.goto(f"/h5/selection/{rid}/pre/")
    expect(page.locator("#phasebar")).to_contain_text("您的补选时间")
    expect(page.locator("#pre-tips")).to_have_text(
        "请慎重选择意向排序。补选时间内未选定房源的，时间结束时系统将按同步后的意向排序自动选定。"
    )

    orm(_open_and_enter, session_id, family_id, unit_ids)
    page.goto(f"/h5/selection/{rid}/")
    expect(page.locator("#phase")).to_have_text("补选进行中")
    expect(page.locator("#phase-tips")).to_contain_text("您的补选时间剩余")
    screenshot("supplementary-round-running")
    page.goto(f"/h5/selection/{rid}/formal/")
    expect(page.locator("#countdown-label")).to_have_text("补选场次 · 补选进行中")
    expect(page.locator("#formal-tips")).to_contain_text("补选时间结束仍未确认的")
    expect(page.locator("#formal-tips")).to_be_visible()
    expect(page.locator(".anju-titlebar__title")).to_have_text("补选")
    # The pre-selected 1201 differs from the 补选 cart's 1202: syncing is offered, in 补选's word.
    expect(page.locator("#sync-banner-text")).to_have_text(
        "您有1套预选房源，与补选购物车不同；点击【确认同步】将以预选房源覆盖补选购物车。"
    )
    page.get_by_role("button", name="同步预选房源").tap()
    dialog = page.get_by_role("dialog", name="同步预选房源")
    expect(dialog).to_contain_text("以下补选页面新选择的房源将被预选房源覆盖：")
    expect(dialog).not_to_contain_text("正选")
    dialog.get_by_role("button", name="取消").tap()
    expect(dialog).to_have_count(0)
    screenshot("supplementary-formal-page")

    orm(_close, session_id)
    # The formal page hears the close on its socket and moves itself to the
    # result page, as the applicant sees it (a goto here would race that).
    page.wait_for_url(f"**/h5/selection/{rid}/result/")
    expect(page.locator("#result-title")).to_have_text("选房成功")
    expect(page.locator("#allocated-unit")).to_have_text("1栋 1202")
    expect(page.get_by_text("您购物车第1套 1栋 1202 已为您自动选定。")).to_have_count(1)
    expect(page.locator("#result-title + .weui-msg__desc")).to_contain_text("已为您自动选定")
    screenshot("supplementary-result-after")


def _missed_without_preselection_then_confirmed_in_supplementary():
    """A family that never pre-selected nor entered its formal session, then confirmed a unit
    in its 补选 (no explanation for that session: the formal session's is the only one)."""
    from accounts.models import Family

    rid, family_id, applicant, unit_ids = _missed_and_applied(preselected=False)
    session_id = _schedule(rid)
    _open_and_enter(session_id, family_id, unit_ids)
    allocation.selection_confirm(
        family=Family.objects.get(pk=family_id),
        round_id=rid,
        unit_id=unit_ids[1],
        idempotency_key="browser-confirm-1202",
        now=timezone.now(),
    )
    return rid, applicant


def test_a_unit_confirmed_in_supplementary_is_not_shown_with_the_formal_miss(page, orm, screenshot):
    rid, applicant = orm(_missed_without_preselection_then_confirmed_in_supplementary)
    log_in(page, orm, applicant)
    page.goto(f"/h5/selection/{rid}/result/")
    expect(page.locator("#result-title")).to_have_text("选房成功")
    expect(page.locator("#result-title + .weui-msg__desc")).to_have_text(
        re.compile(r"^请于\d{4}年\d{1,2}月\d{1,2}日 18:00前完成网上签约。$")
    )
    # The formal session keeps its own explanation, in the list, once; nothing was voided.
    sessions = page.locator("section[aria-labelledby=sessions-title]")
    expect(sessions.locator(".anju-explanation")).to_have_text(["您未在正选时间内进入选房。"])
    expect(page.get_by_text("预选结果作废")).to_have_count(0)
    screenshot("supplementary-confirmed-result")


def test_a_family_that_missed_its_session_is_told_how_to_apply(page, orm):
    """The round page of a family whose session ended without a unit, while 补选 may still
    be applied for: what to do and until when, not only 「可查看选房结果」."""
    rid, _, applicant, _ = orm(_missed_and_applied, applied=False, ended_ago=timedelta(seconds=20))
    log_in(page, orm, applicant)
    page.goto(f"/h5/selection/{rid}/")
    tips = page.locator("#phase-tips")
    expect(tips).to_contain_text("您的选房场次已结束，未选定房源。如需补选，请于")
    expect(tips).to_contain_text("前点击下方「补选申请」提交申请。")
    expect(page.get_by_role("button", name="补选申请")).to_be_visible()
    expect(page.get_by_role("button", name="开始选房")).to_be_hidden()
    # 补选申请 is the next step: the green button; the ended phase is not in success green.
    expect(page.get_by_role("button", name="补选申请")).to_have_class(PRIMARY)
    expect(page.get_by_role("button", name="我的选房结果")).not_to_have_class(PRIMARY)
    expect(page.locator("#phase")).to_have_text("选房场次已结束")
    expect(page.locator("#phase")).not_to_have_css("color", BRAND_GREEN)


def test_after_the_deadline_the_result_says_the_application_closed(page, orm, screenshot):
    """A family that did not apply before its day's deadline is told so, not left with a
    result page whose 补选 part is gone without a word."""
    rid, _, applicant, _ = orm(_missed_and_applied, applied=False, ended_ago=timedelta(minutes=10))
    log_in(page, orm, applicant)
    page.goto(f"/h5/selection/{rid}/result/")
    section = page.locator("#supplementary")
    expect(section).to_contain_text(re.compile(r"补选申请\s*未申请（已于.+截止）"))
    expect(page.get_by_role("button", name="补选申请")).to_have_count(0)
    screenshot("result-supplementary-closed")
    page.goto(f"/h5/selection/{rid}/")
    expect(page.locator("#phase-tips")).to_have_text(
        re.compile(r"^您的选房场次已结束，未选定房源。补选申请已于.+截止。$")
    )
