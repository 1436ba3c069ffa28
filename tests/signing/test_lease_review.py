"""Staff review of a lease (approve / reject with a reason, an SMS either way) and the
window's end for a lease signed but unpaid."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest

from accounts.models import User
from core.context import RequestContext
from core.errors import DomainError
from signing import selectors
from signing.agreements import services
from signing.agreements.documents import document_sign
from signing.agreements.signature import character_clean
from signing.lease import deposit
from signing.lease.payments.base import PaymentNotice
from signing.lease.services import lease_bank_confirm, lease_start
from signing.models import (
    Agreement,
    DepositPayment,
    Evidence,
    Lease,
    LeaseStage,
    SignatureCharacter,
    lease_stage,
)
from sms.models import SmsMessage
from tests.mobile_api.conftest import ApiClient
from tests.signing.lease_worlds import ACCOUNT, NOW, make_lease_world, signing_ca_from_before
from tests.signing.worlds import strokes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def platform_key(settings, tmp_path):
    settings.PAYMENT = {**settings.PAYMENT, "PLATFORM_KEY_DIR": tmp_path / "pay"}
    signing_ca_from_before(settings, tmp_path / "ca")


def signed_lease(*, paid: bool):
    world = make_lease_world()
    lease = lease_start(applicant=world.applicant, ctx=RequestContext(), now=NOW)
    Lease.objects.filter(pk=lease.pk).update(
        bank="ICBC", account_number=ACCOUNT, account_holder="王小明", bank_attempt=1
    )
    Agreement.objects.filter(pk=lease.agreement_id).update(
        status="signed", step=Agreement.Step.SUBMITTED, signed_at=NOW
    )
    # The signature and signed PDF the seal goes on (the steps are in test_lease_journey).
    agreement = Agreement.objects.get(pk=lease.agreement_id)
    for index, expected in enumerate(agreement.signer_name):
        clean = character_clean(strokes=strokes(), width=300, height=300)
        SignatureCharacter.objects.create(
            agreement=agreement,
            attempt=agreement.attempt,
            index=index,
            expected=expected,
            strokes=clean.strokes,
            box_width=clean.width,
            box_height=clean.height,
            png=clean.png,
            png_sha256=clean.png_sha256,
            strokes_sha256=clean.strokes_sha256,
            drawn_at=NOW,
        )
    document_sign(agreement=agreement, now=NOW)
    if paid:
        payment = deposit.deposit_order_prepare(lease_id=lease.pk, now=NOW)
        deposit.deposit_notice_apply(
            notice=PaymentNotice(
                provider=payment.provider,
                notification_id="",
                out_trade_no=payment.out_trade_no,
                transaction_id="4200000000000000000000000001",
                trade_state="SUCCESS",
                amount_fen=payment.amount_fen,
                currency="CNY",
                mchid="1900000001",
                appid="wx_anju_dev",
                success_time=NOW,
            ),
            now=NOW,
        )
    return world, Lease.objects.get(pk=lease.pk)


def reviewer() -> User:
    return User.objects.create_user(username="reviewer", is_staff=True)


def test_review_before_the_deposit_is_refused_either_way():
    _, lease = signed_lease(paid=False)
    staff = reviewer()
    for action in (
        lambda: services.agreement_approve(agreement_id=lease.agreement_id, actor=staff, now=NOW),
        lambda: services.agreement_reject(
            agreement_id=lease.agreement_id, actor=staff, reason="照片不清晰", now=NOW
        ),
    ):
        with pytest.raises(DomainError) as refused:
            action()
        assert refused.value.code == "deposit_not_paid"
    assert Agreement.objects.get(pk=lease.agreement_id).status == "signed"
    assert not SmsMessage.objects.filter(
        kind__in=["agreement_sealed", "agreement_rejected"]
    ).exists()


def test_rejection_sends_the_family_back_to_the_rental_information_keeping_the_deposit():
    world, lease = signed_lease(paid=True)
    assert lease_stage(lease) == LeaseStage.REVIEW
    services.agreement_reject(
        agreement_id=lease.agreement_id, actor=reviewer(), reason="银行卡照片不清晰", now=NOW
    )
    lease.refresh_from_db()
    agreement = lease.agreement
    agreement.refresh_from_db()
    assert (agreement.status, agreement.attempt) == ("pending", 2)
    assert lease_stage(lease, agreement) == LeaseStage.INFO  # bank details confirmed again
    sms = SmsMessage.objects.get(kind="agreement_rejected")
    assert sms.phone == world.applicant.mobile
    assert DepositPayment.objects.get(lease=lease).status == "paid"  # never asked twice
    # Once signed again, the paid deposit means the application is submitted at once.
    Lease.objects.filter(pk=lease.pk).update(bank_attempt=2)
    Agreement.objects.filter(pk=agreement.pk).update(status="signed", step=7, signed_at=NOW)
    lease.refresh_from_db()
    assert lease_stage(lease) == LeaseStage.REVIEW
    with pytest.raises(DomainError) as again:
        deposit.deposit_order_prepare(lease_id=lease.pk, now=NOW)
    assert again.value.code == "deposit_paid"


MASKED = f"{ACCOUNT[:4]} **** **** {ACCOUNT[-4:]}"


def returned(lease: Lease, reason: str = "签名笔画不完整，请重新签署") -> None:
    services.agreement_reject(
        agreement_id=lease.agreement_id, actor=reviewer(), reason=reason, now=NOW
    )


def signed_again(lease: Lease, at) -> None:
    """The second attempt's 提交 (signing/agreements/flow.py): 已签字 with its own signed_at."""
    Lease.objects.filter(pk=lease.pk).update(bank_attempt=2)
    Agreement.objects.filter(pk=lease.agreement_id).update(
        status="signed", step=Agreement.Step.SUBMITTED, signed_at=at
    )


