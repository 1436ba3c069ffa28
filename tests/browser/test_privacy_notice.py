"""A first login on a phone goes through 《个人信息保护政策》 before the home page; 「我的」
offers the personal-data download (issue 15 item 5)."""

from __future__ import annotations

import io
import json
import re
import zipfile

import pytest
from playwright.sync_api import expect

from accounts.models import Applicant
from signing.agreements.seed import texts_seed
from tests.browser.test_login import latest_code, request_code
from tests.factories import FamilyFactory

pytestmark = pytest.mark.browser


def test_a_first_login_acknowledges_the_privacy_notice_then_downloads_its_data(
    page, live_url, orm, screenshot
):
    orm(texts_seed)
    family = orm(
        FamilyFactory,
        rank=131,
        main_applicant__real_name="林隐私",
        main_applicant__privacy_version=0,
    )
    applicant = family.main_applicant

    request_code(page, applicant.id_number)
    page.get_by_label("短信验证码").fill(orm(latest_code, applicant.mobile))
    page.get_by_role("button", name="登录", exact=True).tap()
    expect(page).to_have_url(re.compile(r"/h5/privacy/\?next=/h5/$"))
    expect(page.locator("#privacy-title")).to_have_text("《个人信息保护政策》")
    expect(page.locator("#privacy-body")).to_contain_text("身份证号码")
    screenshot("privacy-notice")

    # Not ticked: told so, nothing recorded.
    page.get_by_role("button", name="同意并继续").tap()
    expect(page.locator("#privacy-error")).to_have_text("请先勾选「我已阅读并同意」")
    assert orm(lambda: Applicant.objects.get(pk=applicant.pk).privacy_version) == 0

    page.locator("label[for=privacy-agree]").tap()
    page.get_by_role("button", name="同意并继续").tap()
    expect(page).to_have_url(re.compile(r"^https?://[^/]+/h5/$"))  # not "?next=/h5/"
    assert orm(lambda: Applicant.objects.get(pk=applicant.pk).privacy_version) == 1

    page.goto("/h5/me/")
    expect(page).to_have_url(re.compile(r"^https?://[^/]+/h5/me/$"))
    link = page.locator("#personal-data-download")
    expect(link).to_contain_text("下载我的个人信息")
    screenshot("me-personal-data")
    with page.expect_download() as caught:
        link.tap()
    download = caught.value
    assert download.suggested_filename.endswith(".zip")
    with open(download.path(), "rb") as f:
        archive = zipfile.ZipFile(io.BytesIO(f.read()))
    data = json.loads(archive.read("personal-data.json"))
    assert data["applicant"]["real_name"] == "林隐私"
    assert data["applicant"]["id_number"] == applicant.id_number
    assert [ack["version"] for ack in data["privacy_acknowledgements"]] == [1]
