"""网上签约 (guide 001) end to end: a desktop shows the QR code, the phone opens it and signs.

The desktop (logged in) opens 网上签约, taps 「签约协议」 and shows the QR code with its
progress socket. The phone has never logged in: it opens the URL decoded (zxing-cpp) from a
screenshot of the desktop's code, which starts its signing session and opens the phone flow
at once (no login, so the desktop stays logged in): 电子合同 (name masked until the face
check) 「下一步」 → the consent (its texts one tap away) 「开始」 → 实名信息 「确定」 → 人脸识别 →
the whole agreement scrolled to its end 「阅读并确认」 → the two characters of the name, one
box each, written with touch events (one cleared and rewritten, one refused for ink outside
the box, ink kept through a rotation, an earlier box redone) 「确定」 → the SMS code 「提交」
→ 已提交. The desktop hears 已扫码 and every step live (the last, 短信验证并提交), without a reload.

Face recognition goes through the development provider's own page (signing/face/dev.py):
「模拟不通过」 first (the page says so and offers to try again), then 「模拟通过」; the provider
sends the phone back to the flow page, which posts …/steps/face-complete/.

Time: the phone's clock is Playwright's, moved forward while the applicant "reads" and
between the points of a stroke (a character takes longer than 120 ms to write); nothing
waits on wall-clock time.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import import_module

import pytest
import zxingcpp
from django.conf import settings
from django.utils import timezone
from PIL import Image
from playwright.sync_api import expect

from accounts.middleware import DEVICE_SESSION_FLAG
from accounts.models import Applicant, DeviceSession
from accounts.services import applicant_user_ensure, device_session_start
from core.context import RequestContext
from signing.agreements.seed import texts_seed
from signing.agreements.services import agreement_create
from signing.models import (
    Agreement,
    AgreementTemplate,
    FaceCheck,
    QrScan,
    QrTicket,
    SignatureCharacter,
    TemplateKind,
)
from sms.models import DevInboxMessage
from tests.browser.conftest import PHONE, RESULTS
from tests.browser.test_login import COUNTDOWN, latest_code, log_in
from tests.factories import FamilyFactory

pytestmark = pytest.mark.browser

CTX = RequestContext(ip="10.0.0.7", user_agent="pytest")
NAME = "林安"  # two characters, two boxes
SIGN_CODE = re.compile(r"签约确认，验证码为(\d{6})")


@dataclass(frozen=True)
class Setup:
    agreement_id: int
    applicant: Applicant


def _agreement_open_now(name: str = NAME) -> Setup:
    """A 待签字 rent-subsidy agreement whose window opened an hour ago and ends in 3 days."""
    texts_seed()
    now = timezone.now()
    family = FamilyFactory(main_applicant__real_name=name)
    agreement = agreement_create(
        family=family,
        template=AgreementTemplate.objects.get(kind=TemplateKind.RENT_SUBSIDY, version=1),
        window_starts_at=now - timedelta(hours=1),
        window_ends_at=now + timedelta(days=3),
        actor=None,
        now=now,
    )
    applicant_user_ensure(applicant=family.main_applicant)
    return Setup(agreement_id=agreement.pk, applicant=family.main_applicant)


def _logged_in_session(applicant_pk: int) -> str:
    """A session in which the applicant is logged in (what the login API leaves behind), as
    on a desktop that logged in earlier: one SMS login code per minute per person would not
    let this test log in the desktop and then the phone through the page."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY

    user = Applicant.objects.get(pk=applicant_pk).user
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = str(user.pk)
    store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store[DEVICE_SESSION_FLAG] = True
    store.create()
    device_session_start(user=user, session_key=store.session_key, provider="dev_sms", ctx=CTX)
    return store.session_key


