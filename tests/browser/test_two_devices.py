"""Guide 000's lease on two devices: a logged-in desktop and a phone that has never logged in.

The desktop (1280×800) has done 完善承租信息 and shows the lease page. For each of the three
stages — 人脸识别, 签订合同, 押金缴纳 — the phone (390×844 ×3, touch) opens the URL that
zxing-cpp decodes from a screenshot of the desktop's QR code, as WeChat's scanner would (for
押金缴纳 that is WeChat Pay's Native code_url, the development cashier here). The phone never
logs in (the code starts its signing session; the payment code needs none), so the desktop is
never logged out: it hears each phone step live and moves on to the next stage's code by
itself, without a reload, ending at 「签约申请已提交」. The phone says only what is true about
the desktop.

Then the refusals a leaked screenshot meets: a stranger's phone sees masked details only and
cannot pass the face check, the applicant's phone takes over (the stranger's page says so at
once), an expired code shows a clear page, another applicant's login is refused."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import DeviceSession
from signing.models import Agreement, DepositPayment, Lease, QrTicket, SigningSession
from tests.browser.conftest import PHONE, RESULTS
from tests.browser.test_lease_flow import NAME, _allocated_just_now
from tests.browser.test_signing_flow import (
    Finger,
    _agreement_open_now,
    _expect_done,
    _logged_in_session,
    _sign_code,
    decode_qr,
    write_lin_an,
)
from tests.signing.lease_worlds import ACCOUNT, photo_bytes

pytestmark = pytest.mark.browser


def _lease_info_done(applicant_pk: int) -> Lease:
    """完善承租信息 done on the desktop (tests/browser/test_lease_flow.py walks that page)."""
    from accounts.models import Applicant
    from core.context import RequestContext
    from signing.lease import services as leases

    applicant = Applicant.objects.get(pk=applicant_pk)
    ctx = RequestContext(ip="10.0.0.8", user_agent="desktop")
    now = timezone.now()
    lease = leases.lease_start(applicant=applicant, ctx=ctx, now=now)
    for side in ("front", "back"):
        leases.lease_card_photo_upload(
            lease=lease,
            applicant=applicant,
            side=side,
            data=photo_bytes(),
            filename="card.jpg",
            declared_type="image/jpeg",
            ctx=ctx,
            now=now,
        )
    return leases.lease_bank_confirm(
        lease=lease,
        applicant=applicant,
        bank="ICBC",
        account_number=ACCOUNT,
        account_holder=applicant.real_name,
        ctx=ctx,
        now=now,
    )


def _log_in_desktop(desktop, orm, live_url, applicant_pk: int) -> str:
    key = orm(_logged_in_session, applicant_pk)
    desktop.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": key, "url": live_url}]
    )
    return key


def _scan(desktop, phone, live_url: str, title: str) -> str:
    """The phone scans the desktop's screen: the URL in the code it shows for `title`."""
    expect(desktop.locator("#qr-title")).to_have_text(title)
    code = desktop.locator("#qr-img")
    expect(code).to_be_visible()
    expect(code).to_have_js_property("complete", True)
    url = decode_qr(code)
    assert url.startswith(f"{live_url}/s/"), url
    phone.goto(url)
    return url


