"""Lease signing after selection (guide 000, section 三) through the API, end to end, and the
refusals at every edge: steps out of order, a holder who is not the main applicant, a
malformed account number, an SMS code of another purpose, another family's lease."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from stdnum import luhn

from accounts.models import Applicant
from core.errors import DomainError
from signing.agreements import services
from signing.agreements.evidence import evidence_verify
from signing.face import FaceResult
from signing.face.services import face_check_apply
from signing.lease.payments import dev as pay_dev
from signing.models import (
    Agreement,
    CardPhoto,
    ConsentKind,
    DepositPayment,
    Evidence,
    Lease,
    PaymentNotification,
)
from sms.models import DevInboxMessage, Purpose, SmsMessage
from sms.services import sms_code_send
from tests.mobile_api.conftest import ApiClient, error_code
from tests.signing.lease_worlds import (
    ACCOUNT,
    NOW,
    WINDOW_ENDS,
    NotifyTransport,
    make_lease_world,
    photo_bytes,
    signing_ca_from_before,
)
from tests.signing.worlds import strokes

pytestmark = pytest.mark.django_db(transaction=True)

NEW_MOBILE = "13912345678"


def logged_in(applicant, ip="10.3.0.1") -> ApiClient:
    api = ApiClient(ip=ip)
    api.client.force_login(applicant.user)
    return api


def upload(
    api: ApiClient, lease_id: int, side: str, data: bytes, name="card.jpg", ctype="image/jpeg"
):
    return api.client.post(
        f"/api/v1/lease/{lease_id}/photos/{side}/",
        {"file": SimpleUploadedFile(name, data, content_type=ctype)},
        headers={"X-CSRFToken": api.csrf},
    )


def code_sent_to(phone: str, kind: str) -> str:
    text = DevInboxMessage.objects.filter(phone=phone).order_by("-id").first().text
    assert kind in text, text
    return re.search(r"验证码为(\d{6})", text).group(1)


@pytest.fixture
def world():
    return make_lease_world(name="王小明")


@pytest.fixture
def notify(monkeypatch, settings, tmp_path):
    settings.PAYMENT = {**settings.PAYMENT, "PLATFORM_KEY_DIR": tmp_path / "pay"}
    signing_ca_from_before(settings, tmp_path / "ca")
    transport = NotifyTransport()
    monkeypatch.setattr(pay_dev, "callback_transport", transport)
    return transport


def test_account_number_of_the_world_is_luhn_valid():
    assert luhn.is_valid(ACCOUNT) and not luhn.is_valid(ACCOUNT[:-1] + "9")


def test_the_whole_lease_journey_through_the_api(world, notify, settings):
    applicant = world.applicant
    desktop, phone = logged_in(applicant, "10.3.0.1"), logged_in(applicant, "10.3.0.2")
    with time_machine.travel(NOW, tick=True):
        started = desktop.post("/api/v1/lease/start/")
        assert started.status_code == 200, started.content
        lease = started.json()
        lid, aid = lease["id"], lease["agreement"]["id"]
        assert lease["stage"] == "info"
        assert lease["deposit"] == "2938.00"  # 1469 × the round's 2 months
        assert lease["monthly_rent"] == "1469.00"
        assert lease["unit"]["label"] == "3栋1201"
        assert desktop.post("/api/v1/lease/start/").json()["id"] == lid  # one lease, not two
        agreement = Agreement.objects.get(pk=aid)
        assert agreement.window_ends_at == WINDOW_ENDS
        assert "3栋1201" in agreement.rendered_text and "2938.00" in agreement.rendered_text

        base = f"/api/v1/signing/agreements/{aid}"
        lbase = f"/api/v1/lease/{lid}"
        # Out of order: no QR code, no phone step, no deposit before the rental information.
        assert error_code(desktop.post(f"{lbase}/qr/")) == "step_out_of_order"
        assert error_code(phone.post(f"{base}/steps/contract-viewed/")) == "step_out_of_order"
        assert error_code(phone.post(f"{lbase}/deposit/")) == "step_out_of_order"

        # 修改手机号: a code to the NEW number; a code of another purpose does not do.
        assert phone.post(f"{lbase}/mobile/code/", {"mobile": NEW_MOBILE}).status_code == 202
        code = code_sent_to(NEW_MOBILE, "更换手机号码")
        wrong = "000000" if code != "000000" else "111111"
        refused = phone.post(f"{lbase}/mobile/", {"mobile": NEW_MOBILE, "code": wrong})
        assert error_code(refused) == "sms_code_invalid"
        # A real code of another purpose, sent to the same new number, does not do either.
        sms_code_send(purpose=Purpose.LOGIN, subject="someone", phone=NEW_MOBILE, ip="10.3.0.5")
        login_code = code_sent_to(NEW_MOBILE, "登录")
        refused = phone.post(f"{lbase}/mobile/", {"mobile": NEW_MOBILE, "code": login_code})
        assert error_code(refused) == "sms_code_invalid"
        assert Applicant.objects.get(pk=applicant.pk).mobile != NEW_MOBILE
        changed = phone.post(f"{lbase}/mobile/", {"mobile": NEW_MOBILE, "code": code})
        assert changed.status_code == 200, changed.content
        assert Applicant.objects.get(pk=applicant.pk).mobile == NEW_MOBILE
        entry = Evidence.objects.get(agreement_id=aid, kind="mobile_changed")
        assert entry.data["new_mobile_masked"] == "139****5678"

        # 租金托收: both photos first, then the bank details.
        bank = {"bank": "ICBC", "account_number": ACCOUNT, "account_holder": "王小明"}
        assert error_code(phone.post(f"{lbase}/bank/", bank)) == "card_photos_required"
        assert upload(phone, lid, "front", photo_bytes()).status_code == 201
        assert (
            upload(phone, lid, "back", photo_bytes("PNG"), "back.png", "image/png").status_code
            == 201
        )
        photo = phone.get(f"{lbase}/photos/back/")
        assert photo.status_code == 200 and photo["Content-Type"] == "image/jpeg"
        assert photo["Cache-Control"] == "private, no-store"
        assert bytes(photo.content)[:2] == b"\xff\xd8"  # re-encoded, not the PNG sent
        bad = {
            "holder_not_main_applicant": {**bank, "account_holder": "李四"},
            "account_number_invalid": {**bank, "account_number": ACCOUNT[:-1] + "9"},
            "bank_unknown": {**bank, "bank": "NOPE"},
        }
        for code_, body in bad.items():
            assert error_code(phone.post(f"{lbase}/bank/", body)) == code_
        assert error_code(phone.post(f"{lbase}/bank/", {**bank, "account_number": "12ab"})) == (
            "account_number_invalid"
        )
        empty = phone.post(f"{lbase}/bank/", {"bank": "", "account_number": "  "})
        assert empty.status_code == 400
        assert empty.json()["error"]["fields"] == {
            "bank": ["请选择托收银行"],
            "account_number": ["请输入银行卡号"],
            "account_holder": ["请输入账户名"],
        }
        assert Lease.objects.get(pk=lid).bank_attempt == 0  # nothing changed
        confirmed = phone.post(
            f"{lbase}/bank/", {**bank, "account_number": "6222 0212 3456 7890 128"}
        )
        assert confirmed.status_code == 200, confirmed.content
        assert confirmed.json()["stage"] == "face"
        assert confirmed.json()["bank"]["account_masked"] == "6222 **** **** 0128"
        assert error_code(upload(phone, lid, "front", photo_bytes())) == "step_out_of_order"

        # 人脸识别 by QR: the desktop's code, the phone's steps 1-4.
        face_qr = desktop.post(f"{lbase}/qr/")
        assert face_qr.status_code == 201 and face_qr.json()["purpose"] == "face"
        # The agreement's own QR endpoint shows the lease stage's code too, never another.
        shown = desktop.post(f"{base}/qr/").json()
        assert shown["purpose"] == "face"
        # The newest code is the one on the screen; the one before it no longer opens.
        stale = face_qr.json()["url"].rsplit("/", 1)[1]
        assert error_code(phone.post("/api/v1/signing/qr/open/", {"token": stale})) == (
            "qr_superseded"
        )
        token = shown["url"].rsplit("/", 1)[1]
        opened = phone.post("/api/v1/signing/qr/open/", {"token": token}).json()
        assert (opened["agreement"], opened["purpose"]) == (aid, "face")
        versions = {
            k: phone.get(f"/api/v1/signing/consents/{k}/").json()["version"]
            for k in ConsentKind.values
        }

        def step(name, body=None, expect=200):
            response = phone.post(f"{base}/steps/{name}/", body or {})
            assert response.status_code == expect, (name, response.content)
            return response.json()

        step("contract-viewed")
        step("ecert-consent", {"versions": {k: versions[k] for k in ("ecert_service", "privacy")}})
        step("identity-confirm", {"versions": {k: versions[k] for k in ("privacy", "biometric")}})
        started_face = step("face-start")
        face_check_apply(
            result=FaceResult(
                order_id=started_face["order_id"],
                passed=True,
                score=96.5,
                result_id="R-lease",
                provider="dev",
            ),
            now=NOW,
        )
        step("face-complete", {"order_id": started_face["order_id"]})
        assert phone.get(lbase + "/").json()["stage"] == "contract"

        # 签订合同 by QR: read, one character per box, SMS to the new number, submit.
        sign_qr = desktop.post(f"{lbase}/qr/")
        assert sign_qr.json()["purpose"] == "sign"
        step("read", {"scrolled_to_end": True, "reading_seconds": 30})
        for index in range(3):
            response = phone.client.put(
                f"{base}/signature/{index}/",
                {"strokes": strokes(), "width": 300, "height": 300},
                content_type="application/json",
                headers={"X-CSRFToken": phone.csrf},
            )
            assert response.status_code == 200, response.content
        step("signature-complete")
        step("sms-code", expect=202)
        step("submit", {"code": code_sent_to(NEW_MOBILE, "签约确认")})
        assert phone.get(lbase + "/").json()["stage"] == "deposit"

        # Staff cannot review before the deposit: the application is not submitted yet.
        staff = applicant.user  # any actor: the gate refuses before anything else
        with pytest.raises(DomainError) as refused_review:
            services.agreement_approve(agreement_id=aid, actor=staff, now=NOW)
        assert refused_review.value.code == "deposit_not_paid"
        assert Agreement.objects.get(pk=aid).status == "signed"

        # 押金缴纳 by QR: the order, the provider's cashier, its signed notification.
        deposit_qr = desktop.post(f"{lbase}/qr/")
        assert deposit_qr.json()["purpose"] == "deposit"
        ordered = phone.post(f"{lbase}/deposit/")
        assert ordered.status_code == 200, ordered.content
        assert ordered.json()["amount_fen"] == 293800
        again = phone.post(f"{lbase}/deposit/")  # asking again: the same order
        assert again.json()["out_trade_no"] == ordered.json()["out_trade_no"]
        prepay_id = urlsplit(ordered.json()["pay_url"]).path.rstrip("/").rsplit("/", 1)[1]
        outcome = pay_dev.dev_pay_confirm(prepay_id=prepay_id)
        assert outcome is not None and outcome.delivered, notify.calls
        assert notify.calls[-1]["status"] == 200
        after = phone.post(f"{lbase}/deposit/refresh/").json()
        assert after["stage"] == "review"
        assert after["payment"]["status"] == "paid" and after["submitted_at"]
        assert error_code(phone.post(f"{lbase}/deposit/")) == "deposit_paid"
        payment = DepositPayment.objects.get(lease_id=lid)
        assert payment.transaction_id == outcome.transaction_id
        assert PaymentNotification.objects.filter(outcome="applied").count() == 1
        # Materials only after approval.
        assert error_code(phone.get(f"{lbase}/receipt/")) == "receipt_not_ready"

        from accounts.models import User

        reviewer = User.objects.create_user(username="reviewer1", is_staff=True)
        services.agreement_approve(agreement_id=aid, actor=reviewer, now=NOW)
        approved = phone.get(lbase + "/").json()
        assert approved["stage"] == "approved"
        assert approved["materials"] == {"contract": True, "receipt": True}
        assert SmsMessage.objects.filter(phone=NEW_MOBILE, kind="agreement_sealed").exists()
        contract = phone.get(f"{base}/document/?download=1")
        assert contract.status_code == 200 and contract["Content-Type"] == "application/pdf"
        receipt = phone.get(f"{lbase}/receipt/?download=1")
        assert receipt.status_code == 200 and receipt["Content-Type"] == "application/pdf"
        assert bytes(receipt.content).startswith(b"%PDF")
        records = phone.get("/api/v1/lease/").json()
        assert [r["id"] for r in records] == [lid]

        kinds = list(Evidence.objects.filter(agreement_id=aid).values_list("kind", flat=True))
        for kind in (
            "lease_started",
            "mobile_changed",
            "card_photo_uploaded",
            "bank_details_confirmed",
            "face_verified",
            "submitted",
            "deposit_paid",
            "sealed",
        ):
            assert kind in kinds
        assert evidence_verify(agreement_id=aid).first_bad_seq is None


def test_another_familys_lease_photos_and_receipt_are_unreachable(world, notify):
    with time_machine.travel(NOW, tick=True):
        own = logged_in(world.applicant)
        lid = own.post("/api/v1/lease/start/").json()["id"]
        assert upload(own, lid, "front", photo_bytes()).status_code == 201
        other = logged_in(world.other, "10.3.0.9")
        for url in (
            f"/api/v1/lease/{lid}/",
            f"/api/v1/lease/{lid}/photos/front/",
            f"/api/v1/lease/{lid}/receipt/",
        ):
            assert error_code(other.get(url)) == "lease_not_found", url
        for url, body in (
            (
                f"/api/v1/lease/{lid}/bank/",
                {"bank": "ICBC", "account_number": ACCOUNT, "account_holder": "x"},
            ),
            (f"/api/v1/lease/{lid}/qr/", {}),
            (f"/api/v1/lease/{lid}/deposit/", {}),
            (f"/api/v1/lease/{lid}/mobile/code/", {"mobile": NEW_MOBILE}),
        ):
            assert error_code(other.post(url, body)) == "lease_not_found", url
        assert error_code(upload(other, lid, "back", photo_bytes())) == "lease_not_found"
        aid = Lease.objects.get(pk=lid).agreement_id
        for url in (
            f"/api/v1/signing/agreements/{aid}/",
            f"/api/v1/signing/agreements/{aid}/document/",
        ):
            assert error_code(other.get(url)) == "agreement_not_found", url
        assert error_code(other.post(f"/api/v1/signing/agreements/{aid}/qr/")) == (
            "agreement_not_found"
        )
        assert CardPhoto.objects.filter(lease_id=lid).count() == 1
        # The other family's own lease is its own, not this one.
        assert other.post("/api/v1/lease/start/").json()["id"] != lid


def test_every_lease_endpoint_refuses_the_anonymous_and_staff(world):
    from accounts.models import User

    with time_machine.travel(NOW, tick=True):
        lid = logged_in(world.applicant).post("/api/v1/lease/start/").json()["id"]
        anonymous = ApiClient()
        staff = ApiClient()
        staff.client.force_login(User.objects.create_user(username="op1", is_staff=True))
        gets = [
            "/api/v1/lease/",
            f"/api/v1/lease/{lid}/",
            f"/api/v1/lease/{lid}/photos/front/",
            f"/api/v1/lease/{lid}/receipt/",
        ]
        posts = [
            "/api/v1/lease/start/",
            f"/api/v1/lease/{lid}/mobile/code/",
            f"/api/v1/lease/{lid}/mobile/",
            f"/api/v1/lease/{lid}/bank/",
            f"/api/v1/lease/{lid}/qr/",
            f"/api/v1/lease/{lid}/deposit/",
            f"/api/v1/lease/{lid}/deposit/refresh/",
        ]
        for url in gets:
            assert anonymous.get(url).status_code in (401, 403), url
            assert staff.get(url).status_code == 403, url
        for url in posts:
            assert anonymous.post(url).status_code in (401, 403), url
            assert staff.post(url).status_code == 403, url
        assert ApiClient().get("/api/v1/lease/banks/").status_code == 200


def test_start_without_an_allocation_is_refused(world):
    from accounts.services import applicant_user_ensure
    from tests.factories import FamilyFactory

    lonely = applicant_user_ensure(applicant=FamilyFactory().main_applicant)
    with time_machine.travel(NOW, tick=True):
        assert error_code(logged_in(lonely).post("/api/v1/lease/start/")) == "no_allocation"
    assert not Lease.objects.exists()


def test_phone_change_and_bank_refused_once_the_window_has_closed(world):
    with time_machine.travel(NOW, tick=True):
        api = logged_in(world.applicant)
        lid = api.post("/api/v1/lease/start/").json()["id"]
    with time_machine.travel(WINDOW_ENDS - timedelta(seconds=1), tick=False):
        api = logged_in(world.applicant)  # a fresh login: sessions do not last a week
        assert (
            api.post(f"/api/v1/lease/{lid}/mobile/code/", {"mobile": NEW_MOBILE}).status_code == 202
        )
    with time_machine.travel(WINDOW_ENDS, tick=False):
        api = logged_in(world.applicant)
        assert (
            error_code(api.post(f"/api/v1/lease/{lid}/mobile/code/", {"mobile": "13700000000"}))
            == "signing_closed"
        )
        assert error_code(upload(api, lid, "front", photo_bytes())) == "signing_closed"


def test_bad_uploads_are_refused_with_nothing_stored(world, settings):
    """Not an image, too large, a decompression bomb, a polyglot (a JPEG with a ZIP after
    it), an HTML file calling itself a JPEG: each a 400 with its code, no photo, no evidence."""
    from tests.signing.test_images import png_bomb, zip_bytes

    with time_machine.travel(NOW, tick=True):
        api = logged_in(world.applicant)
        lid = api.post("/api/v1/lease/start/").json()["id"]
        cases = [
            ("upload_not_image", b"just some text", "card.jpg", "image/jpeg"),
            ("upload_not_image", b"<html><script>alert(1)</script></html>", "a.jpg", "image/jpeg"),
            ("upload_too_many_pixels", png_bomb(30000, 30000), "bomb.png", "image/png"),
            ("upload_polyglot", photo_bytes() + zip_bytes(), "card.jpg", "image/jpeg"),
        ]
        for code, data, name, ctype in cases:
            assert error_code(upload(api, lid, "front", data, name, ctype)) == code, code
        settings.UPLOADS = {**settings.UPLOADS, "MAX_BYTES": 1000}
        assert error_code(upload(api, lid, "front", photo_bytes())) == "upload_too_large"
        missing = api.client.post(
            f"/api/v1/lease/{lid}/photos/front/", {}, headers={"X-CSRFToken": api.csrf}
        )
        assert error_code(missing) == "upload_empty"
        assert error_code(upload(api, lid, "middle", photo_bytes())) == "not_found"
    assert not CardPhoto.objects.exists()
    assert not Evidence.objects.filter(kind="card_photo_uploaded").exists()
