"""The QR code is the phone's way in (issue 11): opening a ticket starts a signing session
scoped to that agreement and stage, never a login; identity is proved by the face check on
that phone and the SMS code; a second phone takes over; tickets live a bounded time."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine

from accounts.models import DeviceSession
from core.errors import DomainError
from events.models import Event
from realtime.access import may_read, qr_stream_token, qr_token_read
from signing.agreements import phone, qr
from signing.face import FaceResult
from signing.face.services import face_check_apply
from signing.models import (
    Agreement,
    ConsentKind,
    Evidence,
    QrScan,
    QrTicket,
    SigningSession,
)
from sms.models import DevInboxMessage
from tests.mobile_api.conftest import ApiClient, error_code
from tests.signing.lease_worlds import NOW as LEASE_NOW
from tests.signing.test_lease_journey import notify, world  # noqa: F401 (fixtures)
from tests.signing.worlds import CLOSES, CTX, OPENS, make_agreement, strokes

pytestmark = pytest.mark.django_db

NOW = OPENS + timedelta(hours=1)
S = timedelta(seconds=1)


def _issue(agreement, applicant, now=NOW):
    return qr.qr_ticket_issue(agreement=agreement, applicant=applicant, session_key="desk", now=now)


def _open(ticket, *, device="phone-one-device-id", applicant=None, now=NOW):
    return phone.phone_session_open(
        token=ticket.token, applicant=applicant, device_id=device, ctx=CTX, now=now
    )


# ------------------------------------------------------------------ tickets and their lifetime


def test_a_ticket_lives_its_purposes_time_and_never_past_the_window(settings):
    agreement, applicant = make_agreement()
    ticket = _issue(agreement, applicant)
    assert ticket.expires_at == NOW + timedelta(seconds=settings.SIGNING["QR_TTL_SECONDS"]["sign"])
    late = _issue(agreement, applicant, now=CLOSES - timedelta(minutes=5))
    assert late.expires_at == CLOSES
    assert qr.qr_png(ticket)[:8] == b"\x89PNG\r\n\x1a\n"


def test_opening_at_the_expiry_boundary():
    agreement, applicant = make_agreement()
    ticket = _issue(agreement, applicant)
    assert _open(ticket, now=ticket.expires_at - S).session.expires_at == ticket.expires_at
    with pytest.raises(DomainError) as caught:
        _open(ticket, now=ticket.expires_at)
    assert caught.value.code == "qr_expired"
    with pytest.raises(DomainError) as caught:
        phone.phone_session_open(
            token="forged-token-xxxxxxxx", applicant=None, device_id="d" * 20, ctx=CTX, now=NOW
        )
    assert caught.value.code == "qr_invalid"
    assert list(QrScan.objects.order_by("id").values_list("accepted", "reason")) == [
        (True, ""),
        (False, "expired"),
    ]


def test_the_progress_token_lives_no_longer_than_its_ticket():
    agreement, applicant = make_agreement()
    ticket = _issue(agreement, applicant)
    token = qr_stream_token(ticket_id=str(ticket.pk), expires_at=ticket.expires_at)
    stream = f"qr.{ticket.pk}"
    with time_machine.travel(ticket.expires_at - S, tick=False):
        assert qr_token_read(token)[0] == str(ticket.pk)
        assert may_read(stream=stream, user=None, session_key=None, token=token)
    with time_machine.travel(ticket.expires_at, tick=False):
        assert qr_token_read(token) is None
        assert not may_read(stream=stream, user=None, session_key=None, token=token)
    assert qr_token_read(token[:-2] + "xx") is None


# ------------------------------------------------------------------ opening, takeover


def test_opening_starts_a_scoped_session_not_a_login_and_tells_the_desktop():
    agreement, applicant = make_agreement()
    ticket = _issue(agreement, applicant)
    opened = _open(ticket)
    session = opened.session
    assert session.agreement_id == agreement.pk and session.purpose == "sign"
    assert session.secret_hash != opened.secret and len(opened.secret) >= 40
    assert not DeviceSession.objects.exists()  # nobody logged in, nobody logged out
    scan = QrScan.objects.get()
    assert scan.accepted and scan.session_id == session.pk and scan.user is None
    evidence = Evidence.objects.get(agreement=agreement, kind="qr_scanned")
    assert evidence.data["signing_session"] == session.pk and not evidence.data["logged_in"]
    assert list(Event.objects.values_list("type", flat=True)) == ["qr.scanned"]
    assert phone.phone_session_get(secret=opened.secret, now=NOW) == session
    assert phone.phone_session_get(secret="unknown", now=NOW) is None


def test_another_applicants_login_is_refused_and_recorded():
    agreement, applicant = make_agreement()
    _, stranger = make_agreement(name="张三")
    ticket = _issue(agreement, applicant)
    with pytest.raises(DomainError) as caught:
        _open(ticket, applicant=stranger)
    assert caught.value.code == "qr_not_yours"
    assert "只有主申请人本人" in caught.value.message
    assert list(QrScan.objects.values_list("accepted", "reason")) == [(False, "not_owner")]
    assert not SigningSession.objects.exists()


@pytest.mark.parametrize(
    "status, message",
    [
        ("signed", "该协议已签字，无需再次扫码"),
        ("abandoned", "该协议已放弃签约，无需扫码"),
    ],
)
def test_a_code_with_nothing_left_to_sign_says_so_in_the_words_of_a_scan(status, message):
    # Not the signing steps' 「协议当前状态为「已签字」，不能签署」: same code, scan's words.
    agreement, applicant = make_agreement()
    ticket = _issue(agreement, applicant)
    Agreement.objects.filter(pk=agreement.pk).update(status=status)
    with pytest.raises(DomainError) as caught:
        _open(ticket)
    assert (caught.value.code, caught.value.kind) == ("agreement_not_pending", "conflict")
    assert caught.value.message == message
    assert list(QrScan.objects.values_list("accepted", "reason")) == [
        (False, "agreement_not_pending")
    ]
    assert not SigningSession.objects.exists()


def test_a_second_phone_takes_over_and_the_first_is_told():
    agreement, applicant = make_agreement()
    ticket = _issue(agreement, applicant)
    first = _open(ticket, device="first-phone-device")
    second = _open(ticket, device="second-phone-device", now=NOW + S)
    assert second.took_over
    with pytest.raises(phone.SigningSessionTakenOver) as caught:
        phone.phone_session_get(secret=first.secret, now=NOW + 2 * S)
    assert "另一部手机" in caught.value.message
    assert phone.phone_session_get(secret=second.secret, now=NOW + 2 * S) == second.session
    taken = Evidence.objects.get(agreement=agreement, kind="phone_taken_over")
    assert taken.data["ended_session"] == first.session.pk
    assert taken.data["signing_session"] == second.session.pk
    assert Event.objects.filter(type="qr.taken_over").count() == 1
    # The same phone scanning again is no takeover.
    third = _open(ticket, device="second-phone-device", now=NOW + 3 * S)
    assert not third.took_over
    assert SigningSession.objects.get(pk=second.session.pk).end_reason == "superseded"
    assert Evidence.objects.filter(kind="phone_taken_over").count() == 1


def test_only_the_newest_code_opens_and_one_phone_signs_across_codes():
    """The desktop reloaded: a new code (another 识别码) replaces the one shown before. The
    old code no longer opens (a phone comparing 识别码 would see the screen's); a phone
    already signing through it goes on until the new code is opened, which takes over."""
    agreement, applicant = make_agreement()
    old = _issue(agreement, applicant)
    signing = _open(old, device="first-phone-device")
    new = _issue(agreement, applicant, now=NOW + S)
    with pytest.raises(DomainError) as caught:
        _open(old, device="second-phone-device", now=NOW + 2 * S)
    assert (caught.value.code, caught.value.kind) == ("qr_superseded", "forbidden")
    assert "电脑端当前显示的二维码" in caught.value.message
    refused = QrScan.objects.filter(ticket=old, accepted=False)
    assert list(refused.values_list("reason", flat=True)) == ["qr_superseded"]
    # The phone that opened the old code is still signing …
    assert phone.phone_session_get(secret=signing.secret, now=NOW + 2 * S) == signing.session
    # … until another phone opens the code on the screen: a takeover, told on the old stream.
    second = _open(new, device="second-phone-device", now=NOW + 3 * S)
    assert second.took_over
    with pytest.raises(phone.SigningSessionTakenOver):
        phone.phone_session_get(secret=signing.secret, now=NOW + 4 * S)
    told = Event.objects.get(type="qr.taken_over")
    assert told.stream == f"qr.{old.pk}"
    assert SigningSession.objects.filter(agreement=agreement, ended_at__isnull=True).count() == 1
    # Control: the newest code still opens, again and again (the same phone: no takeover).
    again = _open(new, device="second-phone-device", now=NOW + 5 * S)
    assert again.session.ticket == new and not again.took_over


def test_a_session_ends_with_its_ticket():
    agreement, applicant = make_agreement()
    ticket = _issue(agreement, applicant)
    opened = _open(ticket)
    assert phone.phone_session_get(secret=opened.secret, now=ticket.expires_at - S)
    with pytest.raises(phone.SigningSessionEnded):
        phone.phone_session_get(secret=opened.secret, now=ticket.expires_at)


# ------------------------------------------------------------------ through the API


def _versions(client: ApiClient) -> dict:
    return {
        k: client.get(f"/api/v1/signing/consents/{k}/").json()["version"]
        for k in ConsentKind.values
    }


@pytest.fixture
def signing_world():
    agreement, applicant = make_agreement(name="林安平")
    desktop = ApiClient(ip="10.9.0.1")
    desktop.login(applicant)
    return agreement, applicant, desktop


def _scan(desktop: ApiClient, agreement, *, ip="10.9.0.2") -> tuple[ApiClient, dict]:
    issued = desktop.post(f"/api/v1/signing/agreements/{agreement.pk}/qr/")
    assert issued.status_code == 201, issued.content
    token = issued.json()["url"].rsplit("/", 1)[1]
    handset = ApiClient(ip=ip)  # a phone that has never logged in
    opened = handset.post("/api/v1/signing/qr/open/", {"token": token})
    assert opened.status_code == 200, opened.content
    return handset, opened.json()


@pytest.mark.django_db(transaction=True)
def test_the_whole_flow_on_a_phone_that_never_logs_in(signing_world):
    agreement, applicant, desktop = signing_world
    with time_machine.travel(NOW, tick=True):
        handset, opened = _scan(desktop, agreement)
        assert opened["next_url"] == f"/h5/signing/{agreement.pk}/sign/"
        base = f"/api/v1/signing/agreements/{agreement.pk}"

        # Before the face check: masked details, no text.
        shown = handset.get(f"{base}/").json()
        assert shown["real_name"] == "林**" and "text" not in shown and "signer_name" not in shown
        assert shown["id_number_masked"] == applicant.id_number_masked
        assert shown["session"]["purpose"] == "sign" and not shown["session"]["verified"]

        def step(name, body=None, expect=200):
            response = handset.post(f"{base}/steps/{name}/", body or {})
            assert response.status_code == expect, (name, response.content)
            return response.json()

        versions = _versions(handset)
        step("contract-viewed")
        step("ecert-consent", {"versions": {k: versions[k] for k in ("ecert_service", "privacy")}})
        step("identity-confirm", {"versions": {k: versions[k] for k in ("privacy", "biometric")}})
        # Nothing past the face check before it.
        assert error_code(handset.post(f"{base}/steps/read/", {})) == "face_required"
        started = step("face-start")
        face_check_apply(
            result=FaceResult(
                order_id=started["order_id"], passed=True, score=97.0, result_id="R", provider="dev"
            ),
            now=NOW,
        )
        step("face-complete", {"order_id": started["order_id"]})
        shown = handset.get(f"{base}/").json()
        assert shown["real_name"] == "林安平" and "第一条" in shown["text"]
        assert shown["session"]["verified"]
        step("read", {"scrolled_to_end": True, "reading_seconds": 30})
        for index in range(3):
            response = handset.client.put(
                f"{base}/signature/{index}/",
                {"strokes": strokes(), "width": 300, "height": 300},
                content_type="application/json",
                headers={"X-CSRFToken": handset.csrf},
            )
            assert response.status_code == 200, response.content
        step("signature-complete")
        step("sms-code", expect=202)
        text = DevInboxMessage.objects.filter(phone=applicant.mobile).order_by("-id").first().text
        code = re.search(r"验证码为(\d{6})", text).group(1)
        assert step("submit", {"code": code})["status"] == "signed"

    # The desktop stayed logged in throughout; the phone never logged in.
    assert desktop.get("/api/v1/me/").status_code == 200
    assert handset.get("/api/v1/me/").status_code in (401, 403)
    assert DeviceSession.objects.filter(ended_at__isnull=True).count() == 1
    rows = list(Evidence.objects.filter(agreement=agreement).values_list("kind", "data"))
    by_phone = [(kind, data) for kind, data in rows if kind not in ("created", "face_check_result")]
    assert [kind for kind, _ in by_phone][:2] == ["qr_scanned", "contract_viewed"]
    assert by_phone[-1][0] == "submitted"
    # Every phone step carries the session it came through.
    assert all(data.get("signing_session") for _, data in by_phone), by_phone


@pytest.mark.django_db(transaction=True)
def test_a_phone_session_is_refused_everywhere_else(signing_world):
    agreement, applicant, desktop = signing_world
    other, other_applicant = make_agreement(name="周全")
    with time_machine.travel(NOW, tick=True):
        handset, _ = _scan(desktop, agreement)
        base = f"/api/v1/signing/agreements/{agreement.pk}"
        before = Evidence.objects.count()
        # Another agreement, the applicant's other pages, the desktop's operations.
        assert (
            error_code(
                handset.post(f"/api/v1/signing/agreements/{other.pk}/steps/contract-viewed/")
            )
            == "signing_session_scope"
        )
        assert error_code(handset.get(f"/api/v1/signing/agreements/{other.pk}/")) == (
            "signing_session_scope"
        )
        for url in ("/api/v1/signing/agreements/", "/api/v1/me/", "/api/v1/lease/"):
            assert handset.get(url).status_code in (401, 403), url
        assert handset.post(f"{base}/qr/").status_code in (401, 403)
        assert handset.post(f"{base}/abandon/", {"declaration_version": "0" * 64}).status_code in (
            401,
            403,
        )
        assert handset.get(f"{base}/document/").status_code in (401, 403)
        # A step out of order.
        assert error_code(handset.post(f"{base}/steps/identity-confirm/", {"versions": {}})) in (
            "step_out_of_order",
            "consent_outdated",
        )
        assert error_code(handset.post(f"{base}/steps/submit/", {"code": "123456"})) == (
            "face_required"
        )
        # An unknown step name.
        assert error_code(handset.post(f"{base}/steps/teleport/")) == "not_found"
        assert Agreement.objects.get(pk=agreement.pk).step == 0
        assert Evidence.objects.count() == before  # nothing changed
        # A phone without any session.
        stranger = ApiClient(ip="10.9.0.9")
        assert error_code(stranger.get(f"{base}/")) == "not_authenticated"
        assert error_code(stranger.post(f"{base}/steps/contract-viewed/")) == "not_authenticated"
        # A logged-in other applicant with the leaked cookie still sees nothing.
        other_phone = ApiClient(ip="10.9.0.10")
        other_phone.login(other_applicant)
        other_phone.client.cookies["anju_sign"] = handset.client.cookies["anju_sign"].value
        assert error_code(other_phone.get(f"{base}/")) == "agreement_not_found"


@pytest.mark.django_db(transaction=True)
def test_takeover_and_expiry_through_the_api(signing_world):
    agreement, applicant, desktop = signing_world
    base = f"/api/v1/signing/agreements/{agreement.pk}"
    with time_machine.travel(NOW, tick=False):
        issued = desktop.post(f"{base}/qr/").json()
        token = issued["url"].rsplit("/", 1)[1]
        first, second = ApiClient(ip="10.9.0.2"), ApiClient(ip="10.9.0.3")
        assert first.post("/api/v1/signing/qr/open/", {"token": token}).status_code == 200
        assert first.post(f"{base}/steps/contract-viewed/").status_code == 200
        taken = second.post("/api/v1/signing/qr/open/", {"token": token})
        assert taken.json()["took_over"] is True
        refused = first.post(f"{base}/steps/ecert-consent/", {"versions": _versions(first)})
        assert refused.status_code == 401 and error_code(refused) == "signing_session_taken_over"
        assert Agreement.objects.get(pk=agreement.pk).step == 1
        page = first.get(f"/h5/signing/{agreement.pk}/sign/")
        assert page.status_code == 401 and "另一部手机" in page.content.decode()
        assert second.get(f"{base}/").status_code == 200
    expires = SigningSession.objects.get(ended_at__isnull=True).expires_at
    with time_machine.travel(expires, tick=False):
        late = second.post(f"{base}/steps/ecert-consent/", {"versions": _versions(second)})
        assert error_code(late) == "signing_session_ended"
        # The expired code itself: a clear refusal, recorded.
        again = ApiClient(ip="10.9.0.4").post("/api/v1/signing/qr/open/", {"token": token})
        assert again.status_code == 403 and error_code(again) == "qr_expired"
    assert Agreement.objects.get(pk=agreement.pk).step == 1


def test_the_phone_page_shows_the_scanned_codes_identifier(signing_world):
    """The 电子合同 page of a phone that opened a code shows that code's 识别码 (the desktop
    prints it beside the code: the applicant compares the two); a page not opened by a code
    shows none, and neither does one whose code was taken over by another phone."""
    agreement, applicant, desktop = signing_world
    base = f"/api/v1/signing/agreements/{agreement.pk}"
    page_url = f"/h5/signing/{agreement.pk}/sign/"
    with time_machine.travel(NOW, tick=False):
        token = desktop.post(f"{base}/qr/").json()["url"].rsplit("/", 1)[1]
        code = QrTicket.objects.get(token=token).short_code
        shown = f"{code[:4]} {code[4:]}"
        assert 'id="phone-qr-code"' not in desktop.get(page_url).content.decode()  # no code

        handset = ApiClient(ip="10.9.0.2")
        assert handset.post("/api/v1/signing/qr/open/", {"token": token}).status_code == 200
        page = handset.get(page_url).content.decode()
        assert re.search(rf'id="phone-qr-code"[^>]*>{shown}<', page), page
        assert "识别码应与电脑屏幕上二维码下方的一致" in page

        # The logged-in desktop scanning its own code (as a phone with the login would)
        assert desktop.post("/api/v1/signing/qr/open/", {"token": token}).status_code == 200
        assert re.search(
            rf'id="phone-qr-code"[^>]*>{shown}<', desktop.get(page_url).content.decode()
        )
        # … then another phone takes over: the login still opens the page, without a code
        ApiClient(ip="10.9.0.3").post("/api/v1/signing/qr/open/", {"token": token})
        page = desktop.get(page_url)
        assert page.status_code == 200 and 'id="phone-qr-code"' not in page.content.decode()


def test_bad_open_requests_are_4xx_with_nothing_changed():
    api = ApiClient()
    for body in ({}, {"token": ""}, {"token": "x" * 200}, {"token": ["a"]}):
        response = api.post("/api/v1/signing/qr/open/", body)
        assert 400 <= response.status_code < 500, (body, response.content)
        error_code(response)
    assert error_code(api.post("/api/v1/signing/qr/open/", {"token": "a" * 32})) == "qr_invalid"
    assert api.post("/api/v1/signing/qr/open/", {"token": "a" * 32}, csrf=False).status_code == 403
    assert not SigningSession.objects.exists() and not QrScan.objects.exists()


# ------------------------------------------------------------------ the lease: three codes


def _lease_at_face_stage(lease_world):
    """The lease of guide 000 with its rental information done (the desktop's part)."""
    from signing.lease import services as leases
    from signing.lease.card_photos import card_photo_clean
    from tests.signing.lease_worlds import ACCOUNT, photo_bytes

    with time_machine.travel(LEASE_NOW, tick=False):
        lease = leases.lease_start(applicant=lease_world.applicant, ctx=CTX, now=LEASE_NOW)
        for side in ("front", "back"):
            leases.lease_card_photo_upload(
                lease=lease,
                applicant=lease_world.applicant,
                side=side,
                data=photo_bytes(),
                filename="card.jpg",
                declared_type="image/jpeg",
                ctx=CTX,
                now=LEASE_NOW,
            )
        assert card_photo_clean  # the same checks as the page's uploads
        leases.lease_bank_confirm(
            lease=lease,
            applicant=lease_world.applicant,
            bank="ICBC",
            account_number=ACCOUNT,
            account_holder=lease_world.applicant.real_name,
            ctx=CTX,
            now=LEASE_NOW,
        )
    return lease


def _face_pass(handset: ApiClient, base: str) -> None:
    started = handset.post(f"{base}/steps/face-start/")
    assert started.status_code == 200, started.content
    order = started.json()["order_id"]
    face_check_apply(
        result=FaceResult(order_id=order, passed=True, score=95.0, result_id="R", provider="dev"),
        now=LEASE_NOW,
    )
    done = handset.post(f"{base}/steps/face-complete/", {"order_id": order})
    assert done.status_code == 200, done.content


def _open_with(handset: ApiClient, desktop: ApiClient, lease_id: int) -> dict:
    issued = desktop.post(f"/api/v1/lease/{lease_id}/qr/")
    assert issued.status_code == 201, issued.content
    token = issued.json()["url"].rsplit("/", 1)[1]
    opened = handset.post("/api/v1/signing/qr/open/", {"token": token})
    assert opened.status_code == 200, opened.content
    return {**opened.json(), "token": token}


@pytest.mark.django_db(transaction=True)
def test_the_lease_three_codes_on_a_phone_that_never_logs_in(world, notify):  # noqa: F811
    from urllib.parse import urlsplit

    from signing.lease.payments import dev as pay_dev
    from signing.models import Lease

    lease = _lease_at_face_stage(world)
    aid, lid = lease.agreement_id, lease.pk
    base, lbase = f"/api/v1/signing/agreements/{aid}", f"/api/v1/lease/{lid}"
    desktop = ApiClient(ip="10.8.0.1")
    desktop.login(world.applicant)
    handset = ApiClient(ip="10.8.0.2")
    with time_machine.travel(LEASE_NOW, tick=True):
        # 人脸识别: the face code allows the steps up to the face check, nothing after.
        face = _open_with(handset, desktop, lid)
        assert (
            face["purpose"] == "face" and face["next_url"] == f"/h5/signing/{aid}/sign/?until=face"
        )
        assert error_code(handset.post(f"{base}/steps/read/", {})) == "signing_session_scope"
        assert error_code(handset.post(f"{lbase}/deposit/")) == "signing_session_scope"
        versions = _versions(handset)
        for name, body in (
            ("contract-viewed", {}),
            ("ecert-consent", {"versions": {k: versions[k] for k in ("ecert_service", "privacy")}}),
            ("identity-confirm", {"versions": {k: versions[k] for k in ("privacy", "biometric")}}),
        ):
            assert handset.post(f"{base}/steps/{name}/", body).status_code == 200, name
        _face_pass(handset, base)
        # The face code is spent: the stage moved on.
        stale = ApiClient(ip="10.8.0.7").post("/api/v1/signing/qr/open/", {"token": face["token"]})
        assert error_code(stale) == "qr_stage_mismatch"

        # 签订合同: a stranger's phone with a leaked screenshot sees nothing and cannot read.
        stranger = ApiClient(ip="10.8.0.9")
        token = _open_with(stranger, desktop, lid)["token"]
        seen = stranger.get(f"{base}/").json()
        assert "text" not in seen and seen["real_name"].endswith("**")
        assert seen["session"]["verify_needed"] is True
        assert error_code(stranger.post(f"{base}/steps/read/", {})) == "face_required"
        failed = stranger.post(f"{base}/steps/face-start/")  # a reverification, not the flow
        assert failed.status_code == 200
        face_check_apply(
            result=FaceResult(
                order_id=failed.json()["order_id"],
                passed=False,
                score=12.0,
                result_id="NO",
                provider="dev",
            ),
            now=LEASE_NOW,
        )
        refused = stranger.post(
            f"{base}/steps/face-complete/", {"order_id": failed.json()["order_id"]}
        )
        assert error_code(refused) == "face_not_passed"
        assert "text" not in stranger.get(f"{base}/").json()
        # The applicant's own phone (passed the face check) opens it again: it takes over and
        # goes on at once, without a second face check.
        again = handset.post("/api/v1/signing/qr/open/", {"token": token})
        assert again.json()["took_over"] is True
        assert error_code(stranger.get(f"{base}/")) == "signing_session_taken_over"
        shown = handset.get(f"{base}/").json()
        assert shown["session"]["verified"] and "text" in shown
        assert (
            handset.post(
                f"{base}/steps/read/", {"scrolled_to_end": True, "reading_seconds": 20}
            ).status_code
            == 200
        )
        for index in range(len(shown["signer_name"])):
            response = handset.client.put(
                f"{base}/signature/{index}/",
                {"strokes": strokes(), "width": 300, "height": 300},
                content_type="application/json",
                headers={"X-CSRFToken": handset.csrf},
            )
            assert response.status_code == 200, response.content
        assert handset.post(f"{base}/steps/signature-complete/").status_code == 200
        assert handset.post(f"{base}/steps/sms-code/").status_code == 202
        text = DevInboxMessage.objects.filter(phone=world.applicant.mobile).order_by("-id").first()
        code = re.search(r"验证码为(\d{6})", text.text).group(1)
        assert handset.post(f"{base}/steps/submit/", {"code": code}).status_code == 200

        # 押金缴纳: the deposit code, on the same phone.
        deposit = _open_with(handset, desktop, lid)
        assert (
            deposit["purpose"] == "deposit" and deposit["next_url"] == f"/h5/lease/{lid}/deposit/"
        )
        assert handset.get(f"{lbase}/").json()["deposit_fen"] > 0
        assert error_code(handset.post(f"{base}/steps/read/", {})) == "signing_session_scope"
        assert handset.get(f"{lbase}/photos/front/").status_code in (401, 403)
        ordered = handset.post(f"{lbase}/deposit/")
        assert ordered.status_code == 200, ordered.content
        prepay_id = urlsplit(ordered.json()["pay_url"]).path.rstrip("/").rsplit("/", 1)[1]
        assert pay_dev.dev_pay_confirm(prepay_id=prepay_id).delivered
        assert handset.post(f"{lbase}/deposit/refresh/").json()["stage"] == "review"

    assert Lease.objects.get(pk=lid).deposit_paid_at is not None
    assert desktop.get("/api/v1/me/").status_code == 200  # logged in all along
    assert DeviceSession.objects.filter(ended_at__isnull=True).count() == 1
    kinds = list(Evidence.objects.filter(agreement_id=aid).values_list("kind", flat=True))
    assert kinds.count("qr_scanned") == 4 and "phone_taken_over" in kinds