def test_the_lease_on_a_desktop_and_a_phone_that_never_logs_in(page, desktop, live_url, orm):
    setup = orm(_allocated_just_now)
    applicant = setup.applicant
    lease = orm(_lease_info_done, applicant.pk)
    lid, aid = lease.pk, lease.agreement_id
    session_key = _log_in_desktop(desktop, orm, live_url, applicant.pk)
    phone = page
    phone.clock.install()
    RESULTS.mkdir(exist_ok=True)

    # ---- the desktop: the lease at 人脸识别, with its code
    desktop.goto(f"/h5/lease/{lid}/")
    expect(desktop.locator("#stepper .anju-flowbar__item_on")).to_have_text("人脸识别")
    expect(desktop.locator("#live-state")).to_have_text("实时")
    expect(desktop.locator("#progress li").first).to_have_text("等待手机扫码")
    desktop.evaluate("window.notReloaded = true")
    desktop.screenshot(path=str(RESULTS / "two-devices-face-qr.png"))

    # ---- 人脸识别 on the phone
    _scan(desktop, phone, live_url, "人脸识别")
    expect(phone).to_have_url(f"{live_url}/h5/signing/{aid}/sign/?until=face")
    _expect_done(desktop, "已扫码")
    expect(phone.locator("#step-contract")).to_contain_text(f"{NAME[0]}*")
    phone.get_by_role("button", name="下一步").tap()
    _expect_done(desktop, "查看电子合同")
    phone.get_by_label("点击开始，即表示已阅读并同意").check()
    phone.get_by_role("button", name="开始", exact=True).tap()
    expect(phone.locator("#identity-name")).to_have_text(f"{NAME[0]}*")
    phone.get_by_label("已阅读并同意", exact=True).check()
    phone.get_by_role("button", name="确定", exact=True).tap()
    _expect_done(desktop, "核对实名信息")
    phone.get_by_role("button", name="开始人脸识别").tap()
    expect(phone).to_have_url(re.compile(r"/dev/face/devface_"))
    phone.get_by_role("button", name="模拟通过").tap()
    expect(phone.locator("#closed-title")).to_have_text("人脸识别已完成，请回到电脑端继续")
    expect(phone.locator("#closed-desc")).to_have_text("电脑端页面将自动进入「签订合同」。")
    phone.screenshot(path=str(RESULTS / "two-devices-phone-face-done.png"))

    # ---- 签订合同: the desktop moved on by itself — what the phone said is true
    expect(desktop.locator("#stepper .anju-flowbar__item_on")).to_have_text("签订合同")
    _scan(desktop, phone, live_url, "签订合同")
    expect(phone).to_have_url(f"{live_url}/h5/signing/{aid}/sign/")
    _expect_done(desktop, "已扫码")
    finger = Finger(phone)
    reader = phone.locator("#reader")
    expect(reader).to_contain_text("1201")  # the unit, shown now that the face check passed
    phone.clock.fast_forward("00:20")
    finger.scroll_to_end(reader)
    phone.get_by_role("button", name="阅读并确认").tap()
    _expect_done(desktop, "阅读并确认合同")
    write_lin_an(phone, finger)
    phone.locator("#signature-ok").tap()
    _expect_done(desktop, "手写签名")
    phone.get_by_role("button", name="获取验证码").tap()
    expect(phone.locator("#sms-info")).to_have_text("验证码已发送至登记的手机号码，请注意查收。")
    phone.get_by_label("验证码").fill(orm(_sign_code, applicant.mobile))
    phone.get_by_role("button", name="提交").tap()
    expect(phone.locator("#done-title")).to_have_text("合同已签署，请继续缴纳押金", timeout=30_000)
    expect(phone.locator("#done-desc")).to_have_text(
        "电脑端页面将自动进入「押金缴纳」，请使用本机扫描电脑端的押金缴纳二维码。"
    )
    expect(phone.locator("#done-next")).to_be_hidden()
    phone.screenshot(path=str(RESULTS / "two-devices-phone-signed.png"))

    # ---- 押金缴纳: the desktop moved on again and shows WeChat Pay's Native code (the
    # payment order's code_url, the development cashier here); the phone scans it and pays
    expect(desktop.locator("#stepper .anju-flowbar__item_on")).to_have_text("押金缴纳")
    expect(desktop.locator("#qr-title")).to_have_text("押金缴纳")
    expect(desktop.locator("#deposit-amount")).to_have_text("¥2938.00")
    code = desktop.locator("#qr-img")
    expect(code).to_be_visible()
    expect(code).to_have_js_property("complete", True)
    code_url = decode_qr(code)
    payment = orm(DepositPayment.objects.get, lease_id=lid)
    assert code_url == f"{live_url}/dev/pay/{payment.prepay_id}/", code_url
    phone.goto(code_url)
    expect(phone.locator("#pay-amount")).to_have_text("¥2938.00")
    phone.get_by_role("button", name="确认支付").tap()
    # Back from the cashier without a login: the phone is pointed at the desktop.
    expect(phone.locator("#other-title")).to_have_text("请回到电脑端查看支付结果")
    phone.screenshot(path=str(RESULTS / "two-devices-phone-paid.png"))

    # ---- the desktop: submitted, never reloaded, still logged in
    expect(desktop.locator("#review-title")).to_contain_text("签约申请已提交")
    expect(desktop.locator("#stepper .anju-flowbar__item_on")).to_have_text("待审核")
    assert desktop.evaluate("window.notReloaded") is True
    desktop.screenshot(path=str(RESULTS / "two-devices-review.png"))
    assert orm(Agreement.objects.get, pk=aid).status == Agreement.Status.SIGNED
    assert orm(DepositPayment.objects.get, lease_id=lid).status == DepositPayment.Status.PAID
    active = orm(lambda: list(DeviceSession.objects.filter(ended_at__isnull=True)))
    assert [d.session_key for d in active] == [session_key]
    desktop.goto("/h5/me/")
    expect(desktop).to_have_url(f"{live_url}/h5/me/")
    assert phone.request.get("/api/v1/me/").status == 401  # the phone never logged in


