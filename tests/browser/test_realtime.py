"""Real time on the phone and on the public board (docs/REALTIME.md), end to end: daphne with
Redis as its channel layer and the event relay in its own process (tests/browser/conftest.py).

Two families A and B of one open session both want unit X. B has the formal page open, A
confirms X through the service: B's page marks X 已被选 and disables it without a reload,
the public board (another browser) shows X taken and its counts move. The server's
last-30-seconds call shows on B's page; the close of the session (B auto-assigned its
second unit) takes B to its result. With no socket the page says so and polls; a frame the
relay sent but the page never got is fetched over HTTP.

Every wait is on what the page shows or on a socket frame, never on time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Applicant, Family, Layout
from core.context import RequestContext
from selection import allocation, carts
from selection.models import Round, Seat, Session, Unit
from selection.phases import family_state
from selection.translog import sequence_pending
from tests.browser.conftest import PHONE, RESULTS
from tests.browser.test_login import log_in
from tests.factories import FamilyFactory

pytestmark = pytest.mark.browser

CTX = RequestContext(ip="10.0.0.8", user_agent="pytest")
UNITS = [  # (building, number, layout)
    ("1", "1201", Layout.ONE_BED),
    ("1", "1202", Layout.ONE_BED),
    ("1", "1203", Layout.ONE_BED),
    ("2", "801", Layout.ONE_BED),
]
X, Y = "1-1201", "1-1202"
PHONE_CLOCK_SLOW = timedelta(minutes=10)


@dataclass(frozen=True)
class Setup:
    round_id: int
    session_id: int
    a_id: int
    b: Applicant
    units: dict[str, int]  # "1-1201" → id


def _enter_with_cart(family: Family, round_id: int, unit_ids: list[int]) -> None:
    """What the formal page does through the API: the declaration, entering, the cart."""
    now = timezone.now()
    state = family_state(family=family, round_id=round_id, now=now)
    _, version = carts.declaration_current(state=state, phase="formal")
    carts.declaration_acknowledge(
        family=family, round_id=round_id, phase="formal", version=version, ctx=CTX, now=now
    )
    carts.formal_enter(family=family, round_id=round_id, now=now)
    for unit_id in unit_ids:
        carts.cart_add(family=family, round_id=round_id, kind="formal", unit_id=unit_id, now=now)


def _open_session_with_two_families() -> Setup:
    """One session open since a second ago for ten minutes; A (rank 1) has X in its formal
    cart, B (rank 2) has X, Y, then 2栋 801."""
    now = timezone.now()
    rnd = Round.objects.create(
        name="2026年第二批公共租赁住房网上选房",
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
            orientation="S",
            area=Decimal("45.20"),
            monthly_rent=Decimal("1469"),
        )
        for building, number, layout in UNITS
    }
    a = FamilyFactory(rank=1, eligible_layouts=[Layout.ONE_BED])
    b = FamilyFactory(rank=2, eligible_layouts=[Layout.ONE_BED], main_applicant__real_name="林安居")
    session = Session.objects.create(
        round=rnd,
        order=1,
        starts_at=now - timedelta(seconds=1),
        ends_at=now + timedelta(minutes=10),
    )
    Seat.objects.create(session=session, family=a)
    Seat.objects.create(session=session, family=b)
    allocation.sessions_open_due(now=now)  # as the clock would: status open, event recorded
    _enter_with_cart(a, rnd.pk, [units[X].pk])
    _enter_with_cart(b, rnd.pk, [units[X].pk, units[Y].pk, units["2-801"].pk])
    return Setup(
        round_id=rnd.pk,
        session_id=session.pk,
        a_id=a.pk,
        b=b.main_applicant,
        units={label: unit.pk for label, unit in units.items()},
    )


def _staff_withdraws(setup: Setup, label: str) -> None:
    from accounts.models import User
    from selection import staff_ops

    staff, _ = User.objects.get_or_create(username="board-operator", is_staff=True)
    staff_ops.unit_withdraw(
        unit_id=setup.units[label], reason="漏水维修", actor=staff, now=timezone.now()
    )


def _a_confirms(setup: Setup | PreSetup, label: str) -> None:
    """A taps 确认正选 on `label`: the service the API calls."""
    allocation.selection_confirm(
        family=Family.objects.get(pk=setup.a_id),
        round_id=setup.round_id,
        unit_id=setup.units[label],
        idempotency_key="live-test-a-0001",
        now=timezone.now(),
    )


def _last_call(session_id: int) -> None:
    """The clock's last-30-seconds call, as it would make it 20 s before the end."""
    ends_at = Session.objects.get(pk=session_id).ends_at
    assert allocation.sessions_last_call_due(now=ends_at - timedelta(seconds=20)) == [session_id]