def decode_qr(code) -> str:
    """What a phone's scanner reads (zxing-cpp) from a picture of the screen showing the
    locator `code`: the viewport's screenshot, scrolled first to bring the code on screen if
    it is not. The whole screen, not a clip to the code's box: a notice that comes in above
    it (the live client's clock-drift banner, once its pings are back) moves the code between
    a box's measure and the picture, and a clip then cuts it. (Playwright's element
    screenshot waits for a stable box but took 2–3 s each in the lease journey.) An image is
    read once the browser has decoded it: a code shown a moment ago may not be painted yet."""
    code.evaluate("el => el.tagName === 'IMG' ? el.decode() : null")
    box = code.bounding_box()
    if box["y"] < 0 or box["y"] + box["height"] > code.page.viewport_size["height"]:
        code.evaluate("el => el.scrollIntoView({ block: 'center' })")
    png = code.page.screenshot()
    codes = [
        c.text
        for c in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
        if c.format == zxingcpp.BarcodeFormat.QRCode
    ]
    assert len(codes) == 1, codes
    return codes[0]


def _latest_token(agreement_id: int) -> str:
    return QrTicket.objects.filter(agreement_id=agreement_id).latest("id").token


def _sign_code(phone: str) -> str:
    message = DevInboxMessage.objects.filter(phone=phone, text__contains="签约确认").first()
    assert message is not None, f"the server sent no signing code to {phone}"
    found = SIGN_CODE.search(message.text)
    assert found, message.text
    return found.group(1)


def _characters(agreement_id: int) -> list[dict]:
    return [
        {
            "index": c.index,
            "expected": c.expected,
            "strokes": c.strokes,
            "width": c.box_width,
            "drawn_at": c.drawn_at,
        }
        for c in SignatureCharacter.objects.filter(agreement_id=agreement_id).order_by("index")
    ]


def _agreement(agreement_id: int) -> Agreement:
    return Agreement.objects.get(pk=agreement_id)


# ------------------------------------------------------------------------ touch helpers


class Finger:
    """Touch input through the DevTools protocol (Input.dispatchTouchEvent), the way a
    finger reaches the page: touchstart / touchmove / touchend and the pointer events
    Chromium derives from them. Between the points of a stroke the phone's clock moves on
    16 ms, like a finger sampled at 60 Hz."""

    def __init__(self, page) -> None:
        self.page = page
        self.cdp = page.context.new_cdp_session(page)

    def _touch(self, kind: str, points: list[tuple[float, float]]) -> None:
        self.cdp.send(
            "Input.dispatchTouchEvent",
            {
                "type": kind,
                "touchPoints": [
                    {"x": x, "y": y, "id": 1, "radiusX": 4, "radiusY": 4, "force": 0.6}
                    for x, y in points
                ],
            },
        )

    def stroke(self, box: dict, path: list[tuple[float, float]]) -> None:
        """Draw `path` (fractions of the box, 0..1) inside the element box `box`."""
        at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in path]
        self._touch("touchStart", at[:1])
        for point in at[1:]:
            self.page.clock.fast_forward(16)
            self._touch("touchMove", [point])
        self.page.clock.fast_forward(16)
        self._touch("touchEnd", [])

    def scroll_to_end(self, locator) -> None:
        """Swipe up inside `locator`, as a thumb does, until its content is at its end."""
        box = locator.bounding_box()
        x = box["x"] + box["width"] / 2
        bottom, top = box["y"] + box["height"] * 0.9, box["y"] + box["height"] * 0.1
        at_end = "r => r.scrollTop + r.clientHeight >= r.scrollHeight - 1"
        for _ in range(20):
            if locator.evaluate(at_end):
                return
            self._touch("touchStart", [(x, bottom)])
            for i in range(1, 7):
                self._touch("touchMove", [(x, bottom - (bottom - top) * i / 6)])
            self._touch("touchEnd", [])
        raise AssertionError("twenty swipes did not reach the end of the text")


def _line(a: tuple[float, float], b: tuple[float, float], n: int = 6) -> list[tuple[float, float]]:
    return [(a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n) for i in range(n + 1)]


# Two characters, each a few strokes inside its box (fractions of the box side).
LIN = [
    _line((0.15, 0.35), (0.45, 0.35)),
    _line((0.3, 0.15), (0.3, 0.85)),
    _line((0.55, 0.35), (0.88, 0.35)),
    _line((0.7, 0.15), (0.7, 0.85)),
]
AN = [
    _line((0.5, 0.08), (0.5, 0.2), 3),
    _line((0.15, 0.3), (0.85, 0.3)),
    _line((0.45, 0.35), (0.3, 0.85)),
    _line((0.15, 0.6), (0.85, 0.6)),
]
OUTSIDE = [_line((0.5, 0.5), (1.4, 0.5))]  # runs off the right edge of the box


