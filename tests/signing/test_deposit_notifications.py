"""The deposit's payment notifications through the webhook, on PostgreSQL: replayed 20 times
and redelivered 20 times at once (applied once), forged (refused), a wrong amount (refused),
each refusal recorded and nothing changed. The control case removes the row locks and the
database's applied-once index and shows a payment applied twice."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import connection
from django.test import Client

from core.context import RequestContext
from events.models import Event
from signing.lease import deposit
from signing.lease.payments import dev as pay_dev
from signing.lease.services import lease_start
from signing.models import Agreement, DepositPayment, Evidence, Lease, PaymentNotification
from tests.signing.lease_worlds import ACCOUNT, NOW, make_lease_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

URL = "/api/v1/payments/notify/dev/"
TXN = "4200002611202603030000000001"
WORKERS = 20
# The partial unique indexes behind the conditional UniqueConstraints (the control drops them).
INDEXES = {
    "payment_applied_once": "ON signing_paymentnotification (provider, out_trade_no) "
    "WHERE kind = 'payment' AND outcome = 'applied'",
    "payment_transaction_once": "ON signing_depositpayment (provider, transaction_id) "
    "WHERE NOT (transaction_id = '')",
}


@pytest.fixture(autouse=True)
def platform_key(settings, tmp_path):
    settings.PAYMENT = {**settings.PAYMENT, "PLATFORM_KEY_DIR": tmp_path / "pay"}


def lease_at_deposit() -> tuple[Lease, DepositPayment]:
    """A lease whose contract is signed (the steps before are tested in test_lease_journey),
    with its deposit order made."""
    world = make_lease_world()
    lease = lease_start(applicant=world.applicant, ctx=RequestContext(), now=NOW)
    Lease.objects.filter(pk=lease.pk).update(
        bank="ICBC", account_number=ACCOUNT, account_holder="王小明", bank_attempt=1
    )
    Agreement.objects.filter(pk=lease.agreement_id).update(
        status="signed", step=Agreement.Step.SUBMITTED, signed_at=NOW
    )
    payment = deposit.deposit_order_prepare(lease_id=lease.pk, now=NOW)
    return lease, payment


def post(body: bytes, headers: dict) -> tuple[int, dict]:
    response = Client().generic(
        "POST", URL, data=body, content_type="application/json", headers=headers
    )
    return response.status_code, response.json()


def notification(payment: DepositPayment, *, at=NOW, **overrides):
    fields = {
        "out_trade_no": payment.out_trade_no,
        "transaction_id": TXN,
        "amount_fen": payment.amount_fen,
        "now": at,
        **overrides,
    }
    return pay_dev.dev_notification(**fields)


def applied_once(lease: Lease) -> None:
    payment = DepositPayment.objects.get(lease=lease)
    assert payment.status == "paid" and payment.transaction_id == TXN
    assert Lease.objects.get(pk=lease.pk).deposit_paid_at is not None
    assert PaymentNotification.objects.filter(outcome="applied").count() == 1
    assert (
        Evidence.objects.filter(agreement_id=lease.agreement_id, kind="deposit_paid").count() == 1
    )


def nothing_paid(lease: Lease) -> None:
    assert DepositPayment.objects.get(lease=lease).status == "created"
    assert Lease.objects.get(pk=lease.pk).deposit_paid_at is None
    assert not PaymentNotification.objects.filter(outcome="applied").exists()
    assert not Evidence.objects.filter(kind="deposit_paid").exists()


def test_the_same_notification_replayed_twenty_times_is_applied_once():
    lease, payment = lease_at_deposit()
    body, headers = notification(payment)
    with time_machine.travel(NOW, tick=False):
        answers = [post(body, headers) for _ in range(WORKERS)]
    assert answers[0] == (200, {"code": "SUCCESS", "message": "成功"})
    assert {status for status, _ in answers[1:]} == {400}
    assert {a["error"]["code"] for _, a in answers[1:]} == {"payment_notification_replayed"}
    applied_once(lease)
    refused = PaymentNotification.objects.filter(outcome="refused")
    assert refused.count() == WORKERS - 1
    assert set(refused.values_list("code", flat=True)) == {"payment_notification_replayed"}


def test_twenty_redeliveries_at_once_on_separate_connections_are_applied_once():
    """WeChat Pay redelivers a notification signed afresh (new nonce) until it hears 200;
    here 20 arrive at once, each request on its own PostgreSQL connection."""
    lease, payment = lease_at_deposit()
    deliveries = [notification(payment) for _ in range(WORKERS)]
    start = threading.Barrier(WORKERS, timeout=20)

    def deliver(i: int):
        start.wait()
        try:
            return post(*deliveries[i])
        finally:
            connection.close()

    with time_machine.travel(NOW, tick=True):
        with ThreadPoolExecutor(WORKERS) as pool:
            answers = list(pool.map(deliver, range(WORKERS)))
    assert [status for status, _ in answers] == [200] * WORKERS
    applied_once(lease)
    assert PaymentNotification.objects.filter(outcome="duplicate").count() == WORKERS - 1
    assert Event.objects.filter(type="qr.done").count() <= 1  # at most one "paid" to the desktop


def test_control_without_locks_and_the_applied_once_index_a_payment_is_applied_twice(
    monkeypatch,
):
    """Two deliveries both read the order unpaid before either writes: with the agreement and
    order locks gone and the applied-once index dropped, both apply it. This is the race the
    test above would catch if the locks or the index were removed."""
    from django.db.models import QuerySet

    lease, payment = lease_at_deposit()
    monkeypatch.setattr(QuerySet, "select_for_update", lambda self, **kw: self)
    both_read = threading.Barrier(2, timeout=10)
    real_mismatch = deposit._mismatch

    def mismatch_after_barrier(order, notice):
        both_read.wait()  # both transactions have seen the order unpaid
        return real_mismatch(order, notice)

    monkeypatch.setattr(deposit, "_mismatch", mismatch_after_barrier)
    with connection.cursor() as cursor:
        for index in INDEXES:
            cursor.execute(f'DROP INDEX "{index}"')
        cursor.execute('ALTER TABLE signing_evidence DROP CONSTRAINT "evidence_seq"')
    try:
        deliveries = [notification(payment) for _ in range(2)]

        def deliver(i: int):
            try:
                return post(*deliveries[i])
            finally:
                connection.close()

        with time_machine.travel(NOW, tick=True):
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(deliver, range(2)))
        assert [status for status, _ in answers] == [200, 200]
        assert PaymentNotification.objects.filter(outcome="applied").count() == 2  # twice
        assert Evidence.objects.filter(kind="deposit_paid").count() == 2
    finally:
        PaymentNotification.objects.all().delete()
        Evidence.objects.filter(agreement_id=lease.agreement_id).delete()
        with connection.cursor() as cursor:
            for index, definition in INDEXES.items():
                cursor.execute(f'CREATE UNIQUE INDEX "{index}" {definition}')
            cursor.execute(
                'ALTER TABLE signing_evidence ADD CONSTRAINT "evidence_seq" '
                "UNIQUE (agreement_id, seq)"
            )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname = ANY(%s)", [list(INDEXES)]
        )
        assert len(cursor.fetchall()) == len(INDEXES)


def test_a_forged_notification_is_refused_recorded_and_changes_nothing():
    lease, payment = lease_at_deposit()
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body, headers = notification(payment, sign_with=forger)
    with time_machine.travel(NOW, tick=False):
        status, answer = post(body, headers)
    assert status == 400 and answer["error"]["code"] == "payment_signature_invalid"
    nothing_paid(lease)
    record = PaymentNotification.objects.get()
    assert (record.outcome, record.code) == ("refused", "payment_signature_invalid")


def test_a_notification_with_the_wrong_amount_is_refused_recorded_and_changes_nothing():
    lease, payment = lease_at_deposit()
    body, headers = notification(payment, amount_fen=payment.amount_fen - 1)
    with time_machine.travel(NOW, tick=False):
        status, answer = post(body, headers)
    assert status == 400 and answer["error"]["code"] == "payment_amount_mismatch"
    nothing_paid(lease)
    record = PaymentNotification.objects.get()
    assert (record.outcome, record.code, record.amount_fen) == (
        "refused",
        "payment_amount_mismatch",
        payment.amount_fen - 1,
    )
    entry = Evidence.objects.get(agreement_id=lease.agreement_id, kind="deposit_notice_refused")
    assert entry.data["code"] == "payment_amount_mismatch"
    # The genuine payment afterwards is applied.
    body, headers = notification(payment)
    with time_machine.travel(NOW, tick=False):
        assert post(body, headers)[0] == 200
    applied_once(lease)


def test_other_mismatches_and_unknown_orders_are_refused():
    lease, payment = lease_at_deposit()
    cases = {
        "payment_currency_mismatch": {"currency": "USD"},
        "payment_order_unknown": {"out_trade_no": "AJ0000000000000000NOPE"},
    }
    with time_machine.travel(NOW, tick=False):
        for code, override in cases.items():
            status, answer = post(*notification(payment, **override))
            assert status in (400, 404) and answer["error"]["code"] == code
        # A second, different payment for an order already paid is refused as a conflict.
        assert post(*notification(payment))[0] == 200
        status, answer = post(*notification(payment, transaction_id=TXN[:-1] + "9"))
    assert answer["error"]["code"] == "payment_conflict"
    applied_once(lease)


def test_stale_and_future_notifications_are_refused_at_the_boundary(settings):
    lease, payment = lease_at_deposit()
    max_age = settings.PAYMENT["NOTIFY_MAX_AGE_SECONDS"]
    with time_machine.travel(NOW + timedelta(seconds=max_age + 1), tick=False):
        status, answer = post(*notification(payment))
        assert answer["error"]["code"] == "payment_notification_stale"
        status, answer = post(*notification(payment, at=NOW + timedelta(seconds=2 * max_age + 2)))
        assert answer["error"]["code"] == "payment_notification_stale"
        nothing_paid(lease)
        assert post(*notification(payment, at=NOW + timedelta(seconds=1)))[0] == 200
    applied_once(lease)


def test_malformed_bodies_and_an_unknown_provider_never_500():
    lease, payment = lease_at_deposit()
    with time_machine.travel(NOW, tick=False):
        for body, headers in ((b"", {}), (b"not json", {}), (b"{}", {"Wechatpay-Nonce": "x"})):
            status, answer = post(body, headers)
            assert status == 400 and answer["error"]["code"].startswith("payment_")
        response = Client().post(
            "/api/v1/payments/notify/wechat/", b"{}", content_type="application/json"
        )
        assert response.status_code == 404
    nothing_paid(lease)


def test_deposit_before_the_contract_and_after_the_window_is_refused():
    world = make_lease_world()
    lease = lease_start(applicant=world.applicant, ctx=RequestContext(), now=NOW)
    from core.errors import DomainError

    with pytest.raises(DomainError) as early:
        deposit.deposit_order_prepare(lease_id=lease.pk, now=NOW)
    assert early.value.code == "step_out_of_order"
    Lease.objects.filter(pk=lease.pk).update(
        bank="ICBC", account_number=ACCOUNT, account_holder="王小明", bank_attempt=1
    )
    Agreement.objects.filter(pk=lease.agreement_id).update(
        status="signed", step=Agreement.Step.SUBMITTED, signed_at=NOW
    )
    ends = Agreement.objects.get(pk=lease.agreement_id).window_ends_at
    assert deposit.deposit_order_prepare(lease_id=lease.pk, now=ends - timedelta(seconds=1))
    with pytest.raises(DomainError) as late:
        deposit.deposit_order_prepare(lease_id=lease.pk, now=ends)
    assert late.value.code == "signing_closed"


def test_paying_again_when_the_notification_was_lost_fetches_it_instead():
    """The provider took the money but its notification never arrived; the phone asks to pay
    again: the provider says ORDERPAID, the order is queried and applied, nothing is charged."""
    lease, payment = lease_at_deposit()
    urls = {
        "return_url": "http://testserver/h5/lease/1/deposit/",
        "notify_url": "http://127.0.0.1:9/x/",
    }
    with time_machine.travel(NOW, tick=True):
        _, start = deposit.deposit_begin(lease_id=lease.pk, now=NOW, **urls)
        outcome = pay_dev.dev_pay_confirm(prepay_id=start.prepay_id)  # notify_url unreachable
        assert outcome is not None and not outcome.delivered
        nothing_paid(lease)
        from core.errors import DomainError

        with pytest.raises(DomainError) as again:
            deposit.deposit_begin(lease_id=lease.pk, now=NOW, **urls)
    assert again.value.code == "deposit_paid"
    payment = DepositPayment.objects.get(lease=lease)
    assert payment.status == "paid" and payment.transaction_id == outcome.transaction_id
