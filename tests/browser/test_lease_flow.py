"""租赁合同签约 (guide 000, section 三) end to end on a phone, with touch.

A family that has just been allocated a unit logs in on the phone and opens 我的选房结果;
「去签约」 starts its lease (/h5/lease/ → /h5/lease/<id>/). At 完善承租信息 it changes the
registered mobile with the SMS code sent to the new number, fills in 租金托收 (the API's
refusal shown next to the form first: no card photos yet), uploads both card photos and taps
「提交，下一步」. The lease page then shows the QR code of each stage in turn, and the phone
opens each code's URL in a second tab (as scanning it would): 人脸识别 (the phone flow, which
stops after the face check with ?until=face; the development provider's 「模拟通过」), 签订合同
(the contract read to its end, one handwritten character per box, the SMS code, 「提交」),
押金缴纳 (WeChat Pay Native: the lease page shows the payment order's code_url as a QR code,
decoded from the screen and opened: the development cashier's 「确认支付」, whose signed
notification reaches the live server over HTTP, then back to 「押金缴纳成功，签约申请已提交」).
The lease page hears each stage finish on its QR progress socket and moves on without a
reload, ending at 「签约申请已提交」. Then 「我的」 → 网上签约记录 → 「查看详情」, and once staff
approve, the materials to download.

Time: the allocation is moved to a few minutes ago (tests/signing/lease_worlds.py pins it in
March 2026), so the signing window includes now; the phone's clock is Playwright's, moved
forward while reading and between the points of a stroke. Nothing sleeps."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Applicant, User
from selection.models import Allocation
from signing.agreements import services
from signing.models import Agreement, DepositPayment, Lease, PaymentNotification, QrTicket
from tests.browser.conftest import PHONE, RESULTS
from tests.browser.test_login import COUNTDOWN, latest_code, log_in
from tests.browser.test_signing_flow import (
    Finger,
    _expect_done,
    _sign_code,
    decode_qr,
    write_lin_an,
)
from tests.factories import FamilyFactory
from tests.signing.lease_worlds import ACCOUNT, lease_info_filled, make_lease_world, photo_bytes

pytestmark = pytest.mark.browser

NAME = "林安"  # two characters: the strokes of test_signing_flow.py
NEW_MOBILE = "13912345678"


@dataclass(frozen=True)
class Setup:
    applicant: Applicant
    round_id: int


def _allocated_just_now() -> Setup:
    """make_lease_world's family, its allocation moved to five minutes ago: the lease's
    signing window (from the allocation to 18:00 on the 7th day after it) includes now."""
    world = make_lease_world(name=NAME)
    Allocation.objects.filter(pk=world.allocation.pk).update(
        at=timezone.now() - timedelta(minutes=5)
    )
    return Setup(applicant=world.applicant, round_id=world.allocation.round_id)


def _lease_of(applicant_pk: int) -> Lease:
    return Lease.objects.select_related("agreement").get(
        agreement__family__main_applicant_id=applicant_pk
    )


def _qr_url(live_url: str, agreement_id: int, purpose: str) -> str:
    ticket = QrTicket.objects.filter(agreement_id=agreement_id, purpose=purpose).latest("id")
    return f"{live_url}/s/{ticket.token}"


def _approve(agreement_id: int) -> None:
    reviewer = User.objects.create_user(username="reviewer-lease", is_staff=True)
    services.agreement_approve(agreement_id=agreement_id, actor=reviewer, now=timezone.now())


def _second_tab(page) -> tuple[Any, list[str]]:
    """Another tab of the same phone (same login): where a scanned code opens."""
    tab = page.context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    return tab, errors


def _qr_shown(page, title: str) -> None:
    expect(page.locator("#qr-title")).to_have_text(title)
    expect(page.locator("#qr-img")).to_be_visible()
    expect(page.locator("#qr-code")).to_have_text(re.compile(r"^\S{4} \S{4}$"))


def test_the_signing_list_reads_the_rounds_beside_the_leases(page, orm):
    """A family without a lease yet sees 「租赁合同签约」 one round trip sooner: the rounds
    (which name its allocated unit) are read while the leases are still on their way, not
    after them (issue 16: each page's reads side by side)."""
    setup = orm(_allocated_just_now)
    log_in(page, orm, setup.applicant)
    held: list[Any] = []
    page.route("**/api/v1/lease/", lambda route: held.append(route))  # the answer waits
    with page.expect_request("**/api/v1/lease/"):
        with page.expect_request("**/api/v1/selection/rounds/"):
            page.goto("/h5/signing/")
    # One more round trip to the driver delivers the route it announced with the request.
    expect(page.locator("#lease-new")).to_have_count(0)
    assert len(held) == 1, "the leases' answer is still held"
    held[0].continue_()
    entry = page.locator("#lease-new")
    expect(entry).to_contain_text("3栋1201")
    expect(entry.get_by_role("button", name="去签约")).to_have_attribute("href", "/h5/lease/")
    _lease_section_alone(page, "#lease-new-title")


def _lease_section_alone(page, card_title: str) -> None:
    """网上签约 with a lease to sign and nothing else: 「租赁合同签约」 said once (the section's
    heading; the card is titled with the contract's name), and no 「暂无需要签署的协议」 under
    the card to contradict it."""
    # The contract's own name once the lease started (深圳市公共租赁住房租赁合同, the template's).
    expect(page.locator(card_title)).to_have_text(re.compile("公共租赁住房租赁合同$"))
    expect(page.get_by_role("heading", name="租赁合同签约")).to_have_count(1)
    expect(page.get_by_text("租赁合同签约")).to_have_count(1)
    expect(page.locator("#loading")).to_be_hidden()
    expect(page.get_by_text(re.compile("暂无"))).to_have_count(0)
    expect(page.get_by_role("heading", name="签约信息")).to_be_hidden()


def test_a_started_lease_is_the_one_thing_listed(page, orm):
    setup = orm(_allocated_just_now)
    lid = orm(_lease_started, setup.applicant.pk)  # below
    log_in(page, orm, setup.applicant)
    page.goto("/h5/signing/")
    card = page.locator(f'#leases article[data-lease-id="{lid}"]')
    expect(card.locator(".anju-badge")).to_have_text("待签字")
    expect(card.get_by_role("button", name="去签约")).to_be_visible()
    _lease_section_alone(page, f"#lease-{lid}-title")


def test_nothing_to_sign_is_said_once(page, orm):
    applicant = orm(FamilyFactory).main_applicant
    log_in(page, orm, applicant)
    page.goto("/h5/signing/")
    expect(page.locator("#agreements")).to_have_text("暂无需要签署的协议")
    expect(page.locator("#lease-entry")).to_be_hidden()
    expect(page.get_by_role("heading", name="签约信息")).to_be_visible()


def test_from_the_result_page_to_the_submitted_lease(page, live_url, orm):
    setup = orm(_allocated_just_now)
    applicant = setup.applicant
    page.clock.install()  # the phone's clock: natural, moved on where the test says so
    RESULTS.mkdir(exist_ok=True)

    # ---- logged in on the phone: 我的选房结果 → 「去签约」
    log_in(page, orm, applicant)
    # 网上签约 offers 「租赁合同签约」 as soon as the family holds an allocation.
    page.get_by_role("link", name=re.compile("^网上签约")).tap()
    entry = page.locator("#lease-new")
    expect(entry).to_contain_text("3栋1201")
    expect(entry.get_by_role("button", name="去签约")).to_have_attribute("href", "/h5/lease/")
    page.get_by_role("link", name="‹ 首页").tap()
    page.get_by_role("link", name="我的选房结果").tap()
    expect(page).to_have_url(f"{live_url}/h5/selection/{setup.round_id}/result/")
    expect(page.locator("#result-title")).to_have_text("选房成功")
    page.get_by_role("button", name="去签约").tap()
    expect(page).to_have_url(re.compile(r"/h5/lease/\d+/$"))
    lease = orm(_lease_of, applicant.pk)
    lid, aid = lease.pk, lease.agreement_id
    assert page.url == f"{live_url}/h5/lease/{lid}/"

    # ---- 完善承租信息: the unit, the stepper at its first stage
    expect(page.locator("#stepper .anju-flowbar__item_on")).to_have_text("完善承租信息")
    expect(page.locator("#stepper li")).to_have_text(
        ["完善承租信息", "人脸识别", "签订合同", "押金缴纳", "待审核"]
    )
    expect(page.locator("#unit-label")).to_contain_text("3栋1201")
    expect(page.locator("#unit-rent")).to_have_text("1469.00元")
    expect(page.locator("#unit-deposit")).to_have_text("2938.00元")
    expect(page.locator("#applicant-name")).to_have_text(NAME)
    expect(page.locator("#mobile-masked")).to_have_text(applicant.mobile_masked)
    page.evaluate("window.notReloaded = true")

    # 修改手机号: the code goes to the new number.
    page.get_by_role("button", name="修改手机号").tap()
    page.get_by_label("新手机号").fill(NEW_MOBILE)
    page.locator("#mobile-send").tap()
    expect(page.locator("#mobile-send")).to_have_text(COUNTDOWN)
    expect(page.locator("#mobile-info")).to_have_text("验证码已发送至新手机号码，请注意查收。")
    page.locator("#mobile-code").fill(orm(latest_code, NEW_MOBILE))
    page.get_by_role("button", name="确认修改").tap()
    expect(page.locator("#mobile-masked")).to_have_text("139****5678")
    expect(page.locator("#mobile-form")).to_be_hidden()
    assert orm(Applicant.objects.get, pk=applicant.pk).mobile == NEW_MOBILE

    # 租金托收: the holder is the applicant. Submitted empty, the page names everything still
    # missing at once, each under its own field, without asking the server.
    expect(page.get_by_label("账户名")).to_have_value(NAME)
    submit = page.get_by_role("button", name="提交，下一步")
    bank_posts: list[str] = []
    page.on("request", lambda r: r.url.endswith("/bank/") and bank_posts.append(r.url))
    submit.tap()
    expect(page.locator("#bank-error")).to_have_text("请选择托收银行")
    expect(page.locator("#account-number-error")).to_have_text("请输入银行卡号")
    expect(page.locator("[data-error-for=file]")).to_have_text("请上传银行卡正面和反面照片")
    expect(page.locator("#form-error")).to_have_text("请补全以上信息后再提交")
    expect(page.get_by_label("托收银行")).to_be_focused()
    page.get_by_label("托收银行").select_option(label="中国工商银行")
    page.get_by_label("银行卡号").fill(ACCOUNT)
    submit.tap()
    expect(page.locator("[data-error-for=file]")).to_have_text("请上传银行卡正面和反面照片")
    expect(page.locator("#bank-error")).to_be_hidden()
    assert bank_posts == []

    for side, label in (("front", "银行卡正面"), ("back", "银行卡反面")):
        page.get_by_label(label, exact=True).set_input_files(
            {"name": f"{side}.jpg", "mimeType": "image/jpeg", "buffer": photo_bytes()}
        )
        expect(page.locator(f"#photo-{side}-state")).to_have_text("已上传，点击可重新上传")
        preview = page.locator(f"#photo-{side}-preview")
        expect(preview).to_be_visible()
        expect(preview).to_have_js_property("complete", True)
        assert preview.evaluate("img => img.naturalWidth") > 0
    page.screenshot(path=str(RESULTS / "lease-info.png"), full_page=True)
    submit.tap()

    # ---- 人脸识别: the QR code, opened on the phone; the phone flow stops after the face check
    _qr_shown(page, "人脸识别")
    expect(page.locator("#qr-instruction")).to_have_text("请使用手机微信扫描二维码完成人脸识别")
    expect(page.locator("#stepper .anju-flowbar__item_on")).to_have_text("人脸识别")
    expect(page.locator("#live-state")).to_have_text("实时")
    expect(page.get_by_role("link", name="在本机继续")).to_have_attribute(
        "href", f"/h5/signing/{aid}/sign/?until=face"
    )
    page.screenshot(path=str(RESULTS / "lease-face-qr.png"), full_page=True)
    code = page.locator("#qr-code").inner_text()
    scanner, scanner_errors = _second_tab(page)
    scanner.goto(orm(_qr_url, live_url, aid, "face"))
    expect(scanner).to_have_url(f"{live_url}/h5/signing/{aid}/sign/?until=face")
    _expect_done(page, "已扫码")
    # a logged-in phone that scanned the code shows its 识别码 too, to compare with the screen's
    expect(scanner.locator("#phone-qr-code")).to_have_text(code)
    scanner.get_by_role("button", name="下一步").tap()
    scanner.get_by_label("点击开始，即表示已阅读并同意").check()
    scanner.get_by_role("button", name="开始", exact=True).tap()
    scanner.get_by_label("已阅读并同意", exact=True).check()
    scanner.get_by_role("button", name="确定", exact=True).tap()
    _expect_done(page, "查看电子合同", "核对实名信息")
    scanner.get_by_role("button", name="开始人脸识别").tap()
    expect(scanner).to_have_url(re.compile(r"/dev/face/devface_"))
    scanner.get_by_role("button", name="模拟通过").tap()
    # This phone has the applicant's login: it may go on here instead of back to a computer.
    expect(scanner.locator("#closed-title")).to_have_text("人脸识别已完成")
    expect(scanner.get_by_role("button", name="在本机继续签订合同")).to_have_attribute(
        "href", f"/h5/signing/{aid}/sign/"
    )
    expect(scanner.get_by_role("heading", name="阅读协议")).to_be_hidden()
    scanner.screenshot(path=str(RESULTS / "lease-face-done.png"), full_page=True)
    scanner.get_by_role("button", name="在本机继续签订合同").tap()
    expect(scanner.get_by_role("heading", name="阅读协议")).to_be_visible()

    # ---- 签订合同: the lease page moved on by itself, with the contract's code
    _qr_shown(page, "签订合同")
    expect(page.locator("#qr-instruction")).to_have_text("请使用手机微信扫描二维码阅读并签署合同")
    expect(page.locator("#stepper .anju-flowbar__item_done")).to_have_text(
        ["完善承租信息", "人脸识别"]
    )
    expect(page.locator("#progress li.anju-progress__item_done")).to_have_count(0)
    page.set_viewport_size({"width": 1280, "height": 800})  # as on a desktop, for the record
    page.screenshot(path=str(RESULTS / "lease-contract-qr-wide.png"), full_page=True)
    page.set_viewport_size(PHONE["viewport"])
    scanner.goto(orm(_qr_url, live_url, aid, "sign"))
    expect(scanner).to_have_url(f"{live_url}/h5/signing/{aid}/sign/")
    _expect_done(page, "已扫码")
    finger = Finger(scanner)
    reader = scanner.locator("#reader")
    expect(reader).to_contain_text("3栋1201")
    scanner.clock.fast_forward("00:20")  # twenty seconds of reading
    finger.scroll_to_end(reader)
    scanner.get_by_role("button", name="阅读并确认").tap()
    _expect_done(page, "阅读并确认合同")
    write_lin_an(scanner, finger)
    scanner.locator("#signature-ok").tap()
    _expect_done(page, "手写签名")
    scanner.get_by_role("button", name="获取验证码").tap()
    expect(scanner.locator("#sms-send")).to_have_text(COUNTDOWN)
    scanner.get_by_label("验证码").fill(orm(_sign_code, NEW_MOBILE))
    scanner.get_by_role("button", name="提交").tap()
    expect(scanner.locator("#step-done")).to_be_visible(timeout=30_000)
    # Signed, not yet submitted: a lease goes on to the deposit.
    expect(scanner.locator("#done-title")).to_have_text("合同已签署，请继续缴纳押金")
    expect(scanner.locator("#done-next")).to_have_attribute("href", f"/h5/lease/{lid}/")
    assert orm(Agreement.objects.get, pk=aid).status == Agreement.Status.SIGNED

    # ---- 押金缴纳: WeChat Pay Native. The lease page shows the payment order's code_url as a
    # QR code (its amount and when the order closes); the phone's scanner opens it: the
    # development cashier, standing in for WeChat's own.
    expect(page.locator("#qr-title")).to_have_text("押金缴纳")
    expect(page.locator("#qr-instruction")).to_have_text("请使用手机微信扫描二维码支付押金")
    expect(page.locator("#qr-img")).to_be_visible()
    expect(page.locator("#qr-img")).to_have_attribute("alt", "押金支付二维码")
    expect(page.locator("#qr-code-line")).to_be_hidden()  # a payment code has no 识别码
    expect(page.locator("#deposit-amount")).to_have_text("¥2938.00")
    expect(page.locator("#deposit-expiry")).to_contain_text("前完成支付，逾期订单将关闭")
    code_url = decode_qr(page.locator("#qr-img"))
    assert re.fullmatch(rf"{live_url}/dev/pay/wx\d{{14}}[0-9a-f]{{20}}/", code_url), code_url
    expect(page.get_by_role("link", name="在手机上支付")).to_have_attribute("href", code_url)
    page.screenshot(path=str(RESULTS / "lease-deposit.png"), full_page=True)
    scanner.goto(code_url)
    expect(scanner.locator("#pay-amount")).to_have_text("¥2938.00")
    scanner.get_by_role("button", name="确认支付").tap()
    expect(scanner.locator("#done-title")).to_have_text("押金缴纳成功，签约申请已提交")
    expect(scanner).to_have_url(f"{live_url}/h5/lease/{lid}/deposit/")  # out_trade_no forgotten
    scanner.screenshot(path=str(RESULTS / "lease-deposit-done.png"), full_page=True)
    payment = orm(DepositPayment.objects.get, lease_id=lid)
    assert payment.status == DepositPayment.Status.PAID and payment.amount_fen == 293800
    # The provider's notification reached the live server over HTTP and was applied.
    assert orm(lambda: PaymentNotification.objects.filter(outcome="applied").count()) == 1

    # ---- the lease page heard it and shows the application submitted, never reloaded
    expect(page.locator("#review-title")).to_contain_text("签约申请已提交")
    expect(page.locator("#stepper .anju-flowbar__item_on")).to_have_text("待审核")
    expect(page.locator("#summary")).to_contain_text(payment.receipt_no)
    expect(page.locator("#live-state")).to_be_hidden()
    assert page.evaluate("window.notReloaded") is True
    page.screenshot(path=str(RESULTS / "lease-review.png"), full_page=True)
    scanner.close()
    assert not scanner_errors, f"uncaught JavaScript errors on the second tab: {scanner_errors}"

    # ---- 网上签约 lists the lease (not its agreement again) with its stage
    page.goto("/h5/signing/")
    card = page.locator(f'#leases article[data-lease-id="{lid}"]')
    # The agreement's own status, as everywhere; the lease's stage beside it.
    expect(card.locator(".anju-badge")).to_have_text("已签字")
    expect(card.locator(f"#lease-{lid}-stage")).to_have_text("待审核")
    expect(card.get_by_role("button", name="查看详情")).to_have_attribute(
        "href", f"/h5/lease/{lid}/"
    )
    expect(page.locator(f'#agreements article[data-agreement-id="{aid}"]')).to_have_count(0)

    # ---- submitted: 首页's 当前事项 and the result page say so, no longer 「去签约」
    page.goto("/h5/")
    lease_card = page.get_by_role("article", name="租赁合同签约")
    expect(lease_card).to_contain_text("待审核")
    expect(lease_card).to_contain_text("签约申请已提交，等待工作人员审核，审核结果将以短信通知。")
    page.get_by_role("link", name="我的选房结果").tap()
    expect(page.locator("#result-title + .weui-msg__desc")).to_have_text(
        "签约申请已提交，等待工作人员审核。"
    )
    expect(page.locator("#lease-go")).to_have_text("查看签约")

    # ---- 「我的」 → 网上签约记录 → 「查看详情」; once approved, the materials
    orm(_approve, aid)
    page.goto("/h5/")
    expect(page.get_by_role("article", name="租赁合同签约")).to_contain_text("审核通过")
    page.goto(f"/h5/selection/{setup.round_id}/result/")
    expect(page.locator("#result-title + .weui-msg__desc")).to_have_text(
        "网上签约已完成，审核已通过。"
    )
    page.goto("/h5/")
    page.get_by_role("link", name="我的", exact=True).tap()
    page.get_by_role("link", name=re.compile("^网上签约记录")).tap()
    card = page.locator(f'article[data-agreement-id="{aid}"]')
    expect(card.locator(".anju-badge")).to_have_text("已盖章")  # the agreement's own words
    expect(card).to_contain_text("合同验证码")  # a lease is a 合同, as on its own page
    card.get_by_role("button", name="查看详情").tap()
    expect(page).to_have_url(f"{live_url}/h5/signing/{aid}/view/?from=records")
    expect(page.get_by_role("link", name=re.compile("^打印"))).to_be_visible()
    page.goto(f"/h5/lease/{lid}/")
    expect(page.locator("#stepper li").last).to_have_text("审核通过")  # no longer 待审核
    expect(page.locator("#stepper .anju-flowbar__item_done")).to_have_count(5)
    contract = page.get_by_role("button", name="下载合同")
    receipt = page.get_by_role("button", name="下载押金收据")
    expect(contract).to_have_attribute(
        "href", f"/api/v1/signing/agreements/{aid}/document/?download=1"
    )
    expect(receipt).to_have_attribute("href", f"/api/v1/lease/{lid}/receipt/?download=1")
    page.screenshot(path=str(RESULTS / "lease-approved.png"), full_page=True)
    for link in (contract, receipt):
        pdf = page.request.get(link.get_attribute("href"))
        assert pdf.ok and pdf.body().startswith(b"%PDF")


def _lease_started(applicant_pk: int) -> int:
    from core.context import RequestContext
    from signing.lease import services as leases

    applicant = Applicant.objects.get(pk=applicant_pk)
    ctx = RequestContext(ip="10.0.0.8", user_agent="pytest")
    return leases.lease_start(applicant=applicant, ctx=ctx, now=timezone.now()).pk


def _void(applicant_pk: int) -> None:
    """The window's end voided the lease's agreement (its status, as the clock leaves it)."""
    Agreement.objects.filter(pk=_lease_of(applicant_pk).agreement_id).update(status="void")


def test_a_closed_lease_is_not_urged_on_the_result_page(page, orm):
    """A lease voided (or abandoned): the result page neither urges signing nor offers a
    green 去签约; it sends the family to the lease's page, which says why."""
    setup = orm(_allocated_just_now)
    orm(_lease_started, setup.applicant.pk)
    orm(_void, setup.applicant.pk)
    log_in(page, orm, setup.applicant)
    page.goto(f"/h5/selection/{setup.round_id}/result/")
    expect(page.locator("#result-title")).to_have_text("选房成功")
    expect(page.locator("#result-title + .weui-msg__desc")).to_have_text(
        "本次签约已结束，详情请查看签约页面。"
    )
    expect(page.locator("#lease-go")).to_have_text("查看签约")
    page.locator("#lease-go").tap()
    expect(page.locator("#closed-title")).to_have_text("签约已作废")


def test_back_from_the_cashier_before_the_result_is_known(page, live_url, orm):
    """The cashier sent the phone back (?out_trade_no=…) but the payment is not known yet:
    the page asks a few times, then offers 「刷新」. The API's answers are held back here
    (the lease shown at 押金缴纳, the order unpaid until the test says so)."""
    from django.conf import settings

    from tests.browser.test_signing_flow import _logged_in_session

    setup = orm(_allocated_just_now)
    lid = orm(_lease_started, setup.applicant.pk)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": orm(_logged_in_session, setup.applicant.pk),
                "url": live_url,
            }
        ]
    )
    lease = page.request.get(f"/api/v1/lease/{lid}/").json()
    lease.update(stage="deposit", stage_label="押金缴纳")
    payment = {
        "status": "created",
        "status_label": "待支付",
        "out_trade_no": "AJ20261122000000ABCDEF",
        "paid_at": None,
        "receipt_no": "",
    }
    asked = {"refresh": 0, "paid": False}

    def refresh(route) -> None:
        asked["refresh"] += 1
        if asked["paid"]:
            paid = {**payment, "status": "paid", "status_label": "已支付"}
            paid.update(paid_at=timezone.now().isoformat(), receipt_no="YJ2026112200000009")
            route.fulfill(json={**lease, "stage": "review", "payment": paid})
        else:
            route.fulfill(json={**lease, "payment": payment})

    page.route(f"**/api/v1/lease/{lid}/", lambda route: route.fulfill(json=lease))
    page.route(f"**/api/v1/lease/{lid}/deposit/refresh/", refresh)

    page.goto(f"/h5/lease/{lid}/deposit/?out_trade_no={payment['out_trade_no']}")
    expect(page.locator("#wait-title")).to_have_text("正在确认支付结果…")
    expect(page.locator("#wait-title")).to_have_text("暂未查询到支付结果", timeout=20_000)
    assert asked["refresh"] == 5
    refresh_button = page.get_by_role("button", name="刷新", exact=True)
    expect(refresh_button).to_be_visible()
    expect(page.get_by_role("button", name="重新支付")).to_be_visible()
    page.screenshot(path=str(RESULTS / "lease-deposit-pending.png"), full_page=True)

    asked["paid"] = True
    refresh_button.tap()
    expect(page.locator("#done-title")).to_have_text("押金缴纳成功，签约申请已提交")
    expect(page.locator("#done-rows")).to_contain_text("YJ2026112200000009")
    expect(page).to_have_url(f"{live_url}/h5/lease/{lid}/deposit/")
    assert asked["refresh"] == 6