def _ink(page) -> int:
    """How many pixels of the drawing canvas carry ink."""
    return page.evaluate(
        """() => {
          const c = document.getElementById("pad-canvas");
          const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
          return n;
        }"""
    )


def _write(page, finger: Finger, strokes) -> None:
    canvas = page.locator("#pad-canvas")
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    for path in strokes:
        finger.stroke(box, path)


def write_lin_an(page, finger: Finger) -> None:
    """「林」 then 「安」, each in its box, each 「确定」: the pad closes."""
    page.get_by_role("button", name="第1字「林」，点击书写").tap()
    _write(page, finger, LIN)
    page.get_by_role("dialog", name="书写「林」（第1字，共2字）").get_by_role(
        "button", name="确定"
    ).tap()
    pad = page.get_by_role("dialog", name="书写「安」（第2字，共2字）")
    expect(pad).to_be_visible()
    _write(page, finger, AN)
    pad.get_by_role("button", name="确定").tap()
    expect(pad).to_be_hidden()


def _progress(desktop, label: str):
    return desktop.locator("#progress li").filter(has_text=re.compile(f"^{re.escape(label)}$"))


def _expect_done(desktop, *labels: str) -> None:
    for label in labels:
        expect(_progress(desktop, label)).to_have_class(re.compile(r"\banju-progress__item_done\b"))


# ------------------------------------------------------------------------ the test


