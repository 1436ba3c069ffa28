"""网上选房 on a phone, end to end, against the live server's own clock.

The family logs in during pre-selection, reads and ticks the declaration, pre-selects three
units and reorders them; its session is then moved to open now (in the database, as the
clock would find it); it ticks the formal declaration, enters the formal page, adds a unit
there, syncs (the dialog warns that unit will be overwritten), confirms one unit after the
second asking and sees it on its result page and on the public broadcast board.

The phone's own clock is set ten minutes slow: the countdown must still show the window's
real remaining time, because the pages count from the server's time only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Applicant, Family, Layout
from core.context import RequestContext
from selection import allocation, carts
from selection.models import Allocation, CartItem, GiveUp, Round, Seat, Session, Unit
from selection.phases import family_state
from tests.browser.test_login import log_in
from tests.factories import FamilyFactory

pytestmark = pytest.mark.browser

CTX = RequestContext(ip="10.0.0.9", user_agent="pytest")
# The pages' brand green (--weui-BRAND in app.css), the colour of a running phase or a chosen
# unit, and the class of the button that is the family's next step.
BRAND_GREEN = "rgb(1, 137, 66)"
PRIMARY = re.compile(r"\bweui-btn_primary\b")
# (building, number, layout, orientation)
UNITS = [
    ("1", "1201", Layout.ONE_BED, "S"),
    ("1", "1202", Layout.ONE_BED, "N"),
    ("1", "1203", Layout.ONE_BED, "S"),
    ("1", "1204", Layout.ONE_BED, "E"),
    ("1", "1205", Layout.ONE_BED, "N"),
    ("1", "1206", Layout.ONE_BED, "S"),
    ("2", "801", Layout.TWO_BED, "S"),
]
PHONE_CLOCK_SLOW = timedelta(minutes=10)


@dataclass(frozen=True)
class Setup:
    round_id: int
    session_id: int
    family_id: int
    rival_id: int  # ranked after the family, in the same session
    applicant: Applicant
    units: dict[str, int]  # "1-1201" → id


def _confirm(family, round_id: int, unit_id: int, at) -> None:
    """`family` confirms `unit_id` at `at` inside its window, through the services the API
    calls: the formal declaration, entering, its formal cart, the confirmation."""
    state = family_state(family=family, round_id=round_id, now=at)
    _, version = carts.declaration_current(state=state, phase="formal")
    carts.declaration_acknowledge(
        family=family, round_id=round_id, phase="formal", version=version, ctx=CTX, now=at
    )
    carts.formal_enter(family=family, round_id=round_id, now=at)
    carts.cart_add(family=family, round_id=round_id, kind="formal", unit_id=unit_id, now=at)
    allocation.selection_confirm(
        family=family, round_id=round_id, unit_id=unit_id, idempotency_key=f"k{unit_id:08d}", now=at
    )


def _confirm_in_own_session(family, rnd: Round, session: Session, unit: Unit) -> None:
    """A family ranked earlier took `unit` inside its own (past) session."""
    _confirm(family, rnd.pk, unit.pk, session.starts_at + timedelta(seconds=10))
    allocation.session_close(session_id=session.pk, now=session.ends_at)


def _rival_takes(setup: Setup, label: str) -> None:
    """The other family of the session confirms `label` now."""
    rival = Family.objects.get(pk=setup.rival_id)
    _confirm(rival, setup.round_id, setup.units[label], timezone.now())


def _round_in_preselection() -> Setup:
    """Pre-selection open since an hour ago; the family's session starts in an hour."""
    now = timezone.now()
    rnd = Round.objects.create(
        name="2026年第一批公共租赁住房网上选房",
        preselect_starts_at=now - timedelta(hours=1),
        cart_limit=5,
        window_seconds=120,
    )
    units = {
        f"{building}-{number}": Unit.objects.create(
            round=rnd,
            building=building,
            number=number,
            floor=int(number[:-2]),
            layout=layout,
            orientation=orientation,
            area=Decimal("45.20") if layout == Layout.ONE_BED else Decimal("64.80"),
            monthly_rent=Decimal("1469") if layout == Layout.ONE_BED else Decimal("2106"),
        )
        for building, number, layout, orientation in UNITS
    }
    earlier = FamilyFactory(rank=1, eligible_layouts=[Layout.ONE_BED])
    family = FamilyFactory(
        rank=2, eligible_layouts=[Layout.ONE_BED], main_applicant__real_name="陈安居"
    )
    first = Session.objects.create(
        round=rnd,
        order=1,
        starts_at=now - timedelta(minutes=30),
        ends_at=now - timedelta(minutes=28),
    )
    mine = Session.objects.create(
        round=rnd,
        order=2,
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=1, seconds=rnd.window_seconds),
    )
    rival = FamilyFactory(rank=3, eligible_layouts=[Layout.ONE_BED])
    Seat.objects.create(session=first, family=earlier)
    Seat.objects.create(session=mine, family=family)
    Seat.objects.create(session=mine, family=rival)
    _confirm_in_own_session(earlier, rnd, first, units["1-1206"])
    return Setup(
        round_id=rnd.pk,
        session_id=mine.pk,
        family_id=family.pk,
        rival_id=rival.pk,
        applicant=family.main_applicant,
        units={label: unit.pk for label, unit in units.items()},
    )