def _close_now(session_id: int) -> None:
    """The window ends now; the clock closes the session and auto-assigns."""
    now = timezone.now()
    Session.objects.filter(pk=session_id).update(ends_at=now)
    assert allocation.session_close(session_id=session_id, now=now) is not None


@pytest.fixture
def other_page(page, live_url) -> Iterator[Any]:
    """A second phone in its own browser context (no login): the public board."""
    context = page.context.browser.new_context(base_url=live_url, **PHONE)
    context.set_default_timeout(10_000)
    errors: list[str] = []
    tab = context.new_page()
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"uncaught JavaScript errors on the second page: {errors}"


def _open_formal(page, live_url: str, orm, setup: Setup):
    """B logs in and opens the formal page; returns the page's selection socket."""
    log_in(page, orm, setup.b)
    with page.expect_websocket(lambda ws: "/ws/selection/" in ws.url) as socket:
        page.goto(f"/h5/selection/{setup.round_id}/formal/")
    expect(page).to_have_url(f"{live_url}/h5/selection/{setup.round_id}/formal/")
    return socket.value


def _carries(event_type: str, label: str | None = None):
    def check(payload: Any) -> bool:
        frame = json.loads(payload)
        return frame.get("type") == "events" and any(
            event["type"] == event_type
            and (label is None or event["data"]["unit"]["label"] == label)
            for event in frame["events"]
        )

    return check


def cart_item(page, name: str):
    return page.locator("#cart li").filter(has_text=name)


def stat(page, label: str):
    return page.locator(".anju-stat").filter(has_text=label).locator(".anju-stat__value")


def building_row(page, building: str):
    return (
        page.locator("table")
        .filter(has_text="按楼栋")
        .locator("tbody tr")
        .filter(has_text=f"{building}栋")
    )


