"""The public page a sealed agreement points to (「验证方式：访问…/verify/<验证码>核验本协议」,
printed on every page of the PDF), walked on a phone that has never logged in — a landlord or
a bank clerk handed the PDF: the code's agreement with its status and times, then the PDF
uploaded and checked (its signatures, and whether it is byte for byte the stored one), a file
that is not a PDF, and a code that names nothing. Every state is photographed, so axe-core and
the Chinese-text check read each."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import CLIPPED, RESULTS
from tests.browser.test_evidence_package import _sealed_at_now, _sealed_pdf

pytestmark = pytest.mark.browser


def _code(agreement_id: int) -> str:
    from signing.models import Agreement

    return Agreement.objects.get(pk=agreement_id).verification_code


def _shot(page, name: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    page.screenshot(path=str(RESULTS / f"verify_{name}.png"), full_page=True)
    assert page.evaluate(CLIPPED) == [], name


def test_a_phone_that_never_logged_in_checks_a_sealed_pdf(page, live_url, orm, tmp_path):
    world = orm(_sealed_at_now)
    code = orm(_code, world["sealed"])
    pdf = tmp_path / "协议.pdf"
    pdf.write_bytes(orm(_sealed_pdf, world["sealed"]))

    page.goto(f"/verify/{code}/")
    expect(page.get_by_text(f"协议验证 · 验证码 {code}")).to_be_visible()
    expect(page.locator("#verify-status")).to_have_text("已盖章")
    digest = page.locator(".anju-verify__hash")
    expect(digest).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
    expect(digest).to_have_attribute("translate", "no")
    _shot(page, "code")

    page.get_by_label("协议PDF文件").set_input_files(str(pdf))
    page.get_by_role("button", name="上传PDF核验签名").tap()
    result = page.locator("#verify-result")
    expect(result).to_contain_text("有效（2 个签名）")
    expect(result).to_contain_text("与系统存档一致")
    expect(result).to_contain_text(re.compile(r"是（.+）"))
    _shot(page, "checked")

    other = tmp_path / "照片.pdf"
    other.write_bytes(b"GIF89a not a pdf")
    page.get_by_label("协议PDF文件").set_input_files(str(other))
    page.get_by_role("button", name="上传PDF核验签名").tap()
    expect(page.get_by_text("不是PDF文件")).to_be_visible()
    expect(page.locator("#verify-result")).to_have_count(0)
    _shot(page, "not_a_pdf")

    page.goto("/verify/ZZZZZZZZZZZZ/")
    expect(page.get_by_role("heading", name="未找到该验证码对应的协议")).to_be_visible()
    _shot(page, "unknown_code")