def _open_session_now(session_id: int) -> None:
    """The family's session starts now (its window is the round's two minutes)."""
    now = timezone.now()
    Session.objects.filter(pk=session_id).update(
        starts_at=now - timedelta(seconds=1), ends_at=now + timedelta(seconds=119)
    )


def _pre_cart(family_id: int) -> list[str]:
    return [
        item.unit.label
        for item in CartItem.objects.filter(family_id=family_id, kind="pre")
        .select_related("unit")
        .order_by("position")
    ]


def _allocation(family_id: int) -> tuple[str, str] | None:
    found = Allocation.objects.filter(family_id=family_id).select_related("unit").first()
    return (found.unit.label, found.how) if found else None


def cart_names(page):
    return page.locator("#cart li .anju-unit__title > span:first-child")


def test_family_preselects_then_confirms_a_unit_in_its_window(page, live_url, orm, screenshot):
    setup = orm(_round_in_preselection)
    rid = setup.round_id
    page.clock.set_system_time(timezone.now() - PHONE_CLOCK_SLOW)

    log_in(page, orm, setup.applicant)
    expect(page.get_by_role("link", name=re.compile("^房源信息播报"))).to_have_attribute(
        "href", f"/h5/broadcast/{rid}/"
    )

    # 网上选房 → the only round: pre-selection is open, the session is in an hour.
    page.get_by_role("link", name=re.compile("^网上选房")).tap()
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/")
    expect(page.locator("#phase")).to_have_text("预选进行中")
    expect(page.locator("#session-time")).to_contain_text("第2场")
    screenshot("selection-round")
    page.get_by_role("button", name="开始选房").tap()

    # The declaration: 【开始预选】 only once 「上述条款，我已阅知」 is ticked.
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/declaration/pre/")
    expect(page.get_by_role("heading", name="网上选房声明")).to_be_visible()
    start = page.get_by_role("button", name="开始预选")
    expect(start).to_be_disabled()
    screenshot("selection-declaration")
    page.get_by_label("上述条款，我已阅知").tap()
    expect(start).to_be_enabled()
    start.tap()

    # Pre-selection: the list hides what the family cannot choose until asked to show it:
    # units taken (「只看可选」) and layouts outside the family's (户型 「我家可选」).
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/pre/")
    expect(page.locator("#cart-count")).to_have_text("0/5")
    expect(page.get_by_text("购物车为空")).to_be_visible()
    expect(page.locator("#units li")).to_have_count(5)
    page.get_by_label("只看可选").tap()
    expect(page.locator("#units li")).to_have_count(6)
    expect(page.get_by_role("button", name="1栋 1206 已被选")).to_be_disabled()
    page.get_by_role("button", name="显示全部户型").tap()
    expect(page.locator("#units li")).to_have_count(len(UNITS))
    expect(page.get_by_role("button", name="2栋 801 户型不符")).to_be_disabled()

    page.get_by_label("朝向").select_option(label="北")
    expect(page.locator("#units li")).to_have_count(2)
    page.get_by_label("朝向").select_option(label="全部")
    expect(page.locator("#units li")).to_have_count(len(UNITS))

    for count, number in enumerate(["1201", "1202", "1203"], start=1):
        page.get_by_role("button", name=f"选择 1栋 {number}").tap()
        expect(page.locator("#cart-count")).to_have_text(f"{count}/5")
    expect(page.get_by_role("button", name="1栋 1201 已加入")).to_be_disabled()
    expect(cart_names(page)).to_have_text(["1栋 1201", "1栋 1202", "1栋 1203"])

    page.get_by_role("button", name="置顶 1栋 1203").tap()
    expect(cart_names(page)).to_have_text(["1栋 1203", "1栋 1201", "1栋 1202"])
    page.get_by_role("button", name="下移 1栋 1203").tap()
    expect(cart_names(page)).to_have_text(["1栋 1201", "1栋 1203", "1栋 1202"])
    expect(page.get_by_role("button", name="上移 1栋 1201")).to_be_disabled()
    expect(page.get_by_role("button", name="下移 1栋 1202")).to_be_disabled()
    assert orm(_pre_cart, setup.family_id) == ["1-1201", "1-1203", "1-1202"]
    expect(page.locator("#anju-toast .weui-toast")).to_be_hidden()
    screenshot("selection-pre")

    # The session opens. The round page says so; 开始选房 leads to the formal declaration.
    orm(_open_session_now, setup.session_id)
    page.goto(f"/h5/selection/{rid}/")
    expect(page.locator("#phase")).to_have_text("正选进行中")
    page.get_by_role("button", name="开始选房").tap()
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/declaration/formal/")
    expect(page.get_by_role("heading", name="正式选房声明")).to_be_visible()
    go = page.get_by_role("button", name="去选房")
    expect(go).to_be_disabled()
    page.get_by_label("上述条款，我已阅知").tap()
    go.tap()

    # Formal selection: entered; the countdown is the server's, not the slow phone's.
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/formal/")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^剩余 0[01]:\d\d$"))
    expect(page.locator("#sync-banner")).to_contain_text("您有3套预选房源")
    page.get_by_role("button", name="选择 1栋 1204").tap()
    expect(page.locator("#cart-count")).to_have_text("1/5")

    page.get_by_role("button", name="同步预选房源").tap()
    dialog = page.get_by_role("dialog", name="同步预选房源")
    expect(dialog).to_contain_text("以下正选页面新选择的房源将被预选房源覆盖：")
    expect(dialog.locator(".anju-dialog__list_removed li")).to_have_text(["1栋 1204"])
    expect(dialog.locator("ol li")).to_have_text(["1栋 1201", "1栋 1203", "1栋 1202"])
    screenshot("selection-sync-dialog")
    dialog.get_by_role("button", name="确认同步").tap()
    expect(dialog).to_have_count(0)
    expect(cart_names(page)).to_have_text(["1栋 1201", "1栋 1203", "1栋 1202"])
    expect(page.locator("#cart-count")).to_have_text("3/5")

    # 确认正选 asks a second time. While the family reads the question, the other family of
    # the session takes that unit: the family is told, and the unit is marked 已被选.
    confirm = page.locator("#confirm-btn")
    expect(confirm).to_be_disabled()
    page.get_by_label("选定 1栋 1201").tap()
    expect(confirm).to_have_text("确认正选 1栋 1201")
    confirm.tap()
    asking = page.get_by_role("dialog", name="确认正选")
    expect(asking).to_contain_text("提交后选房结果不可更改，确认选定 1栋 1201 吗？")
    orm(_rival_takes, setup, "1-1201")
    asking.get_by_role("button", name="确认选定").tap()
    expect(asking).to_have_count(0)
    refusal = page.get_by_role("dialog").filter(has_text="房源1栋 1201已被其他家庭选定")
    expect(refusal).to_be_visible()
    refusal.get_by_role("button", name="知道了").tap()
    taken = page.locator("#cart li").filter(has_text="1栋 1201")
    expect(taken.locator(".anju-tag_taken")).to_have_text("已被选")
    expect(page.get_by_label("选定 1栋 1201")).to_be_disabled()
    expect(confirm).to_be_disabled()

    page.get_by_label("选定 1栋 1203").tap()
    expect(confirm).to_have_text("确认正选 1栋 1203")
    expect(page.locator("#anju-toast .weui-toast")).to_be_hidden()
    screenshot("selection-formal")
    confirm.tap()
    asking = page.get_by_role("dialog", name="确认正选")
    expect(asking).to_contain_text("提交后选房结果不可更改，确认选定 1栋 1203 吗？")
    asking.get_by_role("button", name="确认选定").tap()

    # The result.
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/result/")
    expect(page.locator("#result-title")).to_have_text("选房成功")
    # The lease's deadline, not 「请尽快」: 18:00 on the round's 7th day after the allocation.
    allocated_at = orm(lambda: Allocation.objects.get(family_id=setup.family_id).at)
    deadline = timezone.localtime(allocated_at) + timedelta(days=7)
    expect(page.locator("#result-title + .weui-msg__desc")).to_have_text(
        f"请于{deadline.year}年{deadline.month}月{deadline.day}日 18:00前完成网上签约。"
    )
    expect(page.locator("#allocated-unit")).to_have_text("1栋 1203")
    expect(page.locator("#allocation-how")).to_have_text("家庭确认正选")
    expect(page.get_by_role("button", name="去签约")).to_have_attribute("href", "/h5/lease/")
    assert orm(_allocation, setup.family_id) == ("1-1203", "confirmed")
    # The receipt: the running sequencer signs the entry into the log, the card fills in.
    code = orm(_code, setup.family_id)
    expect(page.locator("#allocation-code")).to_have_text(code)
    receipt = page.locator("#receipt")
    expect(receipt).to_contain_text("选房记录凭证")
    expect(page.locator("#receipt-index")).to_have_text(
        re.compile(r"^第\d+条（共\d+条）$"), timeout=10_000
    )
    # the log's latest signature, which moves on: not read as the family's own record's
    expect(receipt.locator("dt")).to_have_text(["日志序号", "最近签名时间"])
    expect(receipt).not_to_contain_text("哈希")  # no jargon; the 核验码 once, on the card above
    expect(page.get_by_text(code, exact=True)).to_have_count(1)
    expect(page.locator("#receipt-download")).to_have_text("下载凭证文件")
    screenshot("selection-result")

    # The public board shows the three takes, the family's the latest.
    page.get_by_role("button", name="房源信息播报").tap()
    expect(page).to_have_url(f"{live_url}/h5/broadcast/{rid}/")
    expect(page.locator("#feed li")).to_have_count(3)
    expect(page.locator("#feed li").first).to_contain_text("1栋 1203")
    expect(page.get_by_label("1栋 1203 一房一厅 已选")).to_have_attribute("data-status", "taken")
    screenshot("selection-broadcast")

    # Back on the round page the next step is the result (where 去签约 is), in green.
    page.goto(f"/h5/selection/{rid}/")
    expect(page.locator("#phase")).to_have_text("已选定房源")
    expect(page.locator("#phase")).to_have_css("color", BRAND_GREEN)
    expect(page.get_by_role("button", name="我的选房结果")).to_have_class(PRIMARY)
    expect(page.get_by_role("button", name="开始选房")).to_be_hidden()