def test_a_unit_taken_by_another_family_shows_at_once(page, other_page, live_url, orm, screenshot):
    setup = orm(_open_session_with_two_families)
    rid = setup.round_id
    board = other_page
    page.clock.set_system_time(timezone.now() - PHONE_CLOCK_SLOW)

    # B's formal page: live, X and Y in the cart, the countdown by the server's clock although
    # the phone's runs ten minutes slow (and the page says so).
    socket = _open_formal(page, live_url, orm, setup)
    badge = page.locator("#live-state")
    expect(badge).to_have_text("实时")
    expect(page.get_by_text("您的手机时间与系统时间相差较大，请以页面倒计时为准")).to_be_visible()
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^剩余 (09:[0-5]\d|10:00)$"))
    expect(cart_item(page, "1栋 1201").locator(".anju-tag_taken")).to_have_count(0)
    expect(page.get_by_label("选定 1栋 1201")).to_be_enabled()
    page.get_by_label("选定 1栋 1201").tap()
    expect(page.locator("#confirm-btn")).to_have_text("确认正选 1栋 1201")

    # The public board, in another browser: live, nothing taken yet.
    board.goto(f"/h5/broadcast/{rid}/")
    expect(board.locator("#live-state")).to_have_text("实时")
    expect(stat(board, "已选")).to_have_text("0")
    expect(stat(board, "可选")).to_have_text("4")
    expect(board.get_by_label("1栋 1201 一房一厅 可选")).to_have_attribute(
        "data-status", "available"
    )
    page.evaluate("window.notReloaded = true")
    board.evaluate("window.notReloaded = true")

    # A confirms X. B hears it on its socket and X is 已被选, its radio and 确认正选 disabled.
    with socket.expect_event("framereceived", _carries("selection.unit_taken", X)):
        orm(_a_confirms, setup, X)
    taken = cart_item(page, "1栋 1201")
    expect(taken.locator(".anju-tag_taken")).to_have_text("已被选")
    expect(page.get_by_text("1栋 1201 已被其他家庭选定")).to_be_visible()  # a toast, 2.5 s
    expect(page.get_by_label("选定 1栋 1201")).to_be_disabled()
    expect(page.locator("#confirm-btn")).to_be_disabled()
    expect(page.locator("#confirm-btn")).to_have_text("确认正选")
    expect(page.get_by_role("button", name="1栋 1201 已被选")).to_be_disabled()
    expect(cart_item(page, "1栋 1202").locator(".anju-tag_taken")).to_have_count(0)
    expect(page.get_by_label("选定 1栋 1202")).to_be_enabled()
    assert page.evaluate("window.notReloaded") is True
    expect(badge).to_have_text("实时")
    expect(page.locator("#anju-toast .weui-toast")).to_be_hidden()
    screenshot("realtime-formal-taken")

    # The board: X taken, the counts and the feed moved, without a reload.
    expect(board.get_by_label("1栋 1201 一房一厅 已选")).to_have_attribute("data-status", "taken")
    expect(stat(board, "已选")).to_have_text("1")
    expect(stat(board, "可选")).to_have_text("3")
    expect(building_row(board, "1").locator("td")).to_have_text(["3", "1", "2"])
    expect(building_row(board, "2").locator("td")).to_have_text(["1", "0", "1"])
    expect(board.locator("#feed li")).to_have_count(1)
    expect(board.locator("#feed li").first).to_contain_text("1栋 1201 一房一厅")
    expect(board.locator("#feed li").first).to_contain_text("确认选定")
    assert board.evaluate("window.notReloaded") is True
    RESULTS.mkdir(exist_ok=True)
    board.screenshot(path=str(RESULTS / "realtime-broadcast.png"), full_page=True)

    # Staff withdraw 2栋 801: the board counts it apart (撤回 is not 已选), without a reload.
    orm(_staff_withdraws, setup, "2-801")
    expect(stat(board, "已撤回")).to_have_text("1")
    expect(stat(board, "已选")).to_have_text("1")
    expect(stat(board, "可选")).to_have_text("2")
    head = board.locator("table").filter(has_text="按楼栋").locator("thead th")
    expect(head).to_have_text(["楼栋", "总数", "已选", "已撤回", "可选"])
    expect(building_row(board, "1").locator("td")).to_have_text(["3", "1", "0", "2"])
    expect(building_row(board, "2").locator("td")).to_have_text(["1", "0", "1", "0"])
    expect(board.get_by_label("2栋 801 一房一厅 已撤回")).to_have_attribute(
        "data-status", "withdrawn"
    )
    # It was last in B's formal cart: gone from it, and said above the cart, where it stays
    # (the toast is gone in 3 s).
    expect(page.locator("#cart-news")).to_have_text("2栋 801 已被工作人员撤回，已从购物车移除")
    expect(cart_item(page, "2栋 801")).to_have_count(0)
    expect(cart_item(page, "1栋 1202")).to_have_count(1)

    # The clock's last-30-seconds call reaches B (the phone's own countdown says ~10 min).
    expect(page.locator("#last-call")).to_be_hidden()
    orm(_last_call, setup.session_id)
    expect(page.locator("#last-call")).to_be_visible()
    expect(page.locator("#countdown-label")).to_have_text("最后30秒，请尽快确认")
    expect(page.locator("#countdown-bar")).to_have_class(re.compile(r"\banju-countdown_last\b"))
    screenshot("realtime-formal-last-call")

    # The window closes: B is auto-assigned Y (X was taken) and its page goes to the result;
    # the board shows Y taken by the system.
    orm(_close_now, setup.session_id)
    expect(page).to_have_url(f"{live_url}/h5/selection/{rid}/result/")
    expect(page.locator("#result-title")).to_have_text("选房成功")
    expect(page.locator("#allocated-unit")).to_have_text("1栋 1202")
    expect(page.locator("#allocation-how")).to_have_text("系统自动选定")
    expect(board.get_by_label("1栋 1202 一房一厅 已选")).to_have_attribute("data-status", "taken")
    expect(stat(board, "已选")).to_have_text("2")
    expect(board.locator("#feed li").first).to_contain_text("1栋 1202 一房一厅")
    expect(board.locator("#feed li").first).to_contain_text("系统选定")
    assert board.evaluate("window.notReloaded") is True
    expect(page.locator("#live-state")).to_have_text("实时")


