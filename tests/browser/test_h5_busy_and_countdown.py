"""The selection pages on a phone when the server is busy or slow at a boundary.

- A 503 `busy` answer (a row lock not taken within LOCK_TIMEOUT_MS, core/locking.py) is sent
  again by the page: 「系统繁忙，正在重试…」 shows while it waits, the confirmation then
  succeeds. The lock is real: a second database connection holds the family's row while the
  family confirms, and lets it go once the page says it is retrying. After the last retry the
  page shows the refusal's Chinese message as before (that case answers busy through
  `page.route`, because holding a lock for four lock timeouts would make a slow test).
- At 00:00 the formal declaration page says 「正在开启，请稍候…」 until the server's state says
  the window is open, then opens 【去选房】 by itself. The server opens a window by its clock
  as soon as the window starts, so the page's read of the state at 00:00 is held back with
  `page.route` to see the wait at all; it is let through, and the page moves on.
- At 00:00 the formal page says 「正在结束，请稍候…」 until the server has closed the session
  (no clock runs beside the test server, so the wait is real): it neither shows 00:00 nor
  moves to a result page that does not know the outcome; once the test closes the session
  the page moves itself to the result, auto-assigned. The round page's 「剩余 mm:ss」 says the
  same at 00:00 while its read of the state is held back.
- In a supplementary session the confirm button, its dialog and the tips say 确认补选.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest
from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Family, Layout
from selection import allocation, carts
from selection.models import Allocation, Round, Seat, Session, Unit
from tests.browser.test_login import log_in
from tests.browser.test_supplementary_result import _missed_and_applied, _open_and_enter, _schedule
from tests.factories import FamilyFactory
from tests.worlds import declare

pytestmark = pytest.mark.browser

BUSY = "系统繁忙，正在重试…"
BUSY_BODY = {"error": {"code": "busy", "message": "系统繁忙，请稍后重试", "fields": {}}}


def _formal_world(*, lasts: float, opens_in: float = -1.0):
    """A round with two one-bed units; the family's session runs from `opens_in` seconds from
    now for `lasts` seconds. When it is already open the family has declared, entered and put
    1-1201 then 1-1202 in its formal cart."""
    now = timezone.now()
    rnd = Round.objects.create(
        name="2026年第四批公共租赁住房网上选房",
        preselect_starts_at=now - timedelta(hours=1),
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
        for number in ("1201", "1202")
    ]
    family = FamilyFactory(
        rank=3, eligible_layouts=[Layout.ONE_BED], main_applicant__real_name="陈安居"
    )
    starts = now + timedelta(seconds=opens_in)
    session = Session.objects.create(
        round=rnd, order=1, starts_at=starts, ends_at=starts + timedelta(seconds=lasts)
    )
    Seat.objects.create(session=session, family=family)
    if opens_in <= 0:
        declare(family, rnd, "formal", now)
        carts.formal_enter(family=family, round_id=rnd.pk, now=now)
        for unit in units:
            carts.cart_add(family=family, round_id=rnd.pk, kind="formal", unit_id=unit.pk, now=now)
    return rnd.pk, session.pk, family.pk, family.main_applicant


def _allocation(family_id: int) -> tuple[str, str] | None:
    found = Allocation.objects.filter(family_id=family_id).select_related("unit").first()
    return (found.unit.label, found.how) if found else None


def _close(session_id: int) -> None:
    allocation.session_close(session_id=session_id, now=timezone.now())


def _hold_family_row(family_id: int) -> psycopg.Connection:
    """A second connection that holds the family's row lock (as a slow request would)."""
    db = connection.settings_dict
    holder = psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"] or None,
        password=db["PASSWORD"] or None,
        host=db["HOST"] or None,
        port=db["PORT"] or None,
    )
    table = Family._meta.db_table
    holder.execute(f'SELECT 1 FROM "{table}" WHERE id = %s FOR UPDATE', [family_id])  # noqa: S608
    return holder


def _pick_and_confirm(page, name: str, word: str = "正选") -> None:
    page.get_by_label(f"选定 {name}").tap()
    confirm = page.locator("#confirm-btn")
    expect(confirm).to_have_text(f"确认{word} {name}")
    confirm.tap()
    asking = page.get_by_role("dialog", name=f"确认{word}")
    expect(asking).to_contain_text(f"确认选定 {name} 吗？")
    asking.get_by_role("button", name="确认选定").tap()
    expect(asking).to_have_count(0)