def _code(family_id: int) -> str:
    return (
        Allocation.objects.select_related("ledger_entry").get(family_id=family_id).ledger_entry.code
    )


def _gave_up(family_id: int) -> bool:
    return GiveUp.objects.filter(family_id=family_id).exists()


def test_family_gives_up_after_two_askings(page, live_url, orm):
    setup = orm(_round_in_preselection)
    rid = setup.round_id
    orm(_open_session_now, setup.session_id)
    log_in(page, orm, setup.applicant)
    # A round the family has no seat in is no round at all.
    assert page.goto(f"/h5/selection/{rid + 1000}/formal/").status == 404

    page.goto(f"/h5/selection/{rid}/formal/")  # not declared yet: the declaration first
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/declaration/formal/")
    page.get_by_label("上述条款，我已阅知").tap()
    page.get_by_role("button", name="去选房").tap()
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/formal/")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^剩余 0[01]:\d\d$"))

    # The first asking can be declined; nothing happens.
    page.get_by_role("button", name="主动放弃").tap()
    first = page.get_by_role("dialog", name="主动放弃")
    expect(first).to_contain_text("确定要主动放弃本次选房吗？")
    first.get_by_role("button", name="取消").tap()
    expect(first).to_have_count(0)
    assert not orm(_gave_up, setup.family_id)

    page.get_by_role("button", name="主动放弃").tap()
    page.get_by_role("dialog", name="主动放弃").get_by_role("button", name="放弃选房").tap()
    second = page.get_by_role("dialog", name="再次确认")
    expect(second).to_contain_text("放弃后不能申请补选，确定放弃？")
    second.get_by_role("button", name="确定放弃").tap()

    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/result/")
    expect(page.locator("#result-title")).to_have_text("您已主动放弃本次选房")
    expect(page.get_by_role("button", name="补选申请")).to_have_count(0)
    expect(page.get_by_role("button", name="去签约")).to_have_count(0)
    assert orm(_gave_up, setup.family_id)

    # The round page says so without the green of a running phase or a chosen unit, and
    # offers nothing as the next step.
    page.goto(f"/h5/selection/{rid}/")
    expect(page.locator("#phase")).to_have_text("已主动放弃")
    expect(page.locator("#phase")).not_to_have_css("color", BRAND_GREEN)
    expect(page.locator(".anju-btn-stack .weui-btn_primary:visible")).to_have_count(0)