def _new_phone(page, live_url) -> Any:
    """Another phone (its own browser context: no cookies)."""
    context = page.context.browser.new_context(base_url=live_url, **PHONE)
    context.set_default_timeout(10_000)
    return context.new_page()


def _expire(agreement_id: int) -> None:
    QrTicket.objects.filter(agreement_id=agreement_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    SigningSession.objects.filter(agreement_id=agreement_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_leaked_screenshot_a_takeover_an_expired_code(page, desktop, live_url, orm):
    setup = orm(_agreement_open_now)
    aid = setup.agreement_id
    _log_in_desktop(desktop, orm, live_url, setup.applicant.pk)
    desktop.goto(f"/h5/signing/{aid}/qr/")
    expect(desktop.locator("#live-state")).to_have_text("实时")
    url = decode_qr(desktop.locator("#qr-img"))

    # A stranger's phone with the screenshot: masked details, and the face check fails.
    stranger = _new_phone(page, live_url)
    stranger.goto(url)
    expect(stranger.locator("#step-contract")).to_contain_text("林*")
    stranger.get_by_role("button", name="下一步").tap()
    stranger.get_by_label("点击开始，即表示已阅读并同意").check()
    stranger.get_by_role("button", name="开始", exact=True).tap()
    expect(stranger.locator("#identity-name")).to_have_text("林*")
    expect(stranger.locator("#identity-id")).to_have_text(setup.applicant.id_number_masked)
    stranger.get_by_label("已阅读并同意", exact=True).check()
    stranger.get_by_role("button", name="确定", exact=True).tap()
    stranger.get_by_role("button", name="开始人脸识别").tap()
    stranger.get_by_role("button", name="模拟不通过").tap()
    # On a busy machine this can take the slow path the page is built for: the provider's
    # callback gives up after 5 s and the page then asks for the result (up to 5 × 2 s).
    expect(stranger.get_by_role("dialog")).to_contain_text("人脸识别未通过，请重试", timeout=20_000)
    stranger.get_by_role("dialog").get_by_role("button", name="知道了").tap()
    expect(stranger.locator("#reader")).to_be_hidden()
    assert orm(Agreement.objects.get, pk=aid).step == Agreement.Step.IDENTITY_CONFIRMED

    # The applicant's own phone opens the same code: it takes over; the stranger is told.
    page.goto(url)
    expect(page.locator("#step-face")).to_be_visible()
    expect(stranger.locator("#closed-title")).to_have_text("本机已停止签约")
    expect(stranger.locator("#closed-desc")).to_contain_text("已在另一部手机上打开")
    stranger.screenshot(path=str(RESULTS / "two-devices-taken-over.png"))
    expect(stranger.locator("#face-start")).to_be_hidden()

    # The code expires: the phone's next step is refused plainly, and so is the code.
    orm(_expire, aid)
    page.reload()
    expect(page.locator("#open-title")).to_have_text("无法继续签约")
    expect(page.locator("#open-desc")).to_contain_text("已失效")
    late = _new_phone(page, live_url)
    late.goto(url)
    expect(late.locator("#open-title")).to_have_text("二维码已过期")
    expect(late.locator("#open-desc")).to_have_text("二维码已过期，请在电脑端刷新二维码后重新扫码")
    late.screenshot(path=str(RESULTS / "two-devices-expired.png"))
    for other in (stranger, late):
        other.context.close()
