"""The unit list of pre- and formal selection with a round of 216 units (issue 16 item 2), and
the countdown's words for screen readers (issue 16 item 3).

One shared module (h5/static/h5/lib/unit-list.js) on both pages:
- units grouped by building in natural order (2栋, 3栋, 10栋 — not 10栋 first), each group's
  header sticky below the title bar (and below the formal page's countdown) while its units
  scroll by;
- 户型 starts at 「我家可选」: only the layouts the server lets this family choose (the
  family is eligible for 一房一厅; every fourth unit is 两房一厅), and the family can widen it
  to 「全部户型」, where the others show 「户型不符」;
- a search by unit number: 「1203」 finds room 1203 of every building, 「3栋1203」 one.

The countdown (formal page): the visible 「剩余 mm:ss」 is a timer, not a live region; a
visually hidden polite region says the time left once a minute and an assertive one takes
over in the last 30 s. The schedule is checked on the page's own module with chosen times
(no waiting on a clock); the formal page's switch at 30 s is checked against the live
server's clock on a session that ends 36 s after it is set up (a wait on what the page
shows, as test_h5_busy_and_countdown's closing test).
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Layout
from selection import carts
from selection.models import Round, Seat, Session, Unit
from tests.browser.conftest import RESULTS
from tests.browser.test_login import log_in
from tests.factories import FamilyFactory
from tests.worlds import declare

pytestmark = pytest.mark.browser

BUILDINGS = ["10", "2", "3"]  # created out of order: the page sorts them naturally
FLOORS = range(3, 21)  # 18 floors × 4 rooms × 3 buildings = 216 units
ROOMS = {
    "01": (Layout.TWO_BED, "S"),
    "02": (Layout.ONE_BED, "N"),
    "03": (Layout.ONE_BED, "S"),
    "04": (Layout.ONE_BED, "E"),
}
WITHDRAWN = {("2", "1502"), ("3", "802")}  # staff took them out of the pool
ALL = len(BUILDINGS) * len(FLOORS) * len(ROOMS)
ONE_BED = len(BUILDINGS) * len(FLOORS) * 3  # the family's layout


def _round(*, session_from_now: timedelta, lasts: timedelta, phase: str):
    """216 units; the family (eligible for 一房一厅 only) has declared for `phase`; its
    session starts `session_from_now` from now."""
    now = timezone.now()
    rnd = Round.objects.create(
        name="2026年第五批公共租赁住房网上选房",
        preselect_starts_at=now - timedelta(hours=1),
        cart_limit=5,
        window_seconds=120,
    )
    Unit.objects.bulk_create(
        Unit(
            round=rnd,
            building=building,
            number=f"{floor}{room}",
            floor=floor,
            layout=layout,
            orientation=orientation,
            area=Decimal("64.80") if layout == Layout.TWO_BED else Decimal("45.20"),
            monthly_rent=Decimal("2106") if layout == Layout.TWO_BED else Decimal("1469"),
            status="withdrawn" if (building, f"{floor}{room}") in WITHDRAWN else "available",
        )
        for building in BUILDINGS
        for floor in FLOORS
        for room, (layout, orientation) in ROOMS.items()
    )
    family = FamilyFactory(rank=4, eligible_layouts=[Layout.ONE_BED])
    starts = now + session_from_now
    session = Session.objects.create(round=rnd, order=1, starts_at=starts, ends_at=starts + lasts)
    Seat.objects.create(session=session, family=family)
    declare(family, rnd, phase, now)
    if phase == "formal":
        carts.formal_enter(family=family, round_id=rnd.pk, now=now)
    return rnd.pk, session.pk, family.main_applicant


def _in_preselection():
    return _round(session_from_now=timedelta(hours=2), lasts=timedelta(minutes=2), phase="pre")


def _in_formal(lasts_s: float = 600):
    return _round(
        session_from_now=timedelta(seconds=-1), lasts=timedelta(seconds=lasts_s), phase="formal"
    )


def _names(page) -> list[str]:
    return page.locator("#units li .anju-unit__title > span:first-child").all_inner_texts()


def _check_the_list(page, *, open_units: int, screenshot, name: str) -> None:
    """Grouping, the default filter and widening it, and the search, on whichever page."""
    units = page.locator("#units li")
    layout = page.locator("select[name=layout]")
    summary = page.locator("#units-summary")

    # The default: the family's layout only, grouped by building in natural order.
    expect(layout).to_have_value("mine")
    expect(units).to_have_count(open_units)
    expect(summary).to_contain_text(f"共{open_units}套房源，已按您家庭可选户型（一房一厅）筛选")
    headers = page.locator("#units .anju-units__building")
    expect(headers).to_have_count(3)
    expect(headers.locator("span:first-child")).to_have_text(["2栋", "3栋", "10栋"])
    expect(headers.nth(0).locator(".anju-units__count")).to_have_text("53套")  # 54 − 2-1502
    assert page.locator("#units li").filter(has_text="两房一厅").count() == 0
    assert page.get_by_role("button", name=re.compile("户型不符$")).count() == 0
    # Within a building: by floor, then number.
    assert _names(page)[:4] == ["2栋 302", "2栋 303", "2栋 304", "2栋 402"]

    # The headers stick: scrolled into the middle of 3栋, its header sits under the bars
    # above the list while 3栋's units pass beneath it.
    for header in headers.all():
        assert header.evaluate("node => getComputedStyle(node).position") == "sticky"
    page.get_by_role("button", name="选择 3栋 1204").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, 200)")
    bars_bottom = page.evaluate(
        """() => Math.max(...[...document.querySelectorAll('.anju-titlebar, .anju-countdown')]
             .map(n => n.getBoundingClientRect().bottom))"""
    )
    box = headers.nth(1).bounding_box()
    assert box is not None
    assert abs(box["y"] - bars_bottom) <= 2, (box, bars_bottom)
    assert headers.nth(0).bounding_box()["y"] < box["y"]  # 2栋's has scrolled away above
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / f"{name}-sticky.png"))  # the viewport: the stuck header
    page.evaluate("window.scrollTo(0, 0)")

    # Widening: 「全部户型」 shows the 两房一厅 units, which the family cannot choose.
    layout.select_option(label="全部户型")
    expect(units).to_have_count(open_units + len(BUILDINGS) * len(FLOORS))
    expect(page.get_by_role("button", name="2栋 301 户型不符")).to_be_disabled()
    layout.select_option(label="两房一厅")
    expect(units).to_have_count(len(BUILDINGS) * len(FLOORS))
    layout.select_option(label="我家可选")
    expect(units).to_have_count(open_units)
    # … and the summary's button widens it in one tap.
    page.get_by_role("button", name="显示全部户型").tap()
    expect(layout).to_have_value("")
    expect(units).to_have_count(open_units + len(BUILDINGS) * len(FLOORS))
    layout.select_option(label="我家可选")

    # The search by unit number: every building's 1203, in building order; then one.
    search = page.get_by_placeholder("输入房号，如1203")
    search.fill("1203")
    expect(units).to_have_count(3)
    assert _names(page) == ["2栋 1203", "3栋 1203", "10栋 1203"]
    expect(summary).to_contain_text("找到3套房源")
    expect(page.get_by_role("button", name="选择 10栋 1203")).to_be_enabled()
    screenshot(f"{name}-search")
    search.fill("3栋1203")
    expect(units).to_have_count(1)
    assert _names(page) == ["3栋 1203"]
    search.fill("1201")  # a 两房一厅 room: outside the default filter, and said so
    expect(units).to_have_count(0)
    expect(summary).to_contain_text("其他户型另有3套")
    page.get_by_role("button", name="显示全部户型").tap()
    expect(units).to_have_count(3)
    expect(page.get_by_role("button", name="10栋 1201 户型不符")).to_be_disabled()
    search.fill("")
    layout.select_option(label="我家可选")
    expect(units).to_have_count(open_units)


def test_pre_selection_list_grouped_filtered_and_searched(page, live_url, orm, screenshot):
    rid, _, applicant = orm(_in_preselection)
    log_in(page, orm, applicant)
    page.goto(f"/h5/selection/{rid}/pre/")
    expect(page.locator("#cart-count")).to_have_text("0/5")
    # 「只看可选」 hides the two units withdrawn; the family's layout only.
    _check_the_list(
        page, open_units=ONE_BED - len(WITHDRAWN), screenshot=screenshot, name="unit-list-pre"
    )

    # Choosing from a searched list: the row turns 已加入 without the list being rebuilt.
    page.get_by_placeholder("输入房号，如1203").fill("1203")
    expect(page.locator("#units li")).to_have_count(3)
    first_row = page.locator("#units li").first
    first_row.evaluate("node => { node.dataset.marker = 'kept'; }")
    page.get_by_role("button", name="选择 2栋 1203").tap()
    expect(page.locator("#cart-count")).to_have_text("1/5")
    expect(page.get_by_role("button", name="2栋 1203 已加入")).to_be_disabled()
    expect(page.locator("#units li[data-marker=kept]")).to_have_count(1)

    # 「只看可选」 off: the withdrawn units show, marked.
    page.get_by_placeholder("输入房号，如1203").fill("")
    page.get_by_label("只看可选").tap()
    expect(page.locator("#units li")).to_have_count(ONE_BED)
    expect(page.get_by_role("button", name="2栋 1502 已撤回")).to_be_disabled()


def test_formal_selection_list_grouped_filtered_and_searched(page, live_url, orm, screenshot):
    rid, _, applicant = orm(_in_formal)
    log_in(page, orm, applicant)
    page.goto(f"/h5/selection/{rid}/formal/")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^剩余 (09:[0-5]\d|10:00)$"))
    # The formal list holds available units only.
    _check_the_list(
        page, open_units=ONE_BED - len(WITHDRAWN), screenshot=screenshot, name="unit-list-formal"
    )


@pytest.mark.parametrize(
    ("phase", "first_read", "listed"),
    [("pre", "state/", "all"), ("formal", "formal/enter/", "available")],
)
def test_the_list_comes_with_the_first_snapshot_and_the_socket_opens_beside_the_first_read(
    page, live_url, orm, phase, first_read, listed
):
    """Issue 16 (time to usable on a slow line): the page's first read (the state; entering
    formal selection) is held until the live socket has opened, which it only can when the
    page opens it beside that read, not after; the list then comes with the first snapshot
    (`?units=`), with no read of …/units/ of its own."""
    rid, _, applicant = orm(_in_preselection if phase == "pre" else _in_formal)
    log_in(page, orm, applicant)
    held = []
    page.route(
        re.compile(rf"/api/v1/selection/{rid}/{first_read}$"), lambda route: held.append(route)
    )
    reads: list[str] = []
    page.on("request", lambda request: reads.append(request.url.split(live_url, 1)[-1]))
    with page.expect_websocket(lambda ws: f"/ws/selection/{rid}/" in ws.url):
        page.goto(f"/h5/selection/{rid}/{phase}/", wait_until="commit")
    assert len(held) == 1
    held[0].continue_()
    expect(page.locator("#units li").first).to_be_visible()
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    data = [url for url in reads if url.startswith("/api/")]
    assert data.count(f"/api/v1/selection/{rid}/live/?units={listed}") == 1, data
    assert not [url for url in data if "/units/" in url], data


ANNOUNCE = """async ([steps]) => {
  const { countdownAnnouncer } = await import('/static/h5/lib/announce.js');
  const say = countdownAnnouncer({ id: 'probe', phrase: (t) => `正选时间剩余${t}`,
                                   lastCall: '请尽快确认正选' });
  const out = [];
  for (const [ms, last] of steps) {
    say.update(ms, { last });
    out.push([ms, say.polite.getAttribute('aria-live'), say.polite.textContent.trim(),
              say.assertive.getAttribute('aria-live'), say.assertive.textContent.trim()]);
  }
  return out;
}"""


def test_countdown_announcements_schedule(page, live_url, orm):
    """The announcer's schedule on chosen times: nothing on the first tick or between
    minutes, polite at each whole minute, assertive from 30 s (and at the server's last
    call even when the phone's clock says more), one region at a time."""
    rid, _, applicant = orm(_in_formal)
    log_in(page, orm, applicant)
    page.goto(f"/h5/selection/{rid}/formal/")
    expect(page.locator("#countdown")).to_have_text(re.compile(r"^剩余 "))
    steps = [
        (125_000, False),  # first tick: nothing
        (121_000, False),
        (120_000, False),  # 2 minutes
        (90_000, False),
        (61_400, False),
        (58_600, False),  # 1 minute (a late tick skipped the exact second)
        (31_000, False),
        (30_000, False),  # the last 30 s: assertive
        (21_000, False),
        (20_000, False),
        (10_000, False),
    ]
    rows = page.evaluate(ANNOUNCE, [steps])
    said = {ms: (polite, assertive) for ms, _, polite, _, assertive in rows}
    for _, polite_live, _, assertive_live, _ in rows:
        assert (polite_live, assertive_live) == ("polite", "assertive")
    assert said[125_000] == ("", "")
    assert said[121_000] == ("", "")
    assert said[120_000] == ("正选时间剩余2分钟", "")
    assert said[90_000] == ("正选时间剩余2分钟", "")  # not said again: nothing new
    assert said[58_600] == ("正选时间剩余1分钟", "")
    assert said[31_000] == ("正选时间剩余1分钟", "")
    assert said[30_000] == ("", "正选时间剩余30秒，请尽快确认正选")
    assert said[20_000] == ("", "正选时间剩余20秒")
    assert said[10_000] == ("", "正选时间剩余10秒")

    # The server's last call comes first (the phone's clock says ten minutes).
    rows = page.evaluate(ANNOUNCE, [[(600_000, False), (599_000, True)]])
    assert rows[1][2:] == ["", "assertive", "正选时间剩余30秒，请尽快确认正选"]


def test_formal_countdown_turns_assertive_in_the_last_30_seconds(page, live_url, orm, screenshot):
    rid, _, applicant = orm(_in_formal, 600)
    log_in(page, orm, applicant)
    orm(_ends_in, rid, 36)
    page.goto(f"/h5/selection/{rid}/formal/")
    countdown = page.locator("#countdown")
    expect(countdown).to_have_text(re.compile(r"^剩余 00:[0-4]\d$"))
    # The visible clock is a timer, not a live region.
    expect(countdown).to_have_attribute("role", "timer")
    expect(countdown).to_have_attribute("aria-live", "off")
    polite = page.locator("#countdown-polite")
    assertive = page.locator("#countdown-assertive")
    expect(polite).to_have_attribute("aria-live", "polite")
    expect(assertive).to_have_attribute("aria-live", "assertive")
    expect(polite).to_be_attached()
    expect(assertive).to_have_text("")
    # The visible 「最后30秒」 line is no live region of its own (the assertive one speaks).
    expect(page.locator("#last-call")).not_to_have_attribute("role", "alert")

    expect(assertive).to_have_text(
        "正选时间剩余30秒，请尽快确认正选；时间结束未确认的，系统将按购物车排序自动选定",
        timeout=25_000,
    )
    expect(polite).to_have_text("")
    expect(page.locator("#countdown-label")).to_have_text("最后30秒，请尽快确认")
    screenshot("formal-countdown-assertive")
    expect(assertive).to_have_text("正选时间剩余20秒", timeout=15_000)


def _ends_in(round_id: int, seconds: float) -> None:
    Session.objects.filter(round_id=round_id).update(
        ends_at=timezone.now() + timedelta(seconds=seconds)
    )