def test_visitor_watches_the_broadcast_without_logging_in(page, live_url, orm):
    setup = orm(_round_in_preselection)
    orm(_open_session_now, setup.session_id)

    page.goto(f"/h5/broadcast/{setup.round_id}/")
    expect(page.get_by_role("heading", name="2026年第一批公共租赁住房网上选房")).to_be_visible()
    expect(page.locator(".anju-stat_taken .anju-stat__value")).to_have_text("1")
    expect(page.locator("#feed li")).to_have_count(1)
    expect(page.get_by_label("1栋 1201 一房一厅 可选")).to_have_attribute(
        "data-status", "available"
    )

    orm(_rival_takes, setup, "1-1201")
    page.get_by_role("button", name="刷新").tap()
    expect(page.locator(".anju-stat_taken .anju-stat__value")).to_have_text("2")
    expect(page.locator("#feed li").first).to_contain_text("1栋 1201")
    expect(page.get_by_label("1栋 1201 一房一厅 已选")).to_have_attribute("data-status", "taken")
    # No family data on the public board.
    expect(page.locator("body")).not_to_contain_text(setup.applicant.real_name)

    # The selection pages themselves are the family's: a visitor is sent to log in, and
    # comes back to the page afterwards.
    page.goto(f"/h5/selection/{setup.round_id}/pre/")
    expect(page).to_have_url(
        f"{live_url}/h5/login/?next=%2Fh5%2Fselection%2F{setup.round_id}%2Fpre%2F"
    )
