"""Staff: bulk create and push, the review page, approve → sealed PDF, reject → 待签字 with
the reason by SMS; who may do what."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry
from selection.demo import STAFF_PASSWORD, demo_staff_accounts
from signing.agreements import flow
from signing.agreements.pdf_verify import pdf_validate
from signing.agreements.seed import texts_seed
from signing.models import Agreement, AgreementDocument, AgreementTemplate, Evidence
from sms.models import DevInboxMessage, SmsMessage
from tests.factories import FamilyFactory
from tests.signing.test_flow import steps_to
from tests.signing.worlds import CTX

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staff():
    """The demo's staff accounts and families ranked 1–3 (the whole demo, 100 families and
    200 units, took ~3 s of CPU per test)."""
    demo_staff_accounts()
    for rank in (1, 2, 3):
        FamilyFactory(rank=rank)
    texts_seed()

    def login(role: str) -> Client:
        client = Client()
        assert client.login(username=role, password=STAFF_PASSWORD)
        return client

    return login


def bulk_create(client, ranks="1-3"):
    now = timezone.localtime()
    return client.post(
        "/admin/signing/agreement/bulk-create/",
        {
            "template": AgreementTemplate.objects.get(kind="rent_subsidy").pk,
            "ranks": ranks,
            "window_starts_at": (now - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M"),
            "window_ends_at": (now + timedelta(days=3)).strftime("%Y-%m-%d %H:%M"),
            "push": "on",
        },
    )


def signed_agreement():
    agreement = Agreement.objects.order_by("family__rank").first()
    applicant = agreement.family.main_applicant
    from accounts.services import applicant_user_ensure

    applicant_user_ensure(applicant=applicant)
    now = timezone.now()
    steps_to(agreement, applicant, 7, now=now)
    # the SMS code step, with the code read back from the console provider
    flow.sign_code_send(agreement_id=agreement.pk, applicant=applicant, ctx=CTX, now=now)
    code = re.search(
        r"验证码为(\d{6})", DevInboxMessage.objects.order_by("-id").first().text
    ).group(1)
    flow.sign_submit(agreement_id=agreement.pk, applicant=applicant, code=code, ctx=CTX, now=now)
    agreement.refresh_from_db()
    return agreement


def test_operator_bulk_creates_and_pushes(staff):
    response = bulk_create(staff("operator"))
    assert response.status_code == 302
    assert Agreement.objects.filter(status="pending").count() == 3
    assert SmsMessage.objects.filter(kind="agreement_pushed").count() == 3
    assert AuditEntry.objects.filter(action="signing.agreements_create").exists()
    again = bulk_create(staff("operator"))  # the same families again: refused, nothing doubled
    assert again.status_code == 302 and Agreement.objects.count() == 3


def test_reviewer_cannot_create_and_operator_cannot_review(staff):
    assert bulk_create(staff("reviewer")).status_code == 403
    bulk_create(staff("operator"))
    agreement = Agreement.objects.first()
    assert (
        staff("operator").get(f"/admin/signing/agreement/{agreement.pk}/review/").status_code == 403
    )


def test_approve_seals_with_an_incremental_signature_and_tells_the_applicant(staff):
    bulk_create(staff("operator"))
    agreement = signed_agreement()
    reviewer = staff("reviewer")
    page = reviewer.get(f"/admin/signing/agreement/{agreement.pk}/review/")
    assert page.status_code == 200 and page.content.decode().count("data:image/png;base64,") == len(
        agreement.signer_name
    )
    # The admin's own button look (a bare <button> is unstyled), the main action marked.
    assert 'value="approve" class="button default"' in page.content.decode()
    assert 'value="reject" class="button"' in page.content.decode()
    response = reviewer.post(
        f"/admin/signing/agreement/{agreement.pk}/review/",
        {"action": "approve", "confirm_seal": "1"},
    )
    assert response.status_code == 302
    agreement.refresh_from_db()
    assert agreement.status == "sealed" and agreement.sealed_at
    signed = AgreementDocument.objects.get(agreement=agreement, stage="signed")
    sealed = AgreementDocument.objects.get(agreement=agreement, stage="sealed")
    assert bytes(sealed.pdf).startswith(bytes(signed.pdf))  # incremental update
    report = pdf_validate(pdf=bytes(sealed.pdf))
    assert report.ok, report
    assert SmsMessage.objects.filter(kind="agreement_sealed").count() == 1
    assert Evidence.objects.filter(agreement=agreement, kind="sealed").exists()


def test_reject_needs_a_reason_then_sends_it_and_allows_resigning(staff):
    bulk_create(staff("operator"))
    agreement = signed_agreement()
    reviewer = staff("reviewer")
    url = f"/admin/signing/agreement/{agreement.pk}/review/"
    reviewer.post(url, {"action": "reject", "reason": ""})
    agreement.refresh_from_db()
    assert agreement.status == "signed"
    reviewer.post(url, {"action": "reject", "reason": "第二个字超出签字框"})
    agreement.refresh_from_db()
    assert (agreement.status, agreement.step, agreement.attempt) == ("pending", 0, 2)
    assert agreement.reject_reason == "第二个字超出签字框"
    assert SmsMessage.objects.filter(kind="agreement_rejected").count() == 1
    # re-signing inside the window starts again from the first step
    flow.contract_view(
        agreement_id=agreement.pk,
        applicant=agreement.family.main_applicant,
        ctx=CTX,
        now=timezone.now(),
    )


def test_staff_open_any_pdf_and_anyone_can_verify_a_code_and_a_file(staff):
    bulk_create(staff("operator"))
    agreement = signed_agreement()
    reviewer = staff("reviewer")
    reviewer.post(
        f"/admin/signing/agreement/{agreement.pk}/review/",
        {"action": "approve", "confirm_seal": "1"},
    )
    pdf = reviewer.get(f"/admin/signing/agreement/{agreement.pk}/document/")
    assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
    assert AuditEntry.objects.filter(action="signing.document_view").exists()
    public = Client()
    page = public.get(f"/verify/{agreement.verification_code}/")
    assert page.status_code == 200 and "已盖章" in page.content.decode()
    from django.core.files.uploadedfile import SimpleUploadedFile

    good = public.post(
        f"/verify/{agreement.verification_code}/",
        {"pdf": SimpleUploadedFile("a.pdf", pdf.content, "application/pdf")},
    )
    html = good.content.decode()
    assert "有效（2 个签名）" in html and "是（已盖章）" in html
    tampered = bytearray(pdf.content)
    tampered[len(tampered) // 3] ^= 0x01
    bad = public.post(
        f"/verify/{agreement.verification_code}/",
        {"pdf": SimpleUploadedFile("a.pdf", bytes(tampered), "application/pdf")},
    )
    assert "有效（2 个签名）" not in bad.content.decode()
    not_pdf = public.post(
        f"/verify/{agreement.verification_code}/",
        {"pdf": SimpleUploadedFile("a.pdf", b"hello", "application/pdf")},
    )
    assert not_pdf.status_code == 400
    assert public.get("/verify/NOSUCHCODE/").status_code == 404


def test_staff_submit_the_abandonment_declaration_on_the_applicants_behalf(staff):
    bulk_create(staff("operator"), ranks="2")
    agreement = Agreement.objects.get()
    reviewer = staff("reviewer")
    url = f"/admin/signing/agreement/{agreement.pk}/review/"
    # Nothing written yet: said so, not an empty table of characters.
    page = reviewer.get(url).content.decode()
    assert "申请人尚未手写签名。" in page and "应写的字" not in page
    reviewer.post(url, {"action": "abandon", "declaration_version": "0" * 64})
    agreement.refresh_from_db()
    assert agreement.status == "pending"  # a stale declaration changes nothing
    from signing.agreements.services import abandon_declaration

    _, version = abandon_declaration(agreement)
    assert (
        reviewer.post(url, {"action": "abandon", "declaration_version": version}).status_code == 302
    )
    agreement.refresh_from_db()
    assert agreement.status == "abandoned"
    entry = Evidence.objects.get(agreement=agreement, kind="abandoned")
    assert entry.data["on_behalf"] is True and entry.actor.username == "reviewer"
