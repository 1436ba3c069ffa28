"""Staff review of a lease (approve / reject with a reason, an SMS either way) and the
window's end for a lease signed but unpaid."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import User
from core.context import RequestContext
from core.errors import DomainError
from signing import deposit, services
from signing.lease import lease_start
from signing.lease_gates import Stage, lease_stage
from signing.models import Agreement, DepositPayment, Lease
from signing.payments.base import PaymentNotice
from sms.models import SmsMessage
from tests.signing.lease_worlds import ACCOUNT, NOW, make_lease_world

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def platform_key(settings, tmp_path):
    settings.PAYMENT = {**settings.PAYMENT, "PLATFORM_KEY_DIR": tmp_path / "pay"}


def signed_lease(*, paid: bool):
    world = make_lease_world()
    lease = lease_start(applicant=world.applicant, ctx=RequestContext(), now=NOW)
    Lease.objects.filter(pk=lease.pk).update(
        bank="ICBC", account_number=ACCOUNT, account_holder="王小明", bank_attempt=1
    )
    Agreement.objects.filter(pk=lease.agreement_id).update(
        status="signed", step=Agreement.Step.SUBMITTED, signed_at=NOW
    )
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
    assert lease_stage(lease) == Stage.REVIEW
    services.agreement_reject(
        agreement_id=lease.agreement_id, actor=reviewer(), reason="银行卡照片不清晰", now=NOW
    )
    lease.refresh_from_db()
    agreement = lease.agreement
    agreement.refresh_from_db()
    assert (agreement.status, agreement.attempt) == ("pending", 2)
    assert lease_stage(lease, agreement) == Stage.INFO  # bank details confirmed again
    sms = SmsMessage.objects.get(kind="agreement_rejected")
    assert sms.phone == world.applicant.mobile
    assert DepositPayment.objects.get(lease=lease).status == "paid"  # never asked twice
    # Once signed again, the paid deposit means the application is submitted at once.
    Lease.objects.filter(pk=lease.pk).update(bank_attempt=2)
    Agreement.objects.filter(pk=agreement.pk).update(status="signed", step=7, signed_at=NOW)
    lease.refresh_from_db()
    assert lease_stage(lease) == Stage.REVIEW
    with pytest.raises(DomainError) as again:
        deposit.deposit_order_prepare(lease_id=lease.pk, now=NOW)
    assert again.value.code == "deposit_paid"


def test_the_window_end_voids_a_signed_unpaid_lease_but_not_a_paid_one():
    _, unpaid = signed_lease(paid=False)
    _, paid = signed_lease(paid=True)
    ends = unpaid.agreement.window_ends_at
    assert services.agreements_void_due(now=ends - timedelta(seconds=1)) == []
    assert services.agreements_void_due(now=ends) == [unpaid.agreement_id]
    assert Agreement.objects.get(pk=unpaid.agreement_id).status == "void"
    assert lease_stage(Lease.objects.get(pk=unpaid.pk)) == Stage.CLOSED
    assert Agreement.objects.get(pk=paid.agreement_id).status == "signed"
    assert services.agreements_void_due(now=ends + timedelta(days=1)) == []
