"""A family that missed its formal session and applied for 补选, on its phone: its result page
says 预选结果作废, then shows its supplementary session as soon as staff scheduled it (labelled
补选, never 正选), the round page says 补选进行中 while it runs, and after the close its result
page shows the unit with the auto-assign explanation."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Layout, User
from selection import allocation, carts, supplementary
from selection.models import Round, Seat, Session, Unit
from tests.browser.test_login import log_in
from tests.browser.test_selection_flow import CTX
from tests.factories import FamilyFactory
from tests.worlds import declare

pytestmark = pytest.mark.browser


def _missed_and_applied():
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
        starts_at=now - timedelta(minutes=12),
        ends_at=now - timedelta(minutes=10),
    )
    Seat.objects.create(session=formal, family=family)
    pre_at = now - timedelta(minutes=30)
    declare(family, rnd, "pre", pre_at)
    carts.cart_add(family=family, round_id=rnd.pk, kind="pre", unit_id=units[0].pk, now=pre_at)
    allocation.session_close(session_id=formal.pk, now=formal.ends_at)
    supplementary.supplementary_apply(family=family, round_id=rnd.pk, ctx=CTX, now=formal.ends_at)
    return rnd.pk, family.pk, family.main_applicant, [u.pk for u in units]


def _schedule(round_id: int) -> int:
    staff = User.objects.create(username="op-browser", is_staff=True)
    now = timezone.now()
    session = supplementary.supplementary_session_schedule(
        round_id=round_id, starts_at=now + timedelta(hours=1), actor=staff, now=now
    )
    return session.pk


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
    screenshot("supplementary-round-scheduled")

    orm(_open_and_enter, session_id, family_id, unit_ids)
    page.reload()
    expect(page.locator("#phase")).to_have_text("补选进行中")
    expect(page.locator("#phase-tips")).to_contain_text("您的补选时间剩余")
    screenshot("supplementary-round-running")
    page.goto(f"/h5/selection/{rid}/formal/")
    expect(page.locator("#countdown-label")).to_have_text("补选场次 · 补选进行中")
    expect(page.locator("#formal-tips")).to_contain_text("补选时间结束仍未确认的")
    expect(page.locator("#formal-tips")).to_be_visible()
    expect(page.locator(".anju-titlebar__title")).to_have_text("补选")
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
