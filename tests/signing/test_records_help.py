"""网上签约记录 lists every agreement of the family (the lease and the rent-subsidy
agreement) with the agreement's own status words; 咨询电话 and hours (per template, else the
site's default) in the API, on the pages and in the rejection SMS, whose reason never ends in
「。。」; the deposit receipt in the viewer once the lease is approved."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.staticfiles import finders
from django.test import Client

from signing.agreements import services
from signing.agreements.ca import dev_ca_ensure
from signing.agreements.consult import consult_help
from signing.models import Agreement, AgreementTemplate, TemplateKind
from sms.models import DevInboxMessage
from tests.signing.lease_worlds import NOW
from tests.signing.test_lease_review import signed_lease
from tests.signing.viewer_worlds import reviewer, sign
from tests.signing.worlds import CLOSES, make_agreement

pytestmark = pytest.mark.django_db

DEFAULT_PHONES = ["0755-23619344", "0755-82559564"]
DEFAULT_HOURS = "工作日 9:00-12:00，14:00-18:00"
STATUS_WORDS = {"待签字", "已签字", "已盖章", "作废", "已放弃"}


@pytest.fixture(autouse=True)
def _keys(settings, tmp_path):
    settings.PAYMENT = {**settings.PAYMENT, "PLATFORM_KEY_DIR": tmp_path / "pay"}
    dev_ca_ensure(directory=tmp_path / "ca", now=NOW - timedelta(days=90))
    settings.SIGNING = {**settings.SIGNING, "CA_DIR": tmp_path / "ca", "DEV_CA_AUTOCREATE": True}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def sealed_lease_and_pending_subsidy():
    """A family whose lease is approved (已盖章) and whose 租金补贴协议 waits (待签字)."""
    world, lease = signed_lease(paid=True)
    services.agreement_approve(agreement_id=lease.agreement_id, actor=reviewer(), now=NOW)
    subsidy = services.agreement_create(
        family=world.family,
        template=AgreementTemplate.objects.get(kind=TemplateKind.RENT_SUBSIDY, version=1),
        window_starts_at=NOW - timedelta(hours=1),
        window_ends_at=NOW + timedelta(days=3),
        actor=None,
        now=NOW,
    )
    return world, lease, subsidy


# ------------------------------------------------------------------------------ records


def test_the_records_list_both_kinds_with_the_agreements_status_words():
    world, lease, subsidy = sealed_lease_and_pending_subsidy()
    client = client_for(world.applicant.user)
    agreements = client.get("/api/v1/signing/agreements/").json()
    by_id = {a["id"]: a for a in agreements}
    assert set(by_id) == {lease.agreement_id, subsidy.pk}
    assert by_id[lease.agreement_id]["status_label"] == "已盖章"  # not the stage's 审核通过
    assert by_id[lease.agreement_id]["lease"] == lease.pk
    assert by_id[subsidy.pk]["status_label"] == "待签字" and by_id[subsidy.pk]["lease"] is None
    assert {a["status_label"] for a in agreements} <= STATUS_WORDS
    leases = client.get("/api/v1/lease/").json()
    assert [item["agreement"]["status_label"] for item in leases] == ["已盖章"]
    assert leases[0]["stage_label"] == "审核通过"  # kept as the secondary text
    assert leases[0]["materials"]["receipt"] is True


def test_the_records_page_loads_both_lists_and_names_the_consultation_numbers():
    world, _, _ = sealed_lease_and_pending_subsidy()
    html = client_for(world.applicant.user).get("/h5/me/leases/").content.decode()
    assert "h5/lease-records.js" in html
    # The page's module fills in the agreements' own numbers (lib/consult.js, issue 16 item 5).
    script = Path(finders.find("h5/lease-records.js")).read_text(encoding="utf-8")
    assert 'from "./lib/consult.js";' in script
    for phone in DEFAULT_PHONES:
        assert f'href="tel:{phone}"' in html
    assert DEFAULT_HOURS in html
    me = client_for(world.applicant.user).get("/h5/me/").content.decode()
    assert "网上签约记录" in me and "租金补贴协议" in me


# ------------------------------------------------------------------------------ help


def test_help_falls_back_to_the_sites_default_and_follows_the_template():
    agreement, applicant = make_agreement()
    from accounts.services import applicant_user_ensure

    client = client_for(applicant_user_ensure(applicant=applicant).user)
    base = f"/api/v1/signing/agreements/{agreement.pk}/"
    assert client.get(base).json()["help"] == {
        "phones": DEFAULT_PHONES,
        "phones_text": "0755-23619344、0755-82559564",
        "hours": DEFAULT_HOURS,
        "text": "0755-23619344、0755-82559564（工作日 9:00-12:00，14:00-18:00）",
    }
    AgreementTemplate.objects.filter(pk=agreement.template_id).update(
        consult_phones="0755-11112222, 0755-33334444", consult_hours="周一至周五 9:00-17:00"
    )
    listed = client.get("/api/v1/signing/agreements/").json()[0]["help"]
    assert listed["phones"] == ["0755-11112222", "0755-33334444"]
    assert listed["text"] == "0755-11112222、0755-33334444（周一至周五 9:00-17:00）"


def test_the_sites_default_comes_from_settings(settings):
    settings.SIGNING = {**settings.SIGNING, "CONSULT_PHONES": "12345", "CONSULT_HOURS": ""}
    assert consult_help(None).as_json() == {
        "phones": ["12345"],
        "phones_text": "12345",
        "hours": "",
        "text": "12345",
    }


def test_the_lease_json_carries_the_help():
    world, lease, _ = sealed_lease_and_pending_subsidy()
    data = client_for(world.applicant.user).get(f"/api/v1/lease/{lease.pk}/").json()
    assert data["help"]["phones"] == DEFAULT_PHONES
    assert data["agreement"]["help"]["hours"] == DEFAULT_HOURS


def test_the_abandon_page_gives_the_numbers_of_the_agreements_template():
    agreement, applicant = make_agreement()
    AgreementTemplate.objects.filter(pk=agreement.template_id).update(
        consult_phones="0755-11112222", consult_hours="周一至周五 9:00-17:00"
    )
    from accounts.services import applicant_user_ensure

    client = client_for(applicant_user_ensure(applicant=applicant).user)
    html = client.get(f"/h5/signing/{agreement.pk}/abandon/").content.decode()
    assert 'href="tel:0755-11112222"' in html and "（周一至周五 9:00-17:00）" in html
    assert "请拨打咨询电话" in html


def test_the_signing_page_says_the_deadline_sentence_only_for_what_is_pending():
    agreement, applicant = make_agreement()
    from accounts.services import applicant_user_ensure

    html = (
        client_for(applicant_user_ensure(applicant=applicant).user)
        .get("/h5/signing/")
        .content.decode()
    )
    # hidden until the script sees a pending agreement (tests/browser checks it shows)
    assert '<span id="tip-deadline" hidden>请在签约期限内完成签约' in html
    assert 'href="tel:0755-23619344"' in html


# ------------------------------------------------------------------------------ the SMS


def _rejection_text(django_capture_on_commit_callbacks, reason: str, **template) -> str:
    agreement, applicant = make_agreement()
    if template:
        AgreementTemplate.objects.filter(pk=agreement.template_id).update(**template)
    sign(agreement)
    with django_capture_on_commit_callbacks(execute=True):
        services.agreement_reject(
            agreement_id=agreement.pk, actor=reviewer(), reason=reason, now=NOW
        )
    assert Agreement.objects.get(pk=agreement.pk).reject_reason == reason.strip()
    return DevInboxMessage.objects.filter(phone=applicant.mobile).order_by("-id").first().text


@pytest.mark.parametrize(
    "reason", ["第二个字超出签字框。", "第二个字超出签字框", "第二个字超出签字框；。 "]
)
def test_the_rejection_sms_has_one_full_stop_the_deadline_and_the_numbers(
    django_capture_on_commit_callbacks, reason
):
    text = _rejection_text(django_capture_on_commit_callbacks, reason)
    assert "。。" not in text and "；。" not in text
    assert "原因：第二个字超出签字框。" in text
    # CLOSES is 2026-01-23 18:00 Shanghai: core/fmt.py's format, not 「2026年01月23日18:00」
    assert CLOSES.hour == 18 and "请于2026年1月23日 18:00前重新签署" in text
    assert "请拨打咨询电话0755-23619344、0755-82559564（工作日 9:00-12:00，14:00-18:00）" in text


def test_the_rejection_sms_uses_the_templates_numbers(django_capture_on_commit_callbacks):
    text = _rejection_text(
        django_capture_on_commit_callbacks,
        "照片不清晰",
        consult_phones="0755-11112222",
        consult_hours="周一至周五 9:00-17:00",
    )
    assert "请拨打咨询电话0755-11112222（周一至周五 9:00-17:00）。" in text


def test_the_push_sms_and_the_agreement_text_use_the_one_format(django_capture_on_commit_callbacks):
    agreement, applicant = make_agreement()
    assert "2026年1月20日 09:30 至 2026年1月23日 18:00" in agreement.rendered_text
    with django_capture_on_commit_callbacks(execute=True):
        services.agreement_push(agreement_id=agreement.pk, actor=None, now=NOW)
    text = DevInboxMessage.objects.filter(phone=applicant.mobile).order_by("-id").first().text
    assert "请于2026年1月23日 18:00前登录系统" in text