def test_the_submitted_time_is_the_latest_submission_after_a_return():
    """提交时间 is the first attempt's payment, then the second attempt's signature: with the
    deposit kept, signing again is what submits the application again."""
    world, lease = signed_lease(paid=True)  # signed and paid at NOW
    assert selectors.lease_view(lease_id=lease.pk).details.submitted_at == NOW
    returned(lease)
    assert selectors.lease_view(lease_id=lease.pk).details.submitted_at is None  # 完善承租信息
    again = NOW + timedelta(minutes=4)
    signed_again(lease, again)

    assert selectors.lease_view(lease_id=lease.pk).details.submitted_at == again
    [listed] = selectors.lease_views(applicant=world.applicant)  # 网上签约记录
    assert listed.details.submitted_at == again
    api = ApiClient()
    api.client.force_login(world.applicant.user)
    data = api.get(f"/api/v1/lease/{lease.pk}/").json()
    assert data["stage"] == "review"
    assert datetime.fromisoformat(data["submitted_at"]) == again
    # the payment's own time stays
    assert datetime.fromisoformat(data["payment"]["paid_at"]) == NOW


def test_a_return_keeps_the_bank_details_and_the_masked_account_confirms_them_again():
    """A return about the signature only: the API still gives the bank, the holder and the
    masked account, and sending the masked account back keeps the stored one."""
    world, lease = signed_lease(paid=True)
    with_card_photos(lease)
    returned(lease)
    api = ApiClient()
    api.client.force_login(world.applicant.user)
    bank = api.get(f"/api/v1/lease/{lease.pk}/").json()["bank"]
    assert bank == {
        "bank": "ICBC",
        "bank_label": "中国工商银行",
        "account_masked": MASKED,
        "account_holder": "王小明",
        "confirmed": False,
    }

    later = NOW + timedelta(minutes=2)
    lease_bank_confirm(
        lease=lease,
        applicant=world.applicant,
        bank=bank["bank"],
        account_number=bank["account_masked"],
        account_holder=bank["account_holder"],
        ctx=RequestContext(),
        now=later,
    )
    lease.refresh_from_db()
    assert (lease.bank, lease.account_number, lease.bank_attempt) == ("ICBC", ACCOUNT, 2)
    assert lease_stage(lease) == LeaseStage.FACE
    confirmed = Evidence.objects.filter(
        agreement_id=lease.agreement_id, kind="bank_details_confirmed"
    ).latest("id")
    assert confirmed.data["attempt"] == 2
    assert confirmed.data["account_sha256"] == hashlib.sha256(ACCOUNT.encode()).hexdigest()


