"""Issue 15 item 7: a reviewer's first login binds an authenticator (QR code, one code) before
any admin page opens, the review page among them; at the next login the admin asks for the
code. In Chinese, at 1280 px, under the Content-Security-Policy (the page fixture fails on
any violation)."""

from __future__ import annotations

import base64

import pytest
from django_otp.oath import totp

from tests.browser.test_admin_agreement_list import _agreements, _signed

pytestmark = pytest.mark.browser


def _device_key() -> bytes:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.get(user__username="reviewer", confirmed=True).bin_key


def _throttle_reset() -> None:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    for device in TOTPDevice.objects.all():
        device.throttle_reset()


def test_a_reviewer_binds_an_authenticator_before_the_review_page(page, orm, screenshot):
    from selection.demo import STAFF_PASSWORD

    orm(_agreements)
    agreement_id = orm(_signed)
    review = f"/admin/signing/agreement/{agreement_id}/review/"
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"/admin/login/?next={review}")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: "/admin/otp/setup/" in url)
    screenshot("admin_otp_setup")
    body = page.inner_text("body")
    assert "绑定两步验证" in body and "审核员、主管" in body and "扫描下面的二维码" in body
    assert page.evaluate("document.getElementById('otp-qr').naturalWidth") > 100
    # The password alone does not open the review page.
    page.goto(review)
    page.wait_for_url(lambda url: "/admin/otp/setup/" in url)
    assert "手写签名" not in page.inner_text("body")
    assert "家庭与账号" not in page.inner_text("body")

    secret = page.inner_text("#otp-secret").replace(" ", "")
    key = base64.b32decode(secret)
    wrong = f"{(totp(key) + 1) % 1_000_000:06d}"
    page.fill("#id_code", wrong)
    page.click("input[type=submit]")
    assert "验证码不正确或已过期" in page.inner_text(".errornote")
    orm(_throttle_reset)  # django-otp makes the next try wait after a failure
    page.fill("#id_code", f"{totp(key):06d}")
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: url.endswith(review))
    assert "手写签名" in page.inner_text("body")
    assert "两步验证已绑定" in page.inner_text(".messagelist")

    # Log out; the next login asks for the code (the next 30-second step's: each is good once).
    page.click("#logout-form button")
    page.goto(f"/admin/login/?next={review}")
    page.fill("#id_username", "reviewer")
    page.fill("#id_password", STAFF_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: "/admin/otp/?" in url)
    screenshot("admin_otp_verify")
    assert page.get_attribute("input[type=submit]", "value") == "验证并登录"
    assert "请打开手机上的验证器" in page.inner_text("body")
    assert "家庭与账号" not in page.inner_text("body")  # no app list before the code
    page.fill("#id_code", f"{totp(orm(_device_key), drift=1):06d}")
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: url.endswith(review))
    assert "手写签名" in page.inner_text("body")