def test_desktop_qr_then_the_phone_signs_step_by_step(page, desktop, live_url, orm):
    setup = orm(_agreement_open_now)
    aid = setup.agreement_id
    applicant = setup.applicant
    page.clock.install()  # the phone's clock: natural, moved on where the test says so
    finger = Finger(page)

    # ---- the desktop: 网上签约 → 「签约协议」 → the QR code, live
    session_key = orm(_logged_in_session, applicant.pk)
    desktop.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session_key, "url": live_url}]
    )
    desktop.goto("/h5/signing/")
    card = desktop.locator(f'article[data-agreement-id="{aid}"]')
    expect(card.get_by_role("heading", name="租金补贴协议")).to_be_visible()
    expect(card.locator(".anju-badge")).to_have_text("待签字")
    with (
        desktop.expect_websocket(lambda ws: "/ws/qr/" in ws.url) as opened,
        desktop.expect_response(lambda r: r.url.endswith(f"/agreements/{aid}/qr/")) as issued,
    ):
        card.get_by_role("button", name="签约协议").click()
    socket = opened.value
    qr_url = issued.value.json()["url"]  # what the code encodes
    expect(desktop).to_have_url(f"{live_url}/h5/signing/{aid}/qr/")
    expect(desktop.locator("#qr-img")).to_be_visible()
    expect(desktop.locator("#live-state")).to_have_text("实时")
    ticket = orm(QrTicket.objects.filter(agreement_id=aid).latest, "id")
    assert qr_url == f"{live_url}/s/{ticket.token}"
    code = f"{ticket.short_code[:4]} {ticket.short_code[4:]}"
    expect(desktop.locator("#qr-code")).to_have_text(code)
    expect(desktop.locator(".anju-qr__code")).to_contain_text(
        "手机打开后会显示同一识别码，请核对一致"
    )
    expect(desktop.get_by_text("请截图保存二维码，使用微信扫描相册中的二维码")).to_be_visible()
    expect(desktop.locator("#qr-deadline")).to_contain_text("二维码有效期至")
    png = desktop.locator("#qr-img").evaluate("img => [img.naturalWidth, img.naturalHeight]")
    assert png[0] >= 290 and png[1] == png[0], png  # the code only: 识别码 printed once, beside
    expect(desktop.locator("#progress li.anju-progress__item_done")).to_have_count(0)
    expect(desktop.locator("#progress li").first).to_have_text("等待手机扫码")
    desktop.evaluate("window.notReloaded = true")
    RESULTS.mkdir(exist_ok=True)
    desktop.screenshot(path=str(RESULTS / "signing-qr.png"), full_page=True)

    # ---- the phone (never logged in) scans the desktop's screen: the 电子合同 page at once
    decoded = decode_qr(desktop.locator("#qr-img"))
    assert decoded == qr_url
    with socket.expect_event("framereceived", lambda p: "qr.scanned" in p):
        page.goto(decoded)
        expect(page).to_have_url(f"{live_url}/h5/signing/{aid}/sign/")
    scans = orm(lambda: list(QrScan.objects.filter(ticket__agreement_id=aid, accepted=True)))
    assert len(scans) == 1 and scans[0].user_id is None
    _expect_done(desktop, "已扫码")
    expect(desktop.locator("#progress li").first).to_have_text("已扫码")

    # ---- 电子合同 → 「下一步」: only the masked name before the face check
    expect(page.get_by_role("heading", name="电子合同", level=2)).to_be_visible()
    expect(page.locator("#step-contract")).to_contain_text("租金补贴协议")
    expect(page.locator("#step-contract")).to_contain_text(f"{NAME[0]}*")
    expect(page.locator("#step-contract")).not_to_contain_text(NAME)
    expect(page.locator(".anju-titlebar__back")).to_have_count(0)  # nothing of the account
    # the same 识别码 as the desktop's: the applicant can tell it is this screen's agreement
    expect(page.locator("#phone-qr-code")).to_have_text(code)
    expect(page.locator("#step-contract")).to_contain_text("识别码应与电脑屏幕上二维码下方的一致")
    page.screenshot(path=str(RESULTS / "signing-phone-contract.png"), full_page=True)
    page.get_by_role("button", name="下一步").tap()

    # ---- consent: the texts one tap away; 「开始」 only when ticked
    start = page.get_by_role("button", name="开始", exact=True)
    expect(start).to_be_disabled()
    _expect_done(desktop, "查看电子合同")
    page.get_by_role("button", name="《电子认证服务协议》").tap()
    consent_dialog = page.get_by_role("dialog", name="《电子认证服务协议》")
    expect(consent_dialog).to_contain_text("数字证书")
    consent_dialog.get_by_role("button", name="我知道了").tap()
    expect(consent_dialog).to_have_count(0)
    page.get_by_label("点击开始，即表示已阅读并同意").check()
    expect(page.locator("#consent-ecert-text")).to_have_text(
        "点击开始，即表示已阅读并同意《电子认证服务协议》《个人信息保护政策》"
    )
    expect(start).to_be_enabled()
    page.screenshot(path=str(RESULTS / "signing-consent.png"), full_page=True)
    start.tap()

    # ---- 实名信息 + consent to the privacy policy and the biometric rules → 「确定」
    expect(page.get_by_role("heading", name="实名认证")).to_be_visible()
    expect(page.locator("#identity-name")).to_have_text(f"{NAME[0]}*")
    expect(page.locator("#identity-id")).to_have_text(applicant.id_number_masked)
    expect(page.locator("#consent-identity-text")).to_have_text(
        "已阅读并同意《个人信息保护政策》《个人生物识别信息保护规则》"
    )
    ok = page.get_by_role("button", name="确定", exact=True)
    expect(ok).to_be_disabled()
    page.get_by_label("已阅读并同意", exact=True).check()
    ok.tap()
    _expect_done(desktop, "同意电子认证服务协议与个人信息保护政策")

    # ---- 人脸识别 at the provider: a failed try, then a passed one
    expect(page.get_by_role("heading", name="人脸识别")).to_be_visible()
    _expect_done(desktop, "核对实名信息并同意生物识别规则")
    page.get_by_role("button", name="开始人脸识别").tap()
    expect(page).to_have_url(re.compile(r"/dev/face/devface_"))
    expect(page.locator("#face-name")).to_contain_text(NAME[0])
    page.get_by_role("button", name="模拟不通过").tap()
    expect(page).to_have_url(re.compile(rf"/h5/signing/{aid}/sign/\?face_order=fc_"))
    failed = page.get_by_role("dialog")
    expect(failed).to_contain_text("人脸识别未通过，请重试")
    failed.get_by_role("button", name="知道了").tap()
    expect(page).to_have_url(f"{live_url}/h5/signing/{aid}/sign/")  # the order id forgotten
    page.get_by_role("button", name="重新人脸识别").tap()
    expect(page).to_have_url(re.compile(r"/dev/face/devface_"))
    page.get_by_role("button", name="模拟通过").tap()
    expect(page.get_by_role("heading", name="阅读协议")).to_be_visible()
    expect(page).to_have_url(f"{live_url}/h5/signing/{aid}/sign/")
    checks = orm(
        lambda: list(
            FaceCheck.objects.filter(agreement_id=aid)
            .values_list("status", flat=True)
            .order_by("id")
        )
    )
    assert checks == [FaceCheck.Status.FAILED, FaceCheck.Status.PASSED]
    _expect_done(desktop, "人脸识别通过")

    # ---- the whole agreement: 「阅读并确认」 only once scrolled to its end
    reader = page.locator("#reader")
    expect(reader).to_contain_text("第六条")
    confirm = page.get_by_role("button", name="阅读并确认")
    expect(confirm).to_be_disabled()
    assert reader.evaluate("r => r.scrollHeight > r.clientHeight + 8"), "the text must scroll"
    page.clock.fast_forward("00:20")  # twenty seconds of reading
    finger.scroll_to_end(reader)
    expect(page.locator("#reader-state")).to_have_text("已阅读至协议末尾")
    expect(confirm).to_be_enabled()
    confirm.tap()

    # ---- the signature: one box per character
    expect(page.get_by_role("heading", name="手写签名")).to_be_visible()
    _expect_done(desktop, "阅读并确认协议")
    first_box = page.get_by_role("button", name="第1字「林」，点击书写")
    second_box = page.get_by_role("button", name="第2字「安」，点击书写")
    expect(first_box).to_be_visible()
    expect(second_box).to_be_visible()
    all_done = page.locator("#signature-ok")
    expect(all_done).to_be_disabled()
    first_box.tap()

    pad = page.get_by_role("dialog", name="书写「林」（第1字，共2字）")
    expect(pad).to_be_visible()
    assert page.evaluate("getComputedStyle(document.body).overflow") == "hidden"
    assert page.locator("#pad-canvas").evaluate("c => getComputedStyle(c).touchAction") == "none"
    # A wrong first try, cleared and written again.
    _write(page, finger, AN)
    assert _ink(page) > 0
    assert page.evaluate("window.scrollY") == 0  # the page did not move under the finger
    pad.get_by_role("button", name="清除").tap()
    assert _ink(page) == 0
    _write(page, finger, LIN)
    page.screenshot(path=str(RESULTS / "signing-signature-pad.png"))
    pad.get_by_role("button", name="确定").tap()

    # The next box opens by itself. Ink off the edge: the server's reason, then 「清除」.
    pad = page.get_by_role("dialog", name="书写「安」（第2字，共2字）")
    expect(pad).to_be_visible()
    _write(page, finger, OUTSIDE)
    pad.get_by_role("button", name="确定").tap()
    expect(page.locator("#pad-error")).to_have_text(
        "笔迹超出签字框，请点击「清除」后在框内重新书写"
    )
    pad.get_by_role("button", name="清除").tap()
    expect(page.locator("#pad-error")).to_have_text("")
    # 「确定」 on an empty box: said on the page, no request refused by the server.
    puts: list[str] = []
    page.on("request", lambda r: puts.append(r.url) if r.method == "PUT" else None)
    pad.get_by_role("button", name="确定").tap()
    expect(page.locator("#pad-error")).to_have_text("请在签字框内书写")
    assert puts == []
    _write(page, finger, AN)
    # Turned sideways and back: the box changes size, the ink stays (scaled with it).
    portrait = page.locator("#pad-canvas").bounding_box()["width"]
    ink_before = _ink(page)
    page.set_viewport_size({"width": 844, "height": 390})
    expect(page.locator("#pad-canvas")).not_to_have_attribute(
        "style", re.compile(f"width: {portrait:.0f}px")
    )
    assert page.locator("#pad-canvas").bounding_box()["width"] < portrait
    assert _ink(page) > 0
    page.set_viewport_size(PHONE["viewport"])
    expect(page.locator("#pad-canvas")).to_have_attribute(
        "style", re.compile(f"width: {portrait:.0f}px")
    )
    assert _ink(page) > ink_before * 0.8
    pad.get_by_role("button", name="确定").tap()
    expect(pad).to_be_hidden()
    assert page.evaluate("getComputedStyle(document.body).overflow") != "hidden"

    drawn = orm(_characters, aid)
    assert [(c["index"], c["expected"]) for c in drawn] == [(0, "林"), (1, "安")]
    for character in drawn:
        points = [p for stroke in character["strokes"] for p in stroke]
        assert all(set(p) == {"x", "y", "t", "p"} for p in points)
        assert all(0 <= p["x"] <= character["width"] for p in points)
        assert max(p["t"] for p in points) - min(p["t"] for p in points) >= 120
        assert character["width"] == round(portrait)
    assert len(drawn[0]["strokes"]) == len(LIN)
    assert len(drawn[1]["strokes"]) == len(AN)

    # An earlier box redone: tap it, write, 「确定」.
    redo = page.get_by_role("button", name="第1字「林」，已书写，点击重新书写")
    expect(page.get_by_role("button", name="第2字「安」，已书写，点击重新书写")).to_be_visible()
    redo.tap()
    pad = page.get_by_role("dialog", name="书写「林」（第1字，共2字）")
    expect(pad.locator("#pad-tip")).to_contain_text("重新书写将替换已写的字")
    _write(page, finger, LIN)
    pad.get_by_role("button", name="确定").tap()
    expect(pad).to_be_hidden()
    redone = orm(_characters, aid)
    assert redone[0]["drawn_at"] > drawn[0]["drawn_at"]
    assert redone[1]["drawn_at"] == drawn[1]["drawn_at"]
    expect(page.locator("#sigboxes img")).to_have_count(2)
    expect(all_done).to_be_enabled()
    page.screenshot(path=str(RESULTS / "signing-signature.png"), full_page=True)
    all_done.tap()

    # ---- the SMS code → 「提交」
    expect(page.get_by_role("heading", name="短信验证")).to_be_visible()
    _expect_done(desktop, "手写签名")
    # The desktop says what the phone is doing now, not 已提交 before the code is in.
    expect(desktop.locator("#progress li.anju-progress__item_current")).to_have_text(
        "短信验证并提交"
    )
    page.get_by_role("button", name="获取验证码").tap()
    expect(page.locator("#sms-send")).to_have_text(COUNTDOWN)
    expect(page.locator("#sms-info")).to_have_text("验证码已发送至登记的手机号码，请注意查收。")
    code = orm(_sign_code, applicant.mobile)
    page.get_by_label("验证码").fill(code)
    page.get_by_role("button", name="提交").tap()

    # 提交 signs the PDF on the server (render, applicant certificate, time stamp).
    expect(page.locator("#step-done")).to_be_visible(timeout=30_000)
    expect(page.locator("#done-title")).to_have_text("已提交，等待工作人员审核")
    page.screenshot(path=str(RESULTS / "signing-done.png"), full_page=True)
    agreement = orm(_agreement, aid)
    assert agreement.status == Agreement.Status.SIGNED
    assert agreement.step == Agreement.Step.SUBMITTED

    # ---- the desktop heard it all, live
    _expect_done(desktop, "短信验证并提交")
    expect(desktop.locator("#progress li.anju-progress__item_done")).to_have_count(8)
    expect(desktop.locator("#progress-done")).to_be_visible()
    assert desktop.evaluate("window.notReloaded") is True
    desktop.screenshot(path=str(RESULTS / "signing-qr-done.png"), full_page=True)

    # ---- the desktop is still logged in: 网上签约 shows 已签字 and the PDF
    desktop.goto("/h5/signing/")
    expect(desktop).to_have_url(f"{live_url}/h5/signing/")
    card = desktop.locator(f'article[data-agreement-id="{aid}"]')
    expect(card.locator(".anju-badge")).to_have_text("已签字")
    pdf = desktop.request.get(f"/api/v1/signing/agreements/{aid}/document/")
    assert pdf.ok and pdf.body().startswith(b"%PDF")
    active = orm(lambda: list(DeviceSession.objects.filter(ended_at__isnull=True)))
    assert [d.session_key for d in active] == [session_key]  # the phone made no device
    # The phone has no login at all.
    assert page.request.get("/api/v1/me/").status == 401

    # The same code opened again on the phone: nothing left to do, said as information (the
    # info icon), not as an error.
    page.goto(decoded)
    expect(page.locator("#open-title")).to_have_text("无需扫码")
    expect(page.locator("#open-desc")).to_have_text("该协议已签字，无需再次扫码")
    expect(page.locator("#open-icon")).to_have_class("weui-icon-info weui-icon_msg")


