"""Issue 12 item 6: every review act (seal, reject, abandon on behalf) is a staff audit entry
written with the change; sealing needs a ticked confirmation (enforced on the server); a
refused role sees a Chinese 403 page in the admin's look; the deposit is shown in 元."""

from __future__ import annotations

import pytest

from accounts.models import AuditEntry
from signing.agreements.services import abandon_declaration
from signing.models import Agreement
from signing.templatetags.money import fen_to_yuan
from tests.signing.test_review_admin import bulk_create, signed_agreement, staff  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def review_url(agreement) -> str:
    return f"/admin/signing/agreement/{agreement.pk}/review/"


def test_sealing_without_the_confirmation_is_refused_and_changes_nothing(staff):  # noqa: F811
    bulk_create(staff("operator"))
    agreement = signed_agreement()
    reviewer = staff("reviewer")
    page = reviewer.get(review_url(agreement)).content.decode()
    assert (
        'name="confirm_seal"' in page and "确认盖章" in page and "data-confirm=" in page
    )  # admin.js asks (no inline handler under CSP)

    response = reviewer.post(review_url(agreement), {"action": "approve"}, follow=True)
    assert "请先勾选" in response.content.decode()
    agreement.refresh_from_db()
    assert agreement.status == "signed" and agreement.sealed_at is None
    assert not AuditEntry.objects.filter(action="signing.agreement_approve").exists()

    reviewer.post(review_url(agreement), {"action": "approve", "confirm_seal": "1"})
    agreement.refresh_from_db()
    assert agreement.status == "sealed"
    entry = AuditEntry.objects.get(action="signing.agreement_approve")
    assert entry.actor.username == "reviewer" and entry.detail["agreement_id"] == agreement.pk
    assert entry.at == agreement.sealed_at  # written with the change, at the same instant


def test_reject_is_audited_with_its_reason(staff):  # noqa: F811
    bulk_create(staff("operator"))
    agreement = signed_agreement()
    reviewer = staff("reviewer")
    reviewer.post(review_url(agreement), {"action": "reject", "reason": ""})
    assert not AuditEntry.objects.filter(action="signing.agreement_reject").exists()
    reviewer.post(review_url(agreement), {"action": "reject", "reason": "第二个字超出签字框"})
    entry = AuditEntry.objects.get(action="signing.agreement_reject")
    assert entry.actor.username == "reviewer"
    assert entry.detail["reason"] == "第二个字超出签字框" and entry.detail["next_attempt"] == 2


def test_abandon_on_behalf_is_audited_and_a_refused_one_is_not(staff):  # noqa: F811
    bulk_create(staff("operator"))
    agreement = Agreement.objects.order_by("family__rank").first()
    reviewer = staff("reviewer")
    reviewer.post(review_url(agreement), {"action": "abandon", "declaration_version": "0" * 64})
    assert not AuditEntry.objects.filter(action="signing.agreement_abandon_on_behalf").exists()
    _, version = abandon_declaration(agreement)
    reviewer.post(review_url(agreement), {"action": "abandon", "declaration_version": version})
    assert Agreement.objects.get(pk=agreement.pk).status == "abandoned"
    entry = AuditEntry.objects.get(action="signing.agreement_abandon_on_behalf")
    assert entry.actor.username == "reviewer" and entry.detail["agreement_id"] == agreement.pk


def test_staff_pdf_download_is_audited(staff):  # noqa: F811
    bulk_create(staff("operator"))
    agreement = signed_agreement()
    response = staff("reviewer").get(f"/admin/signing/agreement/{agreement.pk}/document/")
    assert response.status_code == 200
    assert AuditEntry.objects.filter(
        action="signing.document_view", actor__username="reviewer"
    ).exists()


def test_a_refused_role_sees_a_chinese_403_in_the_admin_look(staff):  # noqa: F811
    bulk_create(staff("operator"))
    agreement = Agreement.objects.first()
    response = staff("operator").get(review_url(agreement))
    assert response.status_code == 403
    page = response.content.decode()
    assert "无权访问此页面" in page and "操作员" in page
    assert "安居 · 选房签约管理后台" in page  # the admin's header: extends admin/base_site.html
    assert "403 Forbidden" not in page
    # a standard admin page refused by the role: the same page
    refused = staff("reviewer").get("/admin/accounts/auditentry/")
    assert refused.status_code == 403 and "无权访问此页面" in refused.content.decode()


def test_money_is_shown_in_yuan():
    assert fen_to_yuan(421200) == "4212.00"
    assert fen_to_yuan(5) == "0.05"
    assert fen_to_yuan(None) == "—"
