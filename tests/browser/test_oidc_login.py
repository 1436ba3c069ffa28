"""广东省统一身份认证平台登录 in Chromium, against the fake platform the live server is set up
with (tests/browser/conftest.py `oidc_issuer`; the adapter's own tests are
tests/accounts/test_oidc*.py):

- a family logs in on its phone through the platform and is home;
- a person the platform knows but who is not a registered applicant is told so in Chinese;
- a desktop logged in with the SMS code, then a phone that has never logged in uses the
  platform: the phone is asked first (取消 leaves the desktop logged in), then 继续登录 ends
  the desktop's login at once, on its screen.

Every state is photographed (axe-core and the Chinese-text check run on each)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import RESULTS
from tests.browser.test_device_takeover import NOTICE, _log_in
from tests.factories import FamilyFactory

pytestmark = pytest.mark.browser

PLATFORM = "广东省统一身份认证平台登录"


def _shot(tab, name: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(RESULTS / f"oidc_{name}.png"), full_page=True)


def _platform_person(oidc_issuer, applicant=None, *, id_number: str = "", name: str = "") -> None:
    """The person who logs in at the platform: `applicant`, or someone else."""
    oidc_issuer.identity = {
        "sub": f"gd-{applicant.pk if applicant else id_number}",
        "id_card_no": applicant.id_number if applicant else id_number,
        "name": applicant.real_name if applicant else name,
    }


def test_a_family_logs_in_through_the_platform(page, live_url, orm, oidc_issuer):
    family = orm(FamilyFactory, rank=12, main_applicant__real_name="周安居")
    _platform_person(oidc_issuer, family.main_applicant)

    page.goto("/h5/login/")
    platform = page.get_by_role("button", name=PLATFORM)
    expect(platform).to_be_visible()
    _shot(page, "login_page")
    platform.tap()
    expect(page).to_have_url(f"{live_url}/h5/")
    expect(page.locator("body")).to_contain_text("周安居")
    _shot(page, "home")
    assert oidc_issuer.authorize_requests[-1]["redirect_uri"] == f"{live_url}/auth/oidc/callback/"


def test_someone_who_is_not_an_applicant_is_told_in_chinese(page, live_url, oidc_issuer):
    _platform_person(oidc_issuer, id_number="11010519491231002X", name="路人甲")

    page.goto("/h5/login/")
    page.get_by_role("button", name=PLATFORM).tap()
    expect(page).to_have_url(re.compile(r"/auth/oidc/callback/"))
    heading = page.get_by_role("heading", level=2)
    expect(heading).to_be_visible()
    expect(page.locator(".anju-error-code [translate=no]")).to_have_text(
        "identity_unknown_applicant"
    )
    _shot(page, "not_an_applicant")
    # Not logged in: the way on is the login page.
    page.get_by_role("button", name="返回登录").tap()
    expect(page).to_have_url(f"{live_url}/h5/login/")


def test_the_platform_login_on_a_phone_asks_then_ends_the_desktops_login(
    page, desktop, live_url, orm, oidc_issuer
):
    family = orm(FamilyFactory, rank=7, main_applicant__real_name="吴安居")
    applicant = family.main_applicant
    _platform_person(oidc_issuer, applicant)
    phone = page

    _log_in(desktop, orm, applicant, press=lambda button: button.click())
    expect(desktop).to_have_url(f"{live_url}/h5/")
    expect(desktop.locator("body")).to_contain_text("吴安居")

    # The phone has never logged in: the platform, then the question, the desktop untouched.
    phone.goto("/h5/login/")
    phone.get_by_role("button", name=PLATFORM).tap()
    expect(phone.get_by_role("heading", name="该账号已在其他设备登录")).to_be_visible()
    expect(phone.locator("#login-confirm")).to_contain_text("在此设备继续登录，另一设备将退出")
    _shot(phone, "asked")
    expect(desktop.locator("#session-ended")).to_have_count(0)

    # 取消: back to the login page; the desktop is still logged in.
    phone.get_by_role("button", name="取消").tap()
    expect(phone).to_have_url(f"{live_url}/h5/login/")
    desktop.reload()
    expect(desktop).to_have_url(f"{live_url}/h5/")
    expect(desktop.locator("body")).to_contain_text("吴安居")

    # Again, and 继续登录: the phone is home, the desktop is told at once.
    phone.get_by_role("button", name=PLATFORM).tap()
    phone.get_by_role("button", name="继续登录").tap()
    expect(phone).to_have_url(f"{live_url}/h5/")
    expect(phone.locator("body")).to_contain_text("吴安居")
    notice = desktop.locator("#session-ended")
    expect(notice).to_contain_text(NOTICE)
    _shot(phone, "phone_home")
    desktop.screenshot(path=str(RESULTS / "oidc_desktop_ended.png"))
