"""Login on a phone, end to end: ID number, the SMS code the console provider 'sent', home."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from playwright.sync_api import expect

from accounts.models import Applicant, DeviceSession
from accounts.services import device_session_start
from core.context import RequestContext
from sms.models import DevInboxMessage, SmsMessage
from sms.services import sms_message_deliver
from tests.factories import FamilyFactory

pytestmark = pytest.mark.browser

CODE_IN_TEXT = re.compile(r"验证码为(\d{6})")
COUNTDOWN = re.compile(r"^重新获取\((\d+)s\)$")


def latest_code(phone: str) -> str:
    """The code in the newest message the console provider wrote for `phone`. Login codes
    are the outbox worker's to deliver (sms_code_send's `conceal`): the test plays the
    worker for this phone's codes first, on the server's database."""
    for message_id in SmsMessage.objects.filter(
        phone=phone, kind="verify_code", status=SmsMessage.Status.QUEUED
    ).values_list("pk", flat=True):
        sms_message_deliver(message_id=message_id)
    message = DevInboxMessage.objects.filter(phone=phone).order_by("-id").first()
    assert message is not None, f"the server sent no SMS to {phone}"
    found = CODE_IN_TEXT.search(message.text)
    assert found, message.text
    return found.group(1)


def request_code(page, id_number: str) -> None:
    page.goto("/h5/login/")
    page.get_by_label("身份证号码").fill(id_number)
    page.get_by_role("button", name="获取验证码", exact=True).tap()
    expect(page.locator("#send-code")).to_have_text(COUNTDOWN)
    expect(page.locator("#form-info")).to_contain_text("验证码已发送至登记的手机号码")


def log_in(page, orm, applicant: Applicant) -> None:
    request_code(page, applicant.id_number)
    page.get_by_label("短信验证码").fill(orm(latest_code, applicant.mobile))
    page.get_by_role("button", name="登录", exact=True).tap()
    expect(page).to_have_url(re.compile(r"/h5/$"))


def test_family_logs_in_with_the_sms_code_and_sees_its_home(page, live_url, orm, screenshot):
    family = orm(FamilyFactory, rank=128, main_applicant__real_name="陈安居")
    applicant = family.main_applicant

    page.goto("/h5/login/")
    expect(page).to_have_title("登录 · 安居")
    page.get_by_label("身份证号码").fill(applicant.id_number)
    page.get_by_role("button", name="获取验证码", exact=True).tap()

    # The resend countdown starts from the API's resend_after and counts down.
    send = page.locator("#send-code")
    expect(send).to_have_text(COUNTDOWN)
    expect(send).to_be_disabled()
    first = send.text_content()
    cooldown = settings.SMS["RESEND_COOLDOWN_SECONDS"]
    assert cooldown - 5 < int(COUNTDOWN.match(first).group(1)) <= cooldown
    expect(send).not_to_have_text(first)
    later = int(COUNTDOWN.match(send.text_content()).group(1))
    assert later < int(COUNTDOWN.match(first).group(1))
    expect(page.locator("#form-info")).to_contain_text("验证码已发送至登记的手机号码")
    screenshot("login")

    page.get_by_label("短信验证码").fill(orm(latest_code, applicant.mobile))
    page.get_by_role("button", name="登录", exact=True).tap()

    expect(page).to_have_url(f"{live_url}/h5/")
    expect(page.get_by_role("heading", name="您好，陈安居")).to_be_visible()
    expect(page.locator("#family-rank")).to_have_text("128")
    expect(page.get_by_text(applicant.id_number_masked)).to_be_visible()
    expect(page.get_by_text(applicant.mobile_masked)).to_be_visible()
    expect(page.get_by_text("一房一厅、两房一厅")).to_be_visible()
    for name, href in [
        ("网上选房", "/h5/selection/"),
        ("网上签约", "/h5/signing/"),
        ("我的选房结果", "/h5/selection/result/"),
        ("房源信息播报", "/h5/broadcast/"),
    ]:
        expect(page.get_by_role("link", name=re.compile(f"^{name}"))).to_have_attribute(
            "href", href
        )
    screenshot("home")

    page.get_by_role("button", name="退出登录").tap()
    expect(page).to_have_url(f"{live_url}/h5/login/")
    page.goto("/h5/")
    expect(page).to_have_url(re.compile(r"/h5/login/"))


def test_a_missing_id_number_is_said_once_beside_its_field(page, live_url):
    page.goto("/h5/login/")
    page.get_by_role("button", name="登录", exact=True).tap()
    expect(page.locator("#id_number-error")).to_have_text("请输入身份证号码")
    expect(page.get_by_label("身份证号码")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#form-error")).to_be_hidden()  # not the same words a second time


def test_wrong_code_shows_the_error_and_stays_on_the_login_page(page, live_url, orm):
    applicant = orm(FamilyFactory).main_applicant
    request_code(page, applicant.id_number)
    wrong = "000000" if orm(latest_code, applicant.mobile) != "000000" else "111111"

    page.get_by_label("短信验证码").fill(wrong)
    page.get_by_role("button", name="登录", exact=True).tap()

    left = settings.SMS["MAX_ATTEMPTS"] - 1
    expect(page.locator("#form-error")).to_have_text(f"验证码错误，还可尝试{left}次")
    expect(page.locator("#code-error")).to_have_text("验证码不正确")
    expect(page.get_by_label("短信验证码")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("button", name="登录", exact=True)).to_be_enabled()
    expect(page).to_have_url(f"{live_url}/h5/login/")
    assert orm(DeviceSession.objects.count) == 0


def _another_device_logs_in(applicant_pk: int) -> None:
    user = Applicant.objects.get(pk=applicant_pk).user
    device_session_start(
        user=user,
        session_key="another-phone",
        provider="dev_sms",
        ctx=RequestContext(ip="10.0.0.2", user_agent="another phone"),
    )


def test_login_on_another_device_sends_this_phone_to_login_with_the_reason(page, live_url, orm):
    applicant = orm(FamilyFactory).main_applicant
    log_in(page, orm, applicant)

    orm(_another_device_logs_in, applicant.pk)
    # The page is told at once (its account socket closes with 4409, test_device_takeover.py);
    # its next request, a reload here, goes to the login page with the reason.
    expect(page.locator("#session-ended")).to_contain_text("您的账号已在其他设备登录")
    page.reload()

    expect(page).to_have_url(f"{live_url}/h5/login/?reason=replaced")
    expect(page.locator("#notice")).to_contain_text("您的账号已在其他设备登录")