def test_a_refused_socket_does_not_hold_back_the_first_snapshot(page, orm):
    """A proxy refuses the socket at once: the page reads its first snapshot (the unit list
    with it) right then, as a poll would, not after the 4 s fallback. The page's clock is
    paused (Playwright's fake timers), so no timer can be what shows the list."""
    setup = orm(_open_session_with_two_families)
    page.route_web_socket(
        re.compile(r"/ws/selection/"), lambda ws: ws.close(code=1011, reason="refused")
    )
    log_in(page, orm, setup.b)
    page.clock.install()
    page.clock.pause_at(timezone.now() + timedelta(seconds=1))
    page.goto(f"/h5/selection/{setup.round_id}/formal/")
    expect(page.get_by_role("button", name="1栋 1201 已加入")).to_be_disabled()
    expect(page.get_by_role("button", name="选择 1栋 1203")).to_be_enabled()
    expect(page.locator("#live-state")).to_have_text("连接中")


def test_without_a_socket_the_page_polls_then_goes_live_again(page, live_url, orm, screenshot):
    setup = orm(_open_session_with_two_families)
    blocked = True

    def route(ws) -> None:
        # While `blocked`, every socket the page opens is closed at once (a proxy that
        # refuses websockets); then they go through to the server.
        if blocked:
            ws.close(code=1011, reason="blocked by the test")
        else:
            ws.connect_to_server()

    page.route_web_socket(re.compile(r"/ws/selection/"), route)
    log_in(page, orm, setup.b)
    page.goto(f"/h5/selection/{setup.round_id}/formal/")
    badge = page.locator("#live-state")
    # The refused socket does not hold the list back (the test above proves it at once).
    expect(page.get_by_role("button", name="1栋 1201 已加入")).to_be_disabled()
    # No socket up within 4 s: the page says so and polls.
    expect(badge).to_have_text("定时刷新", timeout=10_000)
    expect(page.get_by_text("连接中断，已切换为定时刷新")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    # A take still shows: the page polls the snapshot every 3 s.
    orm(_a_confirms, setup, X)
    expect(cart_item(page, "1栋 1201").locator(".anju-tag_taken")).to_have_text(
        "已被选", timeout=8_000
    )
    expect(page.get_by_label("选定 1栋 1201")).to_be_disabled()
    expect(page.get_by_role("button", name="1栋 1201 已被选")).to_be_disabled()
    expect(badge).to_have_text("定时刷新")
    expect(page.locator("#anju-toast .weui-toast")).to_be_hidden()
    screenshot("realtime-formal-polling")

    # Sockets get through again: the page goes back to live at its next attempt.
    blocked = False
    expect(badge).to_have_text("实时", timeout=25_000)
    expect(page.get_by_text("连接中断，已切换为定时刷新")).to_have_count(0)
    assert page.evaluate("window.notReloaded") is True


def test_the_board_fills_in_what_its_socket_missed(page, live_url, orm):
    """The session closes: the log's sequencer announces its two unit takes as ONE frame. The
    page gets it cut down to its last event (as if the rest were lost) and never a heads
    frame, so only the HTTP catch-up that the gap triggers can bring the first take."""
    setup = orm(_open_session_with_two_families)
    cut: list[tuple[int, int]] = []

    def route(ws) -> None:
        server = ws.connect_to_server()

        def from_server(message) -> None:
            frame = json.loads(message)
            if frame.get("type") == "heads":
                return
            if frame.get("type") == "events" and len(frame["events"]) > 1:
                cut.append((frame["from"], frame["to"]))
                frame["events"] = frame["events"][-1:]
                frame["from"] = frame["to"]
                message = json.dumps(frame, ensure_ascii=False)
            ws.send(message)

        server.on_message(from_server)

    page.route_web_socket(re.compile(r"/ws/broadcast/"), route)
    page.goto(f"/h5/broadcast/{setup.round_id}/")
    expect(page.locator("#live-state")).to_have_text("实时")
    expect(stat(page, "已选")).to_have_text("0")
    page.evaluate("window.notReloaded = true")

    orm(_close_now, setup.session_id)  # A gets X, B gets Y, in one transaction
    expect(page.get_by_label("1栋 1201 一房一厅 已选")).to_have_attribute("data-status", "taken")
    expect(page.get_by_label("1栋 1202 一房一厅 已选")).to_have_attribute("data-status", "taken")
    expect(stat(page, "已选")).to_have_text("2")
    expect(page.locator("#feed li")).to_have_count(2)
    # The two takes (one sequencer transaction), with the close's own event when the relay
    # found both transactions committed in the same pass.
    assert len(cut) == 1 and cut[0][1] - cut[0][0] in (1, 2), cut
    assert page.evaluate("window.notReloaded") is True


def test_the_board_reads_before_its_socket_and_the_hello_fills_the_gap(page, live_url, orm):
    """Rule 1 (docs/REALTIME.md): the board reads its snapshot beside the socket's opening,
    not after the socket's hello, so the snapshot may be older than the socket's joining. A
    take committed and published in between never comes on the socket; the hello's heads
    (read after the join) say it happened, and the page fills it in over HTTP.

    The socket is held open without a server until the snapshot is on screen, with the page's
    clock paused (no timer can be what shows it), and no events or heads frame ever reaches
    the page: only the hello's heads can bring the take."""
    setup = orm(_open_session_with_two_families)
    held: list = []
    passed: list[str] = []

    def from_server(message) -> None:
        frame = json.loads(message)
        if frame.get("type") in ("events", "heads"):
            return
        passed.append(frame["type"])
        held[0].send(message)

    page.route_web_socket(re.compile(r"/ws/broadcast/"), lambda ws: held.append(ws))
    page.clock.install()
    page.clock.pause_at(timezone.now() + timedelta(seconds=1))
    page.goto(f"/h5/broadcast/{setup.round_id}/")
    expect(stat(page, "已选")).to_have_text("0")  # the snapshot, with no hello yet
    expect(page.locator("#live-state")).to_have_text("连接中")
    assert len(held) == 1

    orm(_a_confirms, setup, X)
    # The log's sequencer announces the take (unit_taken). Run it here: it returns once that
    # event is committed, by this call or by the server's sequencer holding the lock.
    orm(sequence_pending)
    server = held[0].connect_to_server()
    server.on_message(from_server)
    expect(page.locator("#live-state")).to_have_text("实时")
    expect(page.get_by_label("1栋 1201 一房一厅 已选")).to_have_attribute("data-status", "taken")
    expect(stat(page, "已选")).to_have_text("1")
    assert passed[0] == "hello"


@dataclass(frozen=True)
class PreSetup:
    round_id: int
    b_session_id: int
    a_id: int
    b: Applicant
    units: dict[str, int]


def _b_preselecting_while_a_selects() -> PreSetup:
    """A's session (rank 1) is open now; B's starts in an hour, B pre-selected X and Y."""
    now = timezone.now()
    rnd = Round.objects.create(
        name="2026年第三批公共租赁住房网上选房",
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
            orientation="S",
            area=Decimal("45.20"),
            monthly_rent=Decimal("1469"),
        )
        for building, number, layout in UNITS
    }
    a = FamilyFactory(rank=1, eligible_layouts=[Layout.ONE_BED])
    b = FamilyFactory(rank=2, eligible_layouts=[Layout.ONE_BED])
    first = Session.objects.create(
        round=rnd,
        order=1,
        starts_at=now - timedelta(seconds=1),
        ends_at=now + timedelta(minutes=10),
    )
    second = Session.objects.create(
        round=rnd,
        order=2,
        starts_at=now + timedelta(hours=1),
        ends_at=now + timedelta(hours=1, minutes=2),
    )
    Seat.objects.create(session=first, family=a)
    Seat.objects.create(session=second, family=b)
    allocation.sessions_open_due(now=now)
    _enter_with_cart(a, rnd.pk, [units[X].pk])
    state = family_state(family=b, round_id=rnd.pk, now=now)
    _, version = carts.declaration_current(state=state, phase="pre")
    carts.declaration_acknowledge(
        family=b, round_id=rnd.pk, phase="pre", version=version, ctx=CTX, now=now
    )
    for label in (X, Y):
        carts.cart_add(family=b, round_id=rnd.pk, kind="pre", unit_id=units[label].pk, now=now)
    return PreSetup(
        round_id=rnd.pk,
        b_session_id=second.pk,
        a_id=a.pk,
        b=b.main_applicant,
        units={label: unit.pk for label, unit in units.items()},
    )