def test_a_busy_confirmation_is_retried_and_succeeds(page, live_url, orm, screenshot):
    rid, _, family_id, applicant = orm(_formal_world, lasts=120)
    log_in(page, orm, applicant)
    page.goto(f"/h5/selection/{rid}/formal/")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^剩余 0[12]:\d\d$"))
    answers: list[int] = []
    page.on(
        "response",
        lambda response: answers.append(response.status) if "/confirm/" in response.url else None,
    )

    holder = _hold_family_row(family_id)
    try:
        # The first answer comes after the lock timeout (3 s): 503 busy; the page retries.
        with page.expect_response(lambda response: "/confirm/" in response.url) as first:
            _pick_and_confirm(page, "1栋 1201")
        assert first.value.status == 503
        assert first.value.headers.get("retry-after") == "1"
        busy = page.locator("#anju-busy .weui-toast")
        expect(busy).to_be_visible()
        expect(busy).to_have_text(BUSY)
        expect(page.locator("#confirm-btn")).to_have_text("正在提交…")
        assert orm(_allocation, family_id) is None  # nothing was written on busy
        screenshot("busy-retrying")
    finally:
        holder.rollback()  # the slow request ends: the lock is free
        holder.close()

    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/result/", timeout=15_000)
    expect(page.locator("#result-title")).to_have_text("选房成功")
    expect(page.locator("#allocated-unit")).to_have_text("1栋 1201")
    expect(page.locator("#anju-busy .weui-toast")).to_have_count(
        0
    )  # a new page: no notice left over
    assert orm(_allocation, family_id) == ("1-1201", "confirmed")
    assert answers[-1] == 201 and set(answers[:-1]) == {503}
    screenshot("busy-retried-result")


def test_busy_after_the_last_retry_shows_the_refusal(page, live_url, orm, screenshot):
    rid, _, family_id, applicant = orm(_formal_world, lasts=120)
    log_in(page, orm, applicant)
    page.goto(f"/h5/selection/{rid}/formal/")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^剩余 0[12]:\d\d$"))
    sent: list[str] = []

    def busy(route):
        sent.append(route.request.post_data or "")
        route.fulfill(
            status=503,
            headers={"Retry-After": "1", "Content-Type": "application/json"},
            body=json.dumps(BUSY_BODY, ensure_ascii=False),
        )

    page.route("**/confirm/", busy)
    _pick_and_confirm(page, "1栋 1202")
    expect(page.locator("#anju-busy .weui-toast")).to_be_visible()
    refusal = page.get_by_role("dialog").filter(has_text="系统繁忙，请稍后重试")
    expect(refusal).to_be_visible(timeout=15_000)
    expect(page.locator("#anju-busy .weui-toast")).to_be_hidden()
    screenshot("busy-given-up")
    # The first request and three retries, each the same request (one idempotency key).
    assert len(sent) == 4
    assert len({json.loads(body)["idempotency_key"] for body in sent}) == 1
    refusal.get_by_role("button", name="知道了").tap()
    expect(page.locator("#confirm-btn")).to_have_text("确认正选 1栋 1202")
    expect(page.locator("#confirm-btn")).to_be_enabled()
    assert orm(_allocation, family_id) is None


def test_declaration_says_opening_at_zero_then_opens(page, live_url, orm, screenshot):
    rid, _, _, applicant = orm(_formal_world, lasts=120, opens_in=14)
    log_in(page, orm, applicant)
    reads: list[int] = []
    held = []
    released = []

    def state(route):
        reads.append(1)
        if len(reads) == 1 or released:
            route.continue_()  # the page's first read (not open yet), or after the release
        else:
            held.append(route)  # the read at 00:00: held back until the test lets it go

    page.route(re.compile(r"/api/v1/selection/\d+/state/$"), state)
    page.goto(f"/h5/selection/{rid}/declaration/formal/")
    status = page.locator("#window-status")
    countdown = page.locator("#open-countdown")
    expect(status).to_contain_text("届时本页将自动开放【去选房】")
    expect(countdown).to_have_text(re.compile(r"^距正选开始 00:(0\d|1[0-4])$"))
    page.get_by_label("上述条款，我已阅知").tap()
    go = page.get_by_role("button", name="去选房")
    expect(go).to_be_disabled()
    screenshot("declaration-countdown")
    # 【去选房】 stays where it is through the opening (a finger is on it at 00:00).
    at = go.bounding_box()

    # At 00:00 the page says it is opening and reads the state (held back here).
    with page.expect_request(re.compile(r"/state/$"), timeout=25_000):
        expect(status).to_have_text("正在开启，请稍候…", timeout=25_000)
    expect(countdown).to_be_hidden()
    expect(go).to_be_disabled()
    expect(status).to_have_text("正在开启，请稍候…")
    assert go.bounding_box() == at
    screenshot("declaration-opening")

    released.append(True)
    for route in held:
        route.continue_()
    expect(go).to_be_enabled()
    expect(status).to_have_text("正选已开始，请勾选声明后点击【去选房】。")
    expect(countdown).to_be_hidden()
    assert go.bounding_box() == at
    screenshot("declaration-open")
    go.tap()
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/formal/")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^剩余 0[12]:\d\d$"))