def _ticket_for(agreement_id: int) -> str:
    """The token of a QR code the agreement's applicant had shown on some desktop."""
    from signing.agreements.qr import qr_ticket_issue

    agreement = Agreement.objects.select_related("family__main_applicant").get(pk=agreement_id)
    ticket = qr_ticket_issue(
        agreement=agreement,
        applicant=agreement.family.main_applicant,
        session_key="a-desktop-session",
        now=timezone.now(),
    )
    return ticket.token


def test_the_code_opens_only_for_its_own_applicant(page, live_url, orm):
    setup = orm(_agreement_open_now)
    token = orm(_ticket_for, setup.agreement_id)
    other = orm(_agreement_open_now, "周全").applicant

    # Someone else logs in; a `next` to another site is ignored: home.
    page.goto("/h5/login/?next=//evil.example/steal")
    page.get_by_label("身份证号码").fill(other.id_number)
    page.get_by_role("button", name="获取验证码", exact=True).tap()
    expect(page.locator("#send-code")).to_have_text(COUNTDOWN)
    page.get_by_label("短信验证码").fill(orm(latest_code, other.mobile))
    page.get_by_role("button", name="登录", exact=True).tap()
    expect(page).to_have_url(f"{live_url}/h5/")

    # …and scans the first family's code (a leaked screenshot).
    page.goto(f"/s/{token}")
    expect(page.locator("#open-title")).to_have_text("无法签约")
    expect(page.locator("#open-desc")).to_have_text(
        "您当前登录的账号不是该协议的主申请人，只有主申请人本人可以扫码签约"
    )
    expect(page.locator("#open-icon")).to_have_class("weui-icon-warn weui-icon_msg")  # an error
    expect(page).to_have_url(f"{live_url}/s/{token}")
    refused = orm(lambda: list(QrScan.objects.values_list("accepted", "reason")))
    assert refused == [(False, "not_owner")]

    # A code that was never issued.
    page.goto("/s/" + "x" * 32)
    expect(page.locator("#open-title")).to_have_text("二维码无效")
    expect(page.get_by_role("button", name="返回网上签约")).to_be_visible()