def _signed_at_deposit(lease_id: int) -> None:
    """The lease's 租金托收 filled and its contract signed (the steps before are walked in
    the test above): the lease stands at 押金缴纳."""
    Lease.objects.filter(pk=lease_id).update(
        bank="ICBC", account_number=ACCOUNT, account_holder=NAME, bank_attempt=1
    )
    agreement_id = Lease.objects.values_list("agreement_id", flat=True).get(pk=lease_id)
    Agreement.objects.filter(pk=agreement_id).update(
        status="signed", step=Agreement.Step.SUBMITTED, signed_at=timezone.now()
    )


def test_the_desktop_shows_the_payment_code_and_a_phone_pays_it(page, desktop, live_url, orm):
    """Guide 000's deposit: the applicant, logged in on the desktop, scans the desktop's code
    with WeChat and pays on the phone. The phone has never logged in: WeChat Pay's Native code
    needs none. The desktop hears the payment (the notification applied, `qr.done` on its
    stream) and moves on to 待审核 by itself."""
    from django.conf import settings

    from tests.browser.test_signing_flow import _logged_in_session

    setup = orm(_allocated_just_now)
    lid = orm(_lease_started, setup.applicant.pk)
    orm(_signed_at_deposit, lid)
    desktop.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": orm(_logged_in_session, setup.applicant.pk),
                "url": live_url,
            }
        ]
    )
    with desktop.expect_websocket(lambda ws: "/ws/qr/" in ws.url):
        desktop.goto(f"/h5/lease/{lid}/")
    expect(desktop.locator("#stepper .anju-flowbar__item_on")).to_have_text("押金缴纳")
    expect(desktop.locator("#qr-title")).to_have_text("押金缴纳")
    expect(desktop.locator("#deposit-amount")).to_have_text("¥2938.00")
    expect(desktop.locator("#deposit-expiry")).to_contain_text("前完成支付，逾期订单将关闭")
    expect(desktop.locator("#qr-deadline")).to_be_hidden()  # the ticket's time is not the order's
    expect(desktop.locator("#live-state")).to_have_text("实时")
    expect(desktop.locator("#progress li")).to_have_text(["微信支付押金"])
    expect(desktop.locator("#progress li.anju-progress__item_done")).to_have_count(0)
    code_url = decode_qr(desktop.locator("#qr-img"))
    payment = orm(DepositPayment.objects.get, lease_id=lid)
    assert code_url == f"{live_url}/dev/pay/{payment.prepay_id}/"
    expect(desktop.get_by_role("link", name="在手机上支付")).to_have_attribute("href", code_url)
    desktop.evaluate("window.notReloaded = true")
    RESULTS.mkdir(exist_ok=True)
    desktop.screenshot(path=str(RESULTS / "lease-deposit-desktop.png"), full_page=True)

    # ---- the phone, never logged in, "scans" the code: the cashier behind the code_url
    page.goto(code_url)
    expect(page.locator("#pay-amount")).to_have_text("¥2938.00")
    page.get_by_role("button", name="确认支付").tap()
    # The cashier sends it back to the deposit page, which it may not read: look at the desktop.
    expect(page).to_have_url(re.compile(rf"/h5/lease/{lid}/deposit/\?out_trade_no=AJ"))
    expect(page.locator("#other-title")).to_have_text("请回到电脑端查看支付结果")
    page.screenshot(path=str(RESULTS / "lease-deposit-phone-paid.png"), full_page=True)
    payment = orm(DepositPayment.objects.get, lease_id=lid)
    assert payment.status == DepositPayment.Status.PAID and payment.amount_fen == 293800

    # ---- the desktop heard it and moved on, never reloaded
    expect(desktop.locator("#review-title")).to_contain_text("签约申请已提交")
    expect(desktop.locator("#stepper .anju-flowbar__item_on")).to_have_text("待审核")
    expect(desktop.locator("#summary")).to_contain_text(payment.receipt_no)
    expect(desktop.locator("#live-state")).to_be_hidden()
    assert desktop.evaluate("window.notReloaded") is True
    desktop.screenshot(path=str(RESULTS / "lease-deposit-desktop-paid.png"), full_page=True)


