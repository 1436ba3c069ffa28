"""选房结果核验 on a phone that never logged in: the 核验码 from the result SMS, checked in the
browser against the public log (entry hash, inclusion proof, Ed25519 head signature); an
entry rewritten in the database fails the check; a wrong code says so in Chinese."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from selection import allocation, translog
from selection.models import CartItem, LedgerEntry, Seat
from tests.worlds import make_world

pytestmark = pytest.mark.browser


def _confirmed_and_signed() -> tuple[int, str, str]:
    world = make_world(families=2, units=2, sessions=1, per_session=2)
    s1 = world.sessions[0]
    a = world.families[0]
    CartItem.objects.create(
        family=a,
        round=world.round,
        kind="formal",
        unit=world.units[1],
        position=1,
        added_at=s1.starts_at,
    )
    Seat.objects.filter(session=s1, family=a).update(entered_at=s1.starts_at)
    made = allocation.selection_confirm(
        family=a,
        round_id=world.round.pk,
        unit_id=world.units[1].pk,
        idempotency_key="verify-page-0001",
        now=s1.starts_at + timedelta(seconds=3),
    )
    translog.sequence_pending()
    return world.round.pk, made.allocation.ledger_entry.code, world.units[1].label


def _rewrite(code: str) -> None:
    """Someone with database access edits the entry (another unit); its leaf hash, which the
    signed tree covers, cannot follow without breaking the proof and the signature."""
    entry = LedgerEntry.objects.get(leaf_hash__startswith=code)
    LedgerEntry.objects.filter(pk=entry.pk).update(
        payload={**entry.payload, "unit_label": "3-9999"}
    )


def test_a_family_checks_its_code_on_a_phone(page, live_url, orm, screenshot):
    rid, code, label = orm(_confirmed_and_signed)
    page.goto(f"/h5/broadcast/{rid}/")
    page.get_by_role("link", name="选房结果核验").tap()
    expect(page).to_have_url(f"{live_url}/h5/ledger/{rid}/verify/")
    expect(page.locator("h1, .anju-titlebar").first).to_contain_text("选房结果核验")
    page.get_by_label("核验码").fill("12345")
    page.get_by_role("button", name="核验").tap()
    expect(page.locator("#code-error")).to_have_text("核验码为10位数字或字母a-f")
    page.get_by_label("核验码").fill("0123456789")
    page.get_by_role("button", name="核验").tap()
    expect(page.locator("#verify-message")).to_have_text("未找到该核验码对应的选房记录")
    page.get_by_label("核验码").fill(code.upper())
    page.get_by_role("button", name="核验").tap()
    expect(page.locator("#verify-title")).to_have_text("核验通过")
    building, number = label.rsplit("-", 1)
    expect(page.locator("#verify-unit")).to_have_text(f"{building}栋 {number}")  # as elsewhere
    # From the signed entry alone, which does not name the session's kind: true of a 正选
    # and of a 补选 confirmation alike.
    expect(page.get_by_text("家庭确认选定", exact=True)).to_be_visible()
    checks = page.locator("#verify-checks")
    expect(checks).to_contain_text("✓ 记录内容完整，未被改动")
    expect(checks).to_contain_text("✓ 记录在已签名的选房日志中")
    expect(checks).to_contain_text("✓ 系统签名有效")
    # The key id is a code: page translation leaves it alone.
    expect(checks.locator('[translate="no"]')).to_have_text(re.compile(r"^[0-9a-f]{16}$"))
    screenshot("ledger-verify-ok")

    orm(_rewrite, code)
    page.goto(f"/h5/ledger/{rid}/verify/?code={code}")
    expect(page.locator("#verify-title")).to_have_text("核验未通过")
    expect(page.locator("#verify-checks")).to_contain_text("✗ 记录内容已被改动")
    screenshot("ledger-verify-rewritten")