def test_formal_page_says_closing_at_zero_until_the_close(page, live_url, orm, screenshot):
    rid, session_id, family_id, applicant = orm(_formal_world, lasts=12)
    log_in(page, orm, applicant)
    page.goto(f"/h5/selection/{rid}/formal/")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^剩余 00:\d\d$"))

    value = page.locator("#countdown")
    expect(value).to_have_text("正在结束，请稍候…", timeout=20_000)
    expect(page.locator("#countdown-label")).to_have_text("正选时间已结束")
    expect(page.locator("#last-call")).to_contain_text("完成后本页将自动显示选房结果")
    expect(page.locator("#confirm-btn")).to_be_disabled()
    expect(page.get_by_role("button", name="主动放弃")).to_be_disabled()
    expect(page.get_by_role("button", name="删除 1栋 1201")).to_be_disabled()
    expect(page.get_by_role("button", name="同步预选房源")).to_be_disabled()
    # The page reads the result while it waits: the session is not closed, so it stays.
    with page.expect_response(re.compile(r"/api/v1/selection/\d+/result/$")):
        pass
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/formal/")
    expect(value).to_have_text("正在结束，请稍候…")
    assert orm(_allocation, family_id) is None
    screenshot("formal-closing")

    orm(_close, session_id)
    page.wait_for_url(f"**/h5/selection/{rid}/result/")
    expect(page.locator("#result-title")).to_have_text("选房成功")
    expect(page.locator("#allocated-unit")).to_have_text("1栋 1201")
    assert orm(_allocation, family_id) == ("1-1201", "auto")


def test_supplementary_confirm_says_bu_xuan(page, live_url, orm, screenshot):
    rid, family_id, applicant, unit_ids = orm(_missed_and_applied)
    session_id = orm(_schedule, rid)
    orm(_open_and_enter, session_id, family_id, unit_ids)
    log_in(page, orm, applicant)
    page.goto(f"/h5/selection/{rid}/formal/")
    expect(page.locator(".anju-titlebar__title")).to_have_text("补选")
    confirm = page.locator("#confirm-btn")
    expect(confirm).to_have_text("确认补选")
    expect(page.locator("#formal-tips")).to_contain_text("【确认补选】")
    expect(page.locator("#last-call")).to_contain_text("补选时间仅剩最后30秒")
    for node in ("#confirm-btn", "#formal-tips", "#last-call", "#countdown-label"):
        expect(page.locator(node)).not_to_contain_text("正选")
    # A tap on the unit's card picks it, not only one on its radio.
    page.locator("#cart .anju-cart__unit", has_text="1栋 1202").tap()
    expect(page.get_by_label("选定 1栋 1202")).to_be_checked()
    expect(confirm).to_have_text("确认补选 1栋 1202")
    screenshot("supplementary-confirm-button")
    confirm.tap()
    asking = page.get_by_role("dialog", name="确认补选")
    expect(asking).to_contain_text("提交后选房结果不可更改，确认选定 1栋 1202 吗？")
    expect(asking).not_to_contain_text("正选")
    screenshot("supplementary-confirm-dialog")
    asking.get_by_role("button", name="确认选定").tap()
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/result/")
    expect(page.locator("#allocated-unit")).to_have_text("1栋 1202")


def test_round_page_says_closing_at_zero_then_moves_on(page, live_url, orm):
    """The round page's 「剩余 mm:ss」 becomes 「正在结束，请稍候…」 at 00:00, while its read
    of the state there is held back (the server's phase moves at once by its clock)."""
    rid, _, _, applicant = orm(_formal_world, lasts=10)
    log_in(page, orm, applicant)
    held = []
    released = []

    def state(route):
        if released:
            route.continue_()
        else:
            held.append(route)  # the read at 00:00: held back until the test lets it go

    page.goto(f"/h5/selection/{rid}/")
    tips = page.locator("#phase-tips")
    expect(tips).to_contain_text("您的正选时间剩余")  # the page has read the state once
    page.route(re.compile(r"/api/v1/selection/\d+/state/$"), state)
    with page.expect_request(re.compile(r"/state/$"), timeout=20_000):
        expect(tips).to_have_text("正在结束，请稍候…", timeout=20_000)
    expect(tips).not_to_contain_text("00:00")
    released.append(True)
    for route in held:
        route.continue_()
    # Ended without a unit, within the 补选 application window: what to do next.
    expect(tips).to_contain_text("您的选房场次已结束，未选定房源。如需补选，请于")