@dataclass(frozen=True)
class Returned:
    lease_id: int
    paid_at: Any  # when the deposit was paid: the first submission


def _returned_for_the_signature(applicant_pk: int, lease_id: int) -> Returned:
    """The lease's first attempt walked to the end (card photos and 租金托收 through the
    services, the contract signed, the deposit paid ten minutes ago), then returned by staff
    for the signature only."""
    from core.context import RequestContext

    applicant = Applicant.objects.get(pk=applicant_pk)
    lease = Lease.objects.get(pk=lease_id)
    ctx = RequestContext(ip="10.0.0.8", user_agent="pytest")
    now = timezone.now()
    lease_info_filled(
        applicant=applicant, lease=lease, account_number=ACCOUNT, ctx=ctx, now=now, holder=NAME
    )
    paid_at = now - timedelta(minutes=10)
    Agreement.objects.filter(pk=lease.agreement_id).update(
        status="signed", step=Agreement.Step.SUBMITTED, signed_at=paid_at - timedelta(minutes=1)
    )
    Lease.objects.filter(pk=lease_id).update(deposit_paid_at=paid_at)
    reviewer = User.objects.create_user(username="reviewer-return", is_staff=True)
    services.agreement_reject(
        agreement_id=lease.agreement_id,
        actor=reviewer,
        reason="签名笔画不完整，请重新签署",
        now=now,
    )
    return Returned(lease_id=lease_id, paid_at=paid_at)


