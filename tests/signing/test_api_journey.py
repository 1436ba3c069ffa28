"""The whole signing journey through the API, and the refusals at its edges."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.services import applicant_user_ensure
from signing.face import FaceResult
from signing.face.services import face_check_apply
from signing.models import Agreement, ConsentKind, FaceCheck
from sms.models import DevInboxMessage
from tests.mobile_api.conftest import ApiClient, error_code
from tests.signing.worlds import make_agreement, strokes

pytestmark = pytest.mark.django_db(transaction=True)


def logged_in(applicant) -> ApiClient:
    api = ApiClient()
    api.client.force_login(applicant_user_ensure(applicant=applicant).user)
    return api


def test_full_journey_desktop_qr_phone_steps_submit_review_and_verify(settings):
    now = timezone.now()
    agreement, applicant = make_agreement(name="王小明", now=now)
    Agreement.objects.filter(pk=agreement.pk).update(
        window_starts_at=now - timedelta(hours=1), window_ends_at=now + timedelta(days=3)
    )
    desktop, phone = logged_in(applicant), logged_in(applicant)
    base = f"/api/v1/signing/agreements/{agreement.pk}"
    issued = desktop.post(f"{base}/qr/")
    assert issued.status_code == 201, issued.content
    token = issued.json()["url"].rsplit("/", 1)[1]
    assert (
        phone.post("/api/v1/signing/qr/open/", {"token": token}).json()["agreement"] == agreement.pk
    )

    def step(name, body=None, expect=200):
        response = phone.post(f"{base}/steps/{name}/", body or {})
        assert response.status_code == expect, (name, response.content)
        return response.json()

    versions = {
        k: phone.get(f"/api/v1/signing/consents/{k}/").json()["version"] for k in ConsentKind.values
    }
    assert (
        error_code(phone.post(f"{base}/steps/ecert-consent/", {"versions": versions}))
        == "step_out_of_order"
    )
    step("contract-viewed")
    step("ecert-consent", {"versions": {k: versions[k] for k in ("ecert_service", "privacy")}})
    step("identity-confirm", {"versions": {k: versions[k] for k in ("privacy", "biometric")}})
    started = step("face-start")
    assert started["redirect_url"].startswith(settings.SITE_URL)
    face_check_apply(  # the provider's signed callback, as the dev provider would deliver it
        result=FaceResult(
            order_id=started["order_id"], passed=True, score=96.5, result_id="R-1", provider="dev"
        ),
        now=timezone.now(),
    )
    step("face-complete", {"order_id": started["order_id"]})
    step("read", {"scrolled_to_end": True, "reading_seconds": 40})
    for index in range(3):
        response = phone.client.put(
            f"{base}/signature/{index}/",
            {"strokes": strokes(), "width": 300, "height": 300},
            content_type="application/json",
            headers={"X-CSRFToken": phone.csrf},
        )
        assert response.status_code == 200, response.content
    step("signature-complete")
    assert step("sms-code", expect=202)["sent"] is True
    text = DevInboxMessage.objects.filter(phone=applicant.mobile).order_by("-id").first().text
    code = re.search(r"验证码为(\d{6})", text).group(1)
    signed = step("submit", {"code": code})
    assert signed["status"] == "signed"
    pdf = phone.get(f"{base}/document/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert bytes(pdf.content)[:5] == b"%PDF-"
    assert FaceCheck.objects.get(order_id=started["order_id"]).score == 96.5
    verify = Client().get(f"/api/v1/signing/verify/{agreement.verification_code}/").json()
    assert verify["status"] == "signed" and len(verify["pdf_sha256"]) == 64


def test_another_familys_agreement_and_documents_are_unreachable():
    agreement, _ = make_agreement()
    _, stranger = make_agreement(name="张三")
    api = logged_in(stranger)
    base = f"/api/v1/signing/agreements/{agreement.pk}"
    for response in (
        api.get(f"{base}/"),
        api.get(f"{base}/document/"),
        api.post(f"{base}/qr/"),
        api.post(f"{base}/steps/contract-viewed/"),
        api.get(f"{base}/abandon/"),
    ):
        assert response.status_code == 404 and error_code(response) == "agreement_not_found"
    assert ApiClient().get(f"{base}/").status_code == 401


def test_bad_inputs_are_4xx_and_change_nothing():
    now = timezone.now()
    agreement, applicant = make_agreement(now=now)
    Agreement.objects.filter(pk=agreement.pk).update(
        window_starts_at=now - timedelta(hours=1), window_ends_at=now + timedelta(days=1)
    )
    api = logged_in(applicant)
    base = f"/api/v1/signing/agreements/{agreement.pk}"
    assert error_code(api.post(f"{base}/steps/launch/")) == "not_found"
    assert error_code(api.post(f"{base}/steps/submit/", {"code": "12"})) == "invalid_input"
    assert (
        error_code(api.post(f"{base}/steps/read/", {"scrolled_to_end": "maybe"})) == "invalid_input"
    )
    assert error_code(api.post("/api/v1/signing/qr/open/", {"token": "nope"})) == "qr_invalid"
    assert error_code(api.get("/api/v1/signing/consents/lunch/")) == "not_found"
    assert error_code(Client().get("/api/v1/signing/verify/NOPE/")) == "verification_not_found"
    assert Agreement.objects.get(pk=agreement.pk).step == 0


def test_after_the_window_everything_is_refused():
    now = timezone.now()
    agreement, applicant = make_agreement(now=now)
    api = logged_in(applicant)
    with time_machine.travel(agreement.window_ends_at + timedelta(seconds=1)):
        response = api.post(f"/api/v1/signing/agreements/{agreement.pk}/steps/contract-viewed/")
    assert response.status_code == 403 and error_code(response) == "signing_closed"
