"""「我的」 → 网上签约记录 → 「查看详情」 on a phone: every agreement of the family (the lease and
the rent-subsidy agreement) with the agreement's own status words, then the viewer: the
sealed agreement page by page with 打印 (the PDF) and 保存 (its download), and the deposit
receipt once the lease is approved. The pages' one time format (lib/format.js `dateTime`) matches
the server's (core/fmt.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.conf import settings as django_settings
from playwright.sync_api import expect

from core.fmt import datetime_zh
from signing.agreements import services
from signing.models import AgreementTemplate, TemplateKind
from tests.browser.conftest import RESULTS
from tests.browser.test_signing_flow import _logged_in_session
from tests.signing.lease_worlds import NOW
from tests.signing.test_lease_review import signed_lease
from tests.signing.viewer_worlds import ca_for, reviewer, seal, sign
from tests.signing.worlds import CLOSES, OPENS

pytestmark = pytest.mark.browser


def _family_with_a_lease_and_a_sealed_subsidy() -> dict:
    world, lease = signed_lease(paid=True)  # signed, deposit paid: waiting for review
    subsidy = services.agreement_create(
        family=world.family,
        template=AgreementTemplate.objects.get(kind=TemplateKind.RENT_SUBSIDY, version=1),
        window_starts_at=OPENS,
        window_ends_at=CLOSES,
        actor=None,
        now=OPENS,
    )
    subsidy = seal(sign(subsidy))
    subsidy.refresh_from_db()
    return {
        "applicant": world.applicant.pk,
        "lease": lease.pk,
        "lease_agreement": lease.agreement_id,
        "subsidy": subsidy.pk,
        "sealed_at": datetime_zh(subsidy.sealed_at),
    }


def _approve(agreement_id: int) -> None:
    services.agreement_approve(agreement_id=agreement_id, actor=reviewer(), now=NOW)


def records_world(page, live_url, orm, settings, tmp_path, *, approved: bool = False) -> dict:
    """A family with a signed, paid lease (approved when asked) and a sealed 租金补贴协议,
    logged in on `page`; the payment platform's keys and the signing CA in `tmp_path`."""
    settings.PAYMENT = {**settings.PAYMENT, "PLATFORM_KEY_DIR": tmp_path / "pay"}
    ca_for(settings, tmp_path / "ca")
    setup = orm(_family_with_a_lease_and_a_sealed_subsidy)
    if approved:
        orm(_approve, setup["lease_agreement"])
    page.context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": orm(_logged_in_session, setup["applicant"]),
                "url": live_url,
            }
        ]
    )
    return setup


def _shot(page, name: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / f"{name}.png"), full_page=True)