def _open_b_session_now(session_id: int) -> None:
    now = timezone.now()
    Session.objects.filter(pk=session_id).update(
        starts_at=now - timedelta(seconds=1), ends_at=now + timedelta(minutes=2)
    )
    assert allocation.sessions_open_due(now=now) == [session_id]


def test_the_pre_selection_page_hears_takes_and_its_session_opening(page, live_url, orm):
    setup = orm(_b_preselecting_while_a_selects)
    rid = setup.round_id
    log_in(page, orm, setup.b)
    page.goto(f"/h5/selection/{rid}/pre/")
    expect(page.locator("#live-state")).to_have_text("实时")
    expect(page.locator("#cart-count")).to_have_text("2/5")
    expect(page.get_by_role("button", name="1栋 1201 已加入")).to_be_disabled()
    page.evaluate("window.notReloaded = true")

    # A family ranked earlier takes X in its session: 已被选 in B's pre-selection cart and
    # list (the row stays, although 「只看可选」 is on).
    orm(_a_confirms, setup, X)
    expect(cart_item(page, "1栋 1201").locator(".anju-tag_taken")).to_have_text("已被选")
    expect(page.get_by_role("button", name="1栋 1201 已被选")).to_be_disabled()
    expect(page.get_by_text("购物车中的 1栋 1201 已被其他家庭选定")).to_be_visible()
    expect(cart_item(page, "1栋 1202").locator(".anju-tag_taken")).to_have_count(0)

    # B's own session opens: the page says pre-selection is over and leads to the formal one.
    orm(_open_b_session_now, setup.b_session_id)
    expect(page.get_by_role("heading", name="预选已结束")).to_be_visible()
    expect(
        page.get_by_text("您的正选时间已开始，请勾选声明后进入正选页面", exact=True)
    ).to_be_visible()
    # A screen reader is told at once, not left with the countdown's last words.
    expect(page.locator("#countdown-assertive")).to_have_text(
        "预选已结束，您的正选时间已开始，请勾选声明后进入正选页面"
    )
    expect(page.get_by_role("button", name="去选房")).to_have_attribute(
        "href", f"/h5/selection/{rid}/declaration/formal/"
    )
    assert page.evaluate("window.notReloaded") is True