def _signed_again(agreement_id: int) -> Any:
    """The second attempt's contract signed on the phone (walked in the test above): with the
    deposit already paid, the application is submitted at once."""
    signed_at = timezone.now()
    Agreement.objects.filter(pk=agreement_id).update(
        status="signed", step=Agreement.Step.SUBMITTED, signed_at=signed_at
    )
    return signed_at


def test_after_a_return_for_the_signature_the_bank_details_stay_and_the_new_submission_shows(
    page, live_url, orm
):
    """A reviewer returns the lease for its signature only: 完善承租信息 shows the bank, the
    account (masked, as stored) and the holder already filled in, so 「提交，下一步」 confirms
    them again without retyping; once signed again, 提交时间 is the new submission's."""
    from django.conf import settings

    from tests.browser.test_signing_flow import _logged_in_session

    setup = orm(_allocated_just_now)
    lid = orm(_lease_started, setup.applicant.pk)
    returned = orm(_returned_for_the_signature, setup.applicant.pk, lid)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": orm(_logged_in_session, setup.applicant.pk),
                "url": live_url,
            }
        ]
    )
    page.goto(f"/h5/lease/{lid}/")
    expect(page.locator("#reject-bar")).to_contain_text("签名笔画不完整")
    expect(page.locator("#stepper .anju-flowbar__item_on")).to_have_text("完善承租信息")
    expect(page.get_by_label("托收银行")).to_have_value("ICBC")
    masked = f"{ACCOUNT[:4]} **** **** {ACCOUNT[-4:]}"
    expect(page.get_by_label("银行卡号")).to_have_value(masked)
    expect(page.get_by_label("账户名")).to_have_value(NAME)
    expect(page.locator("#photo-front-state")).to_have_text("已上传，点击可重新上传")
    page.screenshot(path=str(RESULTS / "lease-returned-info.png"), full_page=True)
    page.get_by_role("button", name="提交，下一步").tap()
    _qr_shown(page, "人脸识别")
    lease = orm(_lease_of, setup.applicant.pk)
    assert (lease.bank, lease.account_number, lease.bank_attempt) == ("ICBC", ACCOUNT, 2)

    signed_at = orm(_signed_again, lease.agreement_id)
    page.goto(f"/h5/lease/{lid}/")
    expect(page.locator("#stepper .anju-flowbar__item_on")).to_have_text("待审核")
    submitted = page.locator("#summary-rows").get_by_text("提交时间", exact=True).locator("..")
    shown = timezone.localtime(signed_at).strftime("%H:%M")
    expect(submitted).to_contain_text(shown)
    assert timezone.localtime(returned.paid_at).strftime("%H:%M") != shown