def test_a_masked_account_names_only_the_stored_one():
    def refused_code(lease, applicant, account_number):
        with pytest.raises(DomainError) as refused:
            lease_bank_confirm(
                lease=lease,
                applicant=applicant,
                bank="ICBC",
                account_number=account_number,
                account_holder=applicant.real_name,
                ctx=RequestContext(),
                now=NOW,
            )
        return refused.value.code

    world, lease = signed_lease(paid=True)
    with_card_photos(lease)
    returned(lease)
    for other in (f"{ACCOUNT[:4]} **** **** 0000", "**** **** **** ****"):
        assert refused_code(lease, world.applicant, other) == "account_number_invalid"
    # Nothing stored yet: a masked number names no account.
    fresh = make_lease_world(name="李四")
    new = lease_start(applicant=fresh.applicant, ctx=RequestContext(), now=NOW)
    with_card_photos(new)
    assert refused_code(new, fresh.applicant, MASKED) == "account_number_invalid"
    assert Lease.objects.get(pk=new.pk).bank_attempt == 0


def test_the_window_end_voids_a_signed_unpaid_lease_but_not_a_paid_one():
    _, unpaid = signed_lease(paid=False)
    _, paid = signed_lease(paid=True)
    ends = unpaid.agreement.window_ends_at
    assert services.agreements_void_due(now=ends - timedelta(seconds=1)) == []
    assert services.agreements_void_due(now=ends) == [unpaid.agreement_id]
    assert Agreement.objects.get(pk=unpaid.agreement_id).status == "void"
    assert lease_stage(Lease.objects.get(pk=unpaid.pk)) == LeaseStage.CLOSED
    assert Agreement.objects.get(pk=paid.agreement_id).status == "signed"
    assert services.agreements_void_due(now=ends + timedelta(days=1)) == []


@pytest.fixture
def staff_client():
    from django.contrib.auth.models import Group
    from django.test import Client

    from accounts.roles import roles_sync

    roles_sync()

    def login(role: str) -> Client:
        user = User.objects.create_user(username=f"{role}-lease", is_staff=True)
        user.groups.set([Group.objects.get(name=role)])
        client = Client()
        client.force_login(user)
        return client

    return login


def with_card_photos(lease: Lease) -> None:
    from signing.lease.card_photos import card_photo_clean
    from signing.lease.services import card_photo_create
    from signing.models import CardPhoto
    from tests.signing.lease_worlds import photo_bytes

    clean = card_photo_clean(data=photo_bytes())
    for side in CardPhoto.Side.values:
        card_photo_create(lease=lease, side=side, clean=clean, now=NOW)