def test_abandoning_asks_twice_then_the_agreement_is_abandoned(page, live_url, orm):
    setup = orm(_agreement_open_now)
    log_in(page, orm, setup.applicant)
    page.get_by_role("link", name=re.compile("^网上签约")).tap()
    expect(page).to_have_url(f"{live_url}/h5/signing/")
    card = page.locator(f'article[data-agreement-id="{setup.agreement_id}"]')
    expect(card.locator(".anju-badge")).to_have_text("待签字")
    expect(card).to_contain_text("签约期限")
    page.screenshot(path=str(RESULTS / "signing-list.png"), full_page=True)

    # 「签约协议」 on the phone: the code with the hint for phones (screenshot, then scan it).
    card.get_by_role("button", name="签约协议").tap()
    expect(page.locator("#qr-img")).to_be_visible()
    expect(page.locator("#qr-phone-hint")).to_have_text(
        "手机端签约：请截图保存二维码，使用微信扫描相册中的二维码"
    )
    expect(page.locator("#live-state")).to_have_text("实时")
    page.screenshot(path=str(RESULTS / "signing-qr-phone.png"), full_page=True)
    page.go_back()
    card = page.locator(f'article[data-agreement-id="{setup.agreement_id}"]')
    card.get_by_role("link", name="放弃签约").tap()

    expect(page.get_by_role("heading", name="放弃签约声明书")).to_be_visible()
    expect(page.locator("#declaration")).to_contain_text("本人自愿放弃本次《租金补贴协议》的签约")
    button = page.get_by_role("button", name="确认放弃签约")
    expect(button).to_be_disabled()
    page.screenshot(path=str(RESULTS / "signing-abandon.png"), full_page=True)
    page.get_by_label("本人已阅读上述声明，自愿放弃本次签约").check()
    button.tap()
    page.get_by_role("dialog", name="放弃签约").get_by_role("button", name="确定放弃").tap()
    second = page.get_by_role("dialog", name="再次确认")
    expect(second).to_contain_text("不能撤销")
    page.screenshot(path=str(RESULTS / "signing-abandon-confirm.png"))
    # Changing one's mind at the second question changes nothing.
    second.get_by_role("button", name="我再想想").tap()
    assert orm(_agreement, setup.agreement_id).status == Agreement.Status.PENDING
    button.tap()
    page.get_by_role("dialog", name="放弃签约").get_by_role("button", name="确定放弃").tap()
    page.get_by_role("dialog", name="再次确认").get_by_role("button", name="确认放弃").tap()
    expect(page.locator("#abandon-done")).to_be_visible()
    page.screenshot(path=str(RESULTS / "signing-abandon-done.png"), full_page=True)
    assert orm(_agreement, setup.agreement_id).status == Agreement.Status.ABANDONED

    page.goto("/h5/signing/")
    card = page.locator(f'article[data-agreement-id="{setup.agreement_id}"]')
    expect(card.locator(".anju-badge")).to_have_text("已放弃")
    expect(card.get_by_role("button", name="签约协议")).to_have_count(0)