def test_records_list_every_agreement_and_open_the_viewer(page, live_url, orm, settings, tmp_path):
    setup = records_world(page, live_url, orm, settings, tmp_path)
    page.goto("/h5/")
    page.get_by_role("link", name="我的", exact=True).tap()
    page.get_by_role("link", name=re.compile("^网上签约记录")).tap()
    expect(page).to_have_url(f"{live_url}/h5/me/leases/")

    lease_card = page.locator(f'article[data-agreement-id="{setup["lease_agreement"]}"]')
    subsidy_card = page.locator(f'article[data-agreement-id="{setup["subsidy"]}"]')
    expect(lease_card.get_by_role("heading")).to_have_text(re.compile("租赁合同$"))
    expect(lease_card.locator(".anju-badge")).to_have_text("已签字")
    expect(lease_card).to_contain_text("待审核")  # the lease's stage, as secondary text
    expect(lease_card.get_by_role("button", name="押金收据")).to_have_count(0)
    expect(subsidy_card.get_by_role("heading")).to_have_text(re.compile("租金补贴协议$"))
    expect(subsidy_card.locator(".anju-badge")).to_have_text("已盖章")
    expect(subsidy_card).to_contain_text(f"盖章时间{setup['sealed_at']}")
    tips = page.locator("#records-tips")
    expect(tips).to_contain_text("请拨打咨询电话 0755-23619344、0755-82559564")
    expect(tips.get_by_role("link", name="0755-23619344")).to_have_attribute(
        "href", "tel:0755-23619344"
    )
    expect(page.locator("body")).not_to_contain_text("请在签约期限内")
    _shot(page, "records")

    # ---- 查看详情 → the viewer: pages as images, 打印 and 保存
    subsidy_card.get_by_role("button", name="查看详情").tap()
    expect(page).to_have_url(f"{live_url}/h5/signing/{setup['subsidy']}/view/?from=records")
    expect(page.locator("#viewer-title")).to_have_text(re.compile("租金补贴协议$"))
    expect(page.locator("#viewer-status")).to_have_text("已盖章")
    pdf = f"/api/v1/signing/agreements/{setup['subsidy']}/document/"
    print_link = page.get_by_role("link", name=re.compile("^打印"))
    save_link = page.get_by_role("link", name=re.compile("^保存"))
    expect(print_link).to_have_attribute("href", pdf)
    expect(save_link).to_have_attribute("href", f"{pdf}?download=1")
    first = page.locator(".anju-viewer__page img").first
    expect(first).to_have_js_property("complete", True)
    assert first.evaluate("img => img.naturalWidth") > 1000  # drawn, not broken
    pages = page.locator(".anju-viewer__page")
    count = pages.count()
    assert count >= 2
    expect(pages.last.locator("figcaption")).to_have_text(f"第 {count} 页 / 共 {count} 页")
    pages.last.scroll_into_view_if_needed()
    expect(pages.last.locator("img")).to_have_js_property("complete", True)
    assert pages.last.locator("img").evaluate("img => img.naturalWidth") > 1000
    assert page.request.get(pdf).body().startswith(b"%PDF")
    with page.expect_download() as saved:
        save_link.tap()
    assert saved.value.suggested_filename.endswith(".pdf")
    _shot(page, "viewer")
    page.get_by_role("link", name="‹ 签约记录").tap()
    expect(page).to_have_url(f"{live_url}/h5/me/leases/")

    # ---- once approved, the lease reads 已盖章 too, and its receipt is one tap away
    orm(_approve, setup["lease_agreement"])
    page.reload()
    expect(lease_card.locator(".anju-badge")).to_have_text("已盖章")
    # Three buttons: each label on one line, inside its button (a fourth row if need be).
    buttons = lease_card.locator(".anju-agreement__ops .weui-btn")
    expect(buttons).to_have_text(["查看详情", "押金收据", "签约证据包"])
    for fits in buttons.evaluate_all(
        "bs => bs.map(b => b.scrollWidth <= b.clientWidth && b.getClientRects().length === 1"
        " && b.offsetHeight < 2 * parseFloat(getComputedStyle(b).lineHeight))"
    ):
        assert fits
    lease_card.get_by_role("button", name="押金收据").tap()
    expect(page).to_have_url(
        f"{live_url}/h5/signing/{setup['lease_agreement']}/receipt/?from=records"
    )
    expect(page.locator("#viewer-title")).to_have_text("押金收据")
    expect(page.get_by_role("link", name=re.compile("^打印"))).to_have_attribute(
        "href", f"/api/v1/lease/{setup['lease']}/receipt/"
    )
    receipt = page.locator(".anju-viewer__page img").first
    expect(receipt).to_have_js_property("complete", True)
    assert receipt.evaluate("img => img.naturalWidth") > 1000
    page.get_by_role("link", name="查看合同").tap()
    expect(page.locator("#viewer-title")).to_have_text(re.compile("租赁合同$"))
    expect(page.locator("#viewer-status")).to_have_text("已盖章")

    # ---- 网上签约: nothing waits to be signed, so no 「请在签约期限内」; the numbers to call
    page.goto("/h5/signing/")
    expect(
        page.locator(f'#agreements article[data-agreement-id="{setup["subsidy"]}"]')
    ).to_be_visible()
    expect(page.locator("#tip-deadline")).to_be_hidden()
    expect(page.locator("#signing-tips")).to_contain_text(
        "请拨打咨询电话 0755-23619344、0755-82559564"
    )


def test_the_pages_time_format_is_the_servers(page, live_url):
    page.goto("/h5/login/")
    # The module every page formats with; the browser suite serves unhashed names (DEBUG).
    page.evaluate("import('/static/h5/lib/format.js').then((m) => { window.fmtUnderTest = m; })")
    for value, seconds in (
        (datetime(2026, 12, 4, 17, 8, tzinfo=UTC), False),  # 01:08 on the 5th in Shanghai
        (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), False),  # midnight, a new year
        (datetime(2026, 1, 5, 1, 3, 9, tzinfo=UTC), True),
    ):
        shown = page.evaluate(
            "([v, s]) => window.fmtUnderTest.dateTime(v, { seconds: s })",
            [value.isoformat(), seconds],
        )
        assert shown == datetime_zh(value, seconds=seconds)
    assert page.evaluate("window.fmtUnderTest.dateTime(null)") == ""