def test_staff_review_page_shows_the_lease_and_approves_only_a_paid_one(staff_client):
    from accounts.models import AuditEntry

    _, unpaid = signed_lease(paid=False)
    _, paid = signed_lease(paid=True)
    with_card_photos(paid)
    reviewer_ = staff_client("reviewer")
    page = reviewer_.get(f"/admin/signing/agreement/{paid.agreement_id}/review/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "租赁签约" in text and "6222 **** **** 0128" in text and "已支付" in text
    card = reviewer_.get(f"/admin/signing/agreement/{paid.agreement_id}/card/front/")
    assert card.status_code == 200 and card["Content-Type"] == "image/jpeg"
    assert "no-store" in card["Cache-Control"] and "private" in card["Cache-Control"]
    assert AuditEntry.objects.filter(action="signing.card_photo_view").count() == 1
    assert (
        reviewer_.get(f"/admin/signing/agreement/{paid.agreement_id}/card/side/").status_code == 404
    )
    assert (
        reviewer_.get(f"/admin/signing/agreement/{unpaid.agreement_id}/card/front/").status_code
        == 404
    )

    # Before the deposit: the page says so and approving changes nothing.
    page = reviewer_.get(f"/admin/signing/agreement/{unpaid.agreement_id}/review/")
    assert "押金尚未缴纳" in page.content.decode()
    reviewer_.post(
        f"/admin/signing/agreement/{unpaid.agreement_id}/review/",
        {"action": "approve", "confirm_seal": "1"},
    )
    assert Agreement.objects.get(pk=unpaid.agreement_id).status == "signed"

    reviewer_.post(
        f"/admin/signing/agreement/{paid.agreement_id}/review/",
        {"action": "approve", "confirm_seal": "1"},
    )
    assert Agreement.objects.get(pk=paid.agreement_id).status == "sealed"
    assert lease_stage(Lease.objects.get(pk=paid.pk)) == LeaseStage.APPROVED
    assert reviewer_.get("/admin/signing/lease/").status_code == 200
    assert reviewer_.get("/admin/signing/paymentnotification/").status_code == 200


def test_card_photos_are_not_for_applicants_or_the_anonymous(staff_client):
    from django.test import Client

    world, paid = signed_lease(paid=True)
    with_card_photos(paid)
    url = f"/admin/signing/agreement/{paid.agreement_id}/card/front/"
    assert Client().get(url).status_code == 302  # to the admin login
    applicant = Client()
    applicant.force_login(world.applicant.user)
    assert applicant.get(url).status_code == 302  # not staff


# (agreement fields, lease fields) that put a lease at each stage, as the services leave it
STAGED = {
    "info": ({}, {}),  # as lease_start leaves it: no bank account yet
    "face": ({"step": 2}, {}),
    "contract": ({"step": 5}, {}),
    "deposit": ({"status": "signed", "step": 7, "signed_at": NOW}, {}),
    "review": ({"status": "signed", "step": 7, "signed_at": NOW}, {"deposit_paid_at": NOW}),
    "approved": (
        {"status": "sealed", "step": 7, "signed_at": NOW, "sealed_at": NOW},
        {"deposit_paid_at": NOW},
    ),
    "closed": ({"status": "void"}, {}),
}


@pytest.mark.parametrize("stage", list(STAGED))
def test_the_lease_list_filters_by_the_stage_its_column_shows(staff_client, stage):
    """The admin's 阶段 filter (signing.models.lease_stage_filter) finds a lease exactly
    at the stage `lease_stage` gives it, and at no other: the filter and the column agree."""
    from signing.models import LeaseStage, lease_stage, lease_stage_filter

    world = make_lease_world()
    lease = lease_start(applicant=world.applicant, ctx=RequestContext(), now=NOW)
    agreement_fields, lease_fields = STAGED[stage]
    if stage != "info":  # the bank account confirmed for this attempt
        bank = {"bank": "ICBC", "account_number": ACCOUNT, "account_holder": "王小明"}
        Lease.objects.filter(pk=lease.pk).update(bank_attempt=1, **bank, **lease_fields)
    Agreement.objects.filter(pk=lease.agreement_id).update(**agreement_fields)
    lease = Lease.objects.select_related("agreement").get(pk=lease.pk)
    assert lease_stage(lease) == stage
    matched = [s for s in LeaseStage.values if Lease.objects.filter(lease_stage_filter(s)).exists()]
    assert matched == [stage]
    page = staff_client("reviewer").get("/admin/signing/lease/", {"stage": stage})
    assert page.status_code == 200 and lease.unit_label in page.content.decode()
    assert page.context["cl"].result_count == 1