def test_a_code_that_runs_out_is_replaced_and_the_progress_kept(page, desktop, live_url, orm):
    """lib/qr-progress.js: when the code's time is up (its expires_at, on the server's clock)
    the desktop shows a new code by itself, keeps what it heard on the old one, and hears the
    phone's next steps on the new one (every live ticket of the agreement gets them)."""
    setup = orm(_agreement_open_now)
    aid = setup.agreement_id
    session_key = orm(_logged_in_session, setup.applicant.pk)
    desktop.context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": session_key, "url": live_url}]
    )
    issued: list[dict] = []

    def short_lived(route):
        # The first code is said to run out 4 s after it was issued (the server's clock).
        response = route.fetch()
        body = response.json()
        if not issued:
            expires = body["server_time_ms"] / 1000 + 4
            body["expires_at"] = datetime.fromtimestamp(expires, tz=UTC).isoformat()
        issued.append(body)
        route.fulfill(response=response, json=body)

    desktop.route(f"**/api/v1/signing/agreements/{aid}/qr/", short_lived)
    desktop.goto(f"/h5/signing/{aid}/qr/")
    expect(desktop.locator("#live-state")).to_have_text("实时")
    first = issued[0]["short_code"]
    expect(desktop.locator("#qr-code")).to_have_text(f"{first[:4]} {first[4:]}")
    desktop.evaluate("window.notReloaded = true")

    page.goto(decode_qr(desktop.locator("#qr-img")))
    expect(page).to_have_url(f"{live_url}/h5/signing/{aid}/sign/")
    _expect_done(desktop, "已扫码")

    # The first code runs out: a second one, issued and shown without a reload.
    expect(desktop.locator("#qr-code")).not_to_have_text(f"{first[:4]} {first[4:]}")
    assert len(issued) == 2
    second = issued[1]["short_code"]
    expect(desktop.locator("#qr-code")).to_have_text(f"{second[:4]} {second[4:]}")
    expect(desktop.locator("#qr-deadline")).to_contain_text("二维码有效期至")
    expect(desktop.locator("#live-state")).to_have_text("实时")
    _expect_done(desktop, "已扫码")  # heard on the old code, kept
    expect(desktop.locator("#progress li.anju-progress__item_current")).to_have_text("查看电子合同")

    # The phone goes on (its session came from the first code): heard on the new one.
    page.get_by_role("button", name="下一步").tap()
    _expect_done(desktop, "查看电子合同")
    expect(desktop.locator("#progress li.anju-progress__item_current")).to_have_attribute(
        "aria-current", "step"
    )
    assert desktop.evaluate("window.notReloaded") is True
    desktop.screenshot(path=str(RESULTS / "signing-qr-renewed.png"), full_page=True)
