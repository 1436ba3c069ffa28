"""The WeChat Pay v3 adapter (signing/lease/payments/wechatpay.py, on the wechatpayv3 SDK)
against the local fake WeChat Pay server (signing/lease/payments/dev.py) on 127.0.0.1, end to
end: the SDK signs every request with the merchant key and the fake checks it; the fake signs
every answer and notification with its platform key and the SDK checks it (the platform
certificate downloaded from the fake's /v3/certificates, or the public key mode).

Order creation (Native, code_url), a notification verified, decrypted and applied through the
webhook; the same notice twice (applied once); forgeries (bad signature, unknown serial,
tampered ciphertext: refused with stable codes, nothing changed); a wrong amount (refused and
recorded, not applied); the order query for a lost notification; the close at the window's
end (frozen time); the refund of a voided or abandoned lease's deposit and its notification
(exactly once); junk of every kind to the notify endpoint (4xx with the error body, never
500)."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import httpx
import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache import cache
from django.test import Client

from core.context import RequestContext
from core.errors import DomainError
from signing.lease import deposit
from signing.lease.payments import dev as pay_dev
from signing.lease.payments import wechatpay
from signing.lease.payments.base import (
    PaymentNotificationInvalid,
    PaymentProviderError,
    RefundNotice,
)
from signing.lease.services import lease_start
from signing.models import Agreement, DepositPayment, Evidence, Lease, PaymentNotification
from tests.signing.lease_worlds import (
    ACCOUNT,
    NOW,
    WINDOW_ENDS,
    NotifyTransport,
    make_lease_world,
)

pytestmark = [pytest.mark.django_db(transaction=True)]

URL = "/api/v1/payments/notify/dev/"
SITE = "http://testserver"
RETURN_URL = f"{SITE}/h5/lease/1/deposit/"
S = timedelta(seconds=1)


@pytest.fixture(autouse=True)
def pay(settings, tmp_path_factory, monkeypatch):
    """Fresh test keys per test (generated now, never committed), refunds settled by the
    test, and the fake's notifications delivered into this app."""
    settings.SITE_URL = SITE
    settings.PAYMENT = {
        **settings.PAYMENT,
        "PROVIDER": "dev",
        "PLATFORM_KEY_DIR": tmp_path_factory.mktemp("pay"),
        "DEV_REFUND_AUTO_SETTLE": False,
        "ENDPOINT": "",
    }
    wechatpay.clients_clear()
    transport = NotifyTransport()
    monkeypatch.setattr(pay_dev, "callback_transport", transport)
    yield transport
    wechatpay.clients_clear()


def lease_at_deposit() -> Lease:
    world = make_lease_world()
    lease = lease_start(applicant=world.applicant, ctx=RequestContext(), now=NOW)
    Lease.objects.filter(pk=lease.pk).update(
        bank="ICBC", account_number=ACCOUNT, account_holder="王小明", bank_attempt=1
    )
    Agreement.objects.filter(pk=lease.agreement_id).update(
        status="signed", step=Agreement.Step.SUBMITTED, signed_at=NOW
    )
    return Lease.objects.get(pk=lease.pk)


def begin(lease: Lease):
    return deposit.deposit_begin(
        lease_id=lease.pk, return_url=RETURN_URL, notify_url=f"{SITE}{URL}", now=NOW
    )


def post(body: bytes, headers: dict) -> tuple[int, dict]:
    response = Client().generic(
        "POST", URL, data=body, content_type="application/json", headers=headers
    )
    return response.status_code, response.json()


def notification(payment: DepositPayment, **overrides):
    fields = {
        "out_trade_no": payment.out_trade_no,
        "transaction_id": "4200002611202603030000000009",
        "amount_fen": payment.amount_fen,
        "now": NOW,
        **overrides,
    }
    return pay_dev.dev_notification(**fields)


def nothing_paid(lease: Lease) -> None:
    payment = DepositPayment.objects.get(lease=lease)
    assert payment.status == "created" and payment.transaction_id == ""
    assert Lease.objects.get(pk=lease.pk).deposit_paid_at is None
    assert not PaymentNotification.objects.filter(outcome="applied").exists()
    assert not Evidence.objects.filter(kind="deposit_paid").exists()


def pay_at_the_cashier(prepay_id: str):
    """The applicant's 「确认支付」 on the fake's cashier (the code_url's page)."""
    outcome = pay_dev.dev_pay_confirm(prepay_id=prepay_id)
    assert outcome is not None
    return outcome


# ----------------------------------------------------------------------- order (Native)


def test_a_native_order_through_the_sdk_gives_a_code_url(pay):
    lease = lease_at_deposit()
    with time_machine.travel(NOW, tick=False):
        payment, start = begin(lease)
        again_payment, again = begin(lease)
    assert start.code_url == start.pay_url == f"{SITE}/dev/pay/{start.prepay_id}/"
    assert again.code_url == start.code_url and again_payment.pk == payment.pk  # idempotent
    assert payment.out_trade_no.startswith(f"AJ{lease.pk:08d}N01")  # per lease and attempt
    assert DepositPayment.objects.get(pk=payment.pk).prepay_id == start.prepay_id
    # The fake holds what the SDK sent: amount, notify_url and the window's end as
    # time_expire; the query through the SDK says NOTPAY.
    order = cache.get(pay_dev._trade_key(payment.out_trade_no))
    assert order["amount_fen"] == payment.amount_fen and order["notify_url"] == f"{SITE}{URL}"
    assert order["time_expire"] == WINDOW_ENDS.isoformat()
    with time_machine.travel(NOW, tick=False):
        queried = pay_dev.DevPayProvider().query_order(out_trade_no=payment.out_trade_no)
    assert queried.trade_state == "NOTPAY" and queried.transaction_id == ""


def test_the_fake_refuses_a_request_not_signed_by_the_merchant_key(pay):
    provider = pay_dev.DevPayProvider()
    good = provider.config()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    # In certificate mode the forger cannot even download the platform certificate (the
    # download is a signed request too):
    with pytest.raises(PaymentProviderError):
        pay_dev.DevPayProvider(
            config=wechatpay.WechatPayConfig(**{**good.__dict__, "merchant_key_pem": pem})
        ).query_order(out_trade_no="AJ0000000001N01ABCDEF01")
    # Given the platform's public key, its query is answered 401 SIGN_ERROR.
    platform_public = (
        pay_dev.platform_identity()
        .cert.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    forger = pay_dev.DevPayProvider(
        config=wechatpay.WechatPayConfig(
            **{
                **good.__dict__,
                "merchant_key_pem": pem,
                "public_key_pem": platform_public,
                "public_key_id": "PUB_KEY_ID_TEST",
            }
        )
    )
    with pytest.raises(PaymentProviderError) as caught:
        forger.query_order(out_trade_no="AJ0000000001N01ABCDEF01")
    assert caught.value.reason == "SIGN_ERROR" and not caught.value.retryable, caught.value.detail
    assert provider.query_order(out_trade_no="AJ0000000001N01ABCDEF01") is None  # the control


def test_an_answer_not_signed_by_the_platform_is_refused_by_the_sdk(pay, monkeypatch):
    """The SDK verifies every answer: one signed with another key (a man in the middle,
    who has neither the platform key nor the APIv3 key) is refused, never believed."""
    provider = pay_dev.DevPayProvider()
    assert provider.query_order(out_trade_no="AJ0000000001N01ABCDEF01") is None  # control
    lease = lease_at_deposit()
    with time_machine.travel(NOW, tick=False):
        payment, _ = begin(lease)
    intruder = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    genuine = pay_dev.dev_signed_headers
    monkeypatch.setattr(
        pay_dev,
        "dev_signed_headers",
        lambda **kw: genuine(**{**kw, "sign_with": intruder}),
    )
    with pytest.raises(PaymentProviderError) as caught:
        provider.query_order(out_trade_no=payment.out_trade_no)
    assert "signature" in caught.value.detail


# --------------------------------------------------- notification: verify, decrypt, apply


def test_paying_at_the_cashier_delivers_a_notice_applied_once(pay):
    lease = lease_at_deposit()
    with time_machine.travel(NOW, tick=False):
        payment, start = begin(lease)
        first = pay_at_the_cashier(start.prepay_id)
        again = pay_at_the_cashier(start.prepay_id)  # WeChat redelivers, signed afresh
    assert first.delivered and again.delivered
    assert [c["status"] for c in pay.calls] == [200, 200]
    payment.refresh_from_db()
    assert payment.status == "paid" and payment.transaction_id == first.transaction_id
    assert list(PaymentNotification.objects.order_by("pk").values_list("kind", "outcome")) == [
        ("payment", "applied"),
        ("payment", "duplicate"),
    ]
    assert Evidence.objects.filter(kind="deposit_paid").count() == 1


def test_the_same_notice_twice_is_applied_once(pay):
    lease = lease_at_deposit()
    payment = deposit.deposit_order_prepare(lease_id=lease.pk, now=NOW)
    body, headers = notification(payment)
    with time_machine.travel(NOW, tick=False):
        assert post(body, headers) == (200, {"code": "SUCCESS", "message": "成功"})
        status, answer = post(body, headers)
    assert status == 400 and answer["error"]["code"] == "payment_notification_replayed"
    assert PaymentNotification.objects.filter(outcome="applied").count() == 1
    assert Evidence.objects.filter(kind="deposit_paid").count() == 1


def _tampered_ciphertext(body: bytes, at=NOW) -> tuple[bytes, dict]:
    data = json.loads(body)
    raw = bytearray(base64.b64decode(data["resource"]["ciphertext"]))
    raw[3] ^= 0x01
    data["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    tampered = json.dumps(data).encode()
    return tampered, pay_dev.dev_signed_headers(body=tampered, timestamp=int(at.timestamp()))


@pytest.mark.parametrize(
    "forge, code",
    [
        (
            lambda b, h, key: pay_dev.dev_signed_headers(
                body=b, timestamp=int(NOW.timestamp()), sign_with=key
            ),
            "payment_signature_invalid",
        ),
        (lambda b, h, key: {**h, "Wechatpay-Serial": "5157F09EFDC096DE15EBE81A47057A72"}, None),
        (lambda b, h, key: {**h, "Wechatpay-Serial": "PUB_KEY_ID_0114232134912410000"}, None),
        (
            lambda b, h, key: {**h, "Wechatpay-Timestamp": str(int(NOW.timestamp()) - 301)},
            "payment_notification_stale",
        ),
    ],
    ids=["bad-signature", "unknown-serial", "unknown-public-key-id", "stale"],
)
def test_forged_notices_are_refused_and_change_nothing(pay, forge, code):
    lease = lease_at_deposit()
    payment = deposit.deposit_order_prepare(lease_id=lease.pk, now=NOW)
    body, headers = notification(payment)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with time_machine.travel(NOW, tick=False):
        status, answer = post(body, forge(body, headers, forger))
    assert status == 400
    assert answer["error"]["code"] == (code or "payment_notification_invalid")
    nothing_paid(lease)
    assert PaymentNotification.objects.get().outcome == "refused"  # recorded with its code
    # The genuine one still applies: the forgery used up no nonce.
    with time_machine.travel(NOW, tick=False):
        assert post(body, headers)[0] == 200


def test_a_tampered_ciphertext_is_refused_and_changes_nothing(pay):
    lease = lease_at_deposit()
    payment = deposit.deposit_order_prepare(lease_id=lease.pk, now=NOW)
    body, _ = notification(payment)
    with time_machine.travel(NOW, tick=False):
        status, answer = post(*_tampered_ciphertext(body))
    assert (status, answer["error"]["code"]) == (400, "payment_notification_malformed")
    nothing_paid(lease)


def test_a_wrong_amount_is_refused_recorded_and_not_applied(pay):
    lease = lease_at_deposit()
    payment = deposit.deposit_order_prepare(lease_id=lease.pk, now=NOW)
    body, headers = notification(payment, amount_fen=payment.amount_fen - 1)
    with time_machine.travel(NOW, tick=False):
        status, answer = post(body, headers)
    assert (status, answer["error"]["code"]) == (400, "payment_amount_mismatch")
    nothing_paid(lease)
    row = PaymentNotification.objects.get()
    assert (row.outcome, row.code, row.amount_fen) == (
        "refused",
        "payment_amount_mismatch",
        payment.amount_fen - 1,
    )
    assert Evidence.objects.filter(kind="deposit_notice_refused").count() == 1


def test_public_key_mode_verifies_notices_by_the_key_id(pay):
    """WeChat Pay's public key mode: the Wechatpay-Serial is the key's id, no certificate."""
    identity = pay_dev.platform_identity()
    base = pay_dev.DevPayProvider().config()
    key_id = "PUB_KEY_ID_0119000000012026030300000000000001"
    public_pem = (
        identity.cert.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    provider = wechatpay.WechatPayProvider(
        clock=lambda: NOW,
        config=wechatpay.WechatPayConfig(
            **{**base.__dict__, "public_key_pem": public_pem, "public_key_id": key_id}
        ),
    )
    lease = lease_at_deposit()
    payment = deposit.deposit_order_prepare(lease_id=lease.pk, now=NOW)
    body, headers = notification(payment)
    headers = {**headers, "Wechatpay-Serial": key_id}
    notice = provider.parse_notification(body=body, headers=headers)
    assert notice.paid and notice.out_trade_no == payment.out_trade_no
    with pytest.raises(PaymentNotificationInvalid) as caught:  # the certificate's serial
        provider.parse_notification(
            body=body,
            headers={**headers, "Wechatpay-Serial": "ABCDEF", "Wechatpay-Nonce": "N" * 32},
        )
    assert caught.value.code == "payment_notification_invalid"


# ------------------------------------------------------------- query for a lost notice


def test_a_lost_notification_is_found_by_the_order_query(pay, monkeypatch):
    lease = lease_at_deposit()
    with time_machine.travel(NOW, tick=False):
        payment, start = begin(lease)
        monkeypatch.setattr(
            pay_dev,
            "callback_transport",
            httpx.MockTransport(lambda r: (_ for _ in ()).throw(httpx.ConnectError("lost"))),
        )
        outcome = pay_at_the_cashier(start.prepay_id)
        assert not outcome.delivered
        nothing_paid(lease)
        deposit.deposit_refresh(lease=lease, now=NOW)  # the phone is back: ask WeChat
    payment.refresh_from_db()
    assert payment.status == "paid" and payment.transaction_id == outcome.transaction_id
    assert Evidence.objects.filter(kind="deposit_paid").count() == 1
    # Asking for the order again says it is paid (its notification is fetched, not taken).
    with time_machine.travel(NOW, tick=False), pytest.raises(DomainError) as caught:
        begin(lease)
    assert caught.value.code == "deposit_paid"


# ------------------------------------------------------------ close at the window's end


def test_unpaid_orders_close_at_the_windows_end_and_a_reopened_window_makes_a_new_attempt(pay):
    lease = lease_at_deposit()
    with time_machine.travel(NOW, tick=False):
        payment, start = begin(lease)
    with time_machine.travel(WINDOW_ENDS - S, tick=False):
        assert deposit.deposit_orders_close_due(now=WINDOW_ENDS - S) == []
        assert pay_dev.dev_pay_page_context(start.prepay_id) is not None  # still payable
    with time_machine.travel(WINDOW_ENDS, tick=False):
        assert deposit.deposit_orders_close_due(now=WINDOW_ENDS) == [payment.pk]
        assert deposit.deposit_orders_close_due(now=WINDOW_ENDS) == []  # once
        queried = pay_dev.DevPayProvider().query_order(out_trade_no=payment.out_trade_no)
        assert pay_dev.dev_pay_confirm(prepay_id=start.prepay_id) is None  # cannot be paid
    assert queried.trade_state == "CLOSED"
    payment.refresh_from_db()
    assert payment.closed_at == WINDOW_ENDS and payment.status == "created"
    # Staff reopen the window: a new attempt, a new number (the closed one is never reused).
    Agreement.objects.filter(pk=lease.agreement_id).update(
        window_ends_at=WINDOW_ENDS + timedelta(days=1)
    )
    later = WINDOW_ENDS + timedelta(hours=1)
    with time_machine.travel(later, tick=False):
        renewed, restart = deposit.deposit_begin(
            lease_id=lease.pk, return_url=RETURN_URL, notify_url=f"{SITE}{URL}", now=later
        )
    assert renewed.attempt == 2 and renewed.closed_at is None
    assert renewed.out_trade_no.startswith(f"AJ{lease.pk:08d}N02")
    assert renewed.out_trade_no != payment.out_trade_no and restart.prepay_id != start.prepay_id


def test_an_order_paid_before_the_close_is_applied_not_closed(pay, monkeypatch):
    lease = lease_at_deposit()
    with time_machine.travel(NOW, tick=False):
        payment, start = begin(lease)
        monkeypatch.setattr(
            pay_dev,
            "callback_transport",
            httpx.MockTransport(lambda r: (_ for _ in ()).throw(httpx.ConnectError("lost"))),
        )
        pay_at_the_cashier(start.prepay_id)
    with time_machine.travel(WINDOW_ENDS, tick=False):
        assert deposit.deposit_orders_close_due(now=WINDOW_ENDS) == []
    payment.refresh_from_db()
    assert payment.status == "paid" and payment.closed_at is None


# ---------------------------------------------------------------------------- refunds


def paid_lease(pay) -> tuple[Lease, DepositPayment]:
    lease = lease_at_deposit()
    with time_machine.travel(NOW, tick=False):
        payment, start = begin(lease)
        pay_at_the_cashier(start.prepay_id)
    payment.refresh_from_db()
    assert payment.status == "paid"
    return lease, payment


def test_a_refund_for_an_unpaid_order_is_refused(pay):
    lease = lease_at_deposit()
    deposit.deposit_order_prepare(lease_id=lease.pk, now=NOW)
    Agreement.objects.filter(pk=lease.agreement_id).update(status="void")
    with pytest.raises(DomainError) as caught:
        deposit.deposit_refund_request(lease_id=lease.pk, now=NOW)
    assert caught.value.code == "refund_not_paid"
    assert deposit.deposit_refunds_due(now=NOW) == []
    assert DepositPayment.objects.get(lease=lease).refund_status == ""
    # The fake refuses it too (WeChat: an unpaid order cannot be refunded).
    with pytest.raises(PaymentProviderError) as refused:
        pay_dev.DevPayProvider().refund_create(
            out_trade_no=DepositPayment.objects.get(lease=lease).out_trade_no,
            out_refund_no="RFTEST0001",
            refund_fen=100,
            total_fen=100,
            reason="测试",
            notify_url=f"{SITE}{URL}",
        )
    assert refused.value.reason in ("INVALID_REQUEST", "RESOURCE_NOT_EXISTS")


def test_a_going_lease_is_not_refunded(pay):
    lease, payment = paid_lease(pay)
    with pytest.raises(DomainError) as caught:
        deposit.deposit_refund_request(lease_id=lease.pk, now=NOW)
    assert caught.value.code == "refund_not_due"
    assert deposit.deposit_refunds_due(now=NOW) == []


@pytest.mark.parametrize("ending", ["void", "abandoned"])
def test_the_deposit_of_an_ended_lease_is_refunded_once_by_its_notification(pay, ending):
    lease, payment = paid_lease(pay)
    Agreement.objects.filter(pk=lease.agreement_id).update(status=ending)
    later = NOW + timedelta(hours=1)
    with time_machine.travel(later, tick=False):
        assert deposit.deposit_refunds_due(now=later) == [payment.pk]
        assert deposit.deposit_refunds_due(now=later) == []  # asked once
    payment.refresh_from_db()
    assert payment.refund_status == "processing" and payment.refund_id
    assert payment.out_refund_no == f"RF{payment.out_trade_no}"
    assert Evidence.objects.filter(kind="deposit_refund_requested").count() == 1
    # WeChat settles it and notifies (signed, encrypted); then redelivers.
    with time_machine.travel(later + S, tick=False):
        assert pay_dev.dev_refund_settle(out_refund_no=payment.out_refund_no) is True
        assert pay_dev.dev_refund_settle(out_refund_no=payment.out_refund_no) is True
    payment.refresh_from_db()
    assert payment.refund_status == "refunded" and payment.refunded_at == later + S
    assert list(
        PaymentNotification.objects.filter(kind="refund").values_list("outcome", flat=True)
    ) == ["applied", "duplicate"]
    assert Evidence.objects.filter(kind="deposit_refunded").count() == 1
    # The order as WeChat knows it now: REFUND.
    with time_machine.travel(later + S, tick=False):
        queried = pay_dev.DevPayProvider().query_order(out_trade_no=payment.out_trade_no)
    assert queried.trade_state == "REFUND"


def _refund_notice(payment: DepositPayment, **overrides) -> tuple[bytes, dict]:
    refund = cache.get(pay_dev._refund_key(payment.out_refund_no))
    return pay_dev.dev_refund_notification(
        {**refund, "status": "SUCCESS"}, now=NOW + timedelta(hours=1), **overrides
    )


def refunding(pay) -> DepositPayment:
    lease, payment = paid_lease(pay)
    Agreement.objects.filter(pk=lease.agreement_id).update(status="abandoned")
    deposit.deposit_refunds_due(now=NOW + timedelta(hours=1))
    payment.refresh_from_db()
    assert payment.refund_status == "processing"
    return payment


def test_the_same_refund_notice_twice_is_applied_once(pay):
    payment = refunding(pay)
    body, headers = _refund_notice(payment)
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        assert post(body, headers)[0] == 200
        status, answer = post(body, headers)
    assert (status, answer["error"]["code"]) == (400, "payment_notification_replayed")
    assert PaymentNotification.objects.filter(kind="refund", outcome="applied").count() == 1


@pytest.mark.parametrize(
    "overrides, code",
    [
        (
            {"amount": {"total": 1, "refund": 1, "payer_total": 1, "payer_refund": 1}},
            "payment_refund_amount_mismatch",
        ),
        ({"out_trade_no": "AJ99999999N01FFFFFFFF"}, "payment_refund_mismatch"),
        ({"out_refund_no": "RFNOSUCHREFUND"}, "payment_refund_unknown"),
        ({"mchid": "1900009999"}, "payment_notification_invalid"),
    ],
    ids=["amount", "order", "unknown", "merchant"],
)
def test_a_refund_notice_that_does_not_match_is_refused(pay, overrides, code):
    payment = refunding(pay)
    body, headers = _refund_notice(payment, **overrides)
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        status, answer = post(body, headers)
    assert status in (400, 404) and answer["error"]["code"] == code
    payment.refresh_from_db()
    assert payment.refund_status == "processing" and payment.refunded_at is None
    assert not PaymentNotification.objects.filter(kind="refund", outcome="applied").exists()


def test_a_forged_refund_notice_is_refused(pay):
    payment = refunding(pay)
    body, _ = _refund_notice(payment)
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers = pay_dev.dev_signed_headers(
        body=body, timestamp=int((NOW + timedelta(hours=1)).timestamp()), sign_with=forger
    )
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        status, answer = post(body, headers)
        tampered = post(*_tampered_ciphertext(body, NOW + timedelta(hours=1)))
    assert (status, answer["error"]["code"]) == (400, "payment_signature_invalid")
    assert tampered[0] == 400 and tampered[1]["error"]["code"] == "payment_notification_malformed"
    payment.refresh_from_db()
    assert payment.refund_status == "processing"


def test_a_lost_refund_notification_is_found_by_the_refund_query(pay):
    payment = refunding(pay)
    requested = payment.refund_requested_at
    pay_dev.dev_refund_settle(out_refund_no=payment.out_refund_no, deliver=False)
    just_before = requested + timedelta(seconds=deposit.REFUND_QUERY_AFTER_SECONDS) - S
    with time_machine.travel(just_before, tick=False):
        assert deposit.deposit_refunds_due(now=just_before) == []
    at = just_before + S
    with time_machine.travel(at, tick=False):
        assert deposit.deposit_refunds_due(now=at) == [payment.pk]
    payment.refresh_from_db()
    assert payment.refund_status == "refunded"
    assert PaymentNotification.objects.filter(kind="refund", outcome="applied").count() == 1


def test_an_abnormal_refund_is_marked_failed_for_staff(pay):
    payment = refunding(pay)
    body, headers = pay_dev.dev_refund_notification(
        {**cache.get(pay_dev._refund_key(payment.out_refund_no)), "status": "ABNORMAL"},
        now=NOW + timedelta(hours=1),
        event_type="REFUND.ABNORMAL",
    )
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        assert post(body, headers)[0] == 200  # acknowledged, so WeChat stops redelivering
    payment.refresh_from_db()
    assert payment.refund_status == "failed"
    assert Evidence.objects.filter(kind="deposit_refund_failed").count() == 1


def test_the_refund_answer_parses_into_a_refund_notice(pay):
    payment = refunding(pay)
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        answer = pay_dev.DevPayProvider().refund_query(out_refund_no=payment.out_refund_no)
        missing = pay_dev.DevPayProvider().refund_query(out_refund_no="RFNOSUCH")
    assert isinstance(answer, RefundNotice) and answer.refund_status == "PROCESSING"
    assert answer.refund_fen == answer.total_fen == payment.amount_fen and missing is None


# ------------------------------------------------------------------- bad input, no 500


@pytest.mark.parametrize(
    "body, headers",
    [
        (b"", {}),
        (b"{}", {}),
        (b"\xff\xfe\x00", {"Wechatpay-Timestamp": "x"}),
        (
            b"{}",
            {
                "Wechatpay-Timestamp": "1772500000",
                "Wechatpay-Nonce": "A" * 32,
                "Wechatpay-Serial": "0" * 40,
                "Wechatpay-Signature": "%%%",
            },
        ),
        (
            b"[]",
            {
                "Wechatpay-Timestamp": "99999999999999",
                "Wechatpay-Nonce": "A" * 32,
                "Wechatpay-Serial": "ZZ",
                "Wechatpay-Signature": "abc",
            },
        ),
        (
            b"\xff",
            {
                "Wechatpay-Timestamp": "1772500000",
                "Wechatpay-Nonce": "A" * 32,
                "Wechatpay-Serial": "0" * 40,
                "Wechatpay-Signature": "abc",
                "Wechatpay-Signature-Type": "WECHATPAY2-SM2-WITH-SM3",
            },
        ),
        (
            b"{}",
            {
                "Wechatpay-Timestamp": "1772500000",
                "Wechatpay-Nonce": "A" * 32,
                "Wechatpay-Serial": "PUB_KEY_ID_1",
                "Wechatpay-Signature": "abc=",
            },
        ),
        (b"x" * (200 * 1024), {}),
    ],
)
def test_bad_input_to_the_notify_endpoint_is_a_4xx_with_the_error_body(pay, body, headers):
    with time_machine.travel(NOW, tick=False):
        response = Client().generic(
            "POST", URL, data=body, content_type="application/json", headers=headers
        )
    assert 400 <= response.status_code < 500
    error = response.json()["error"]
    assert error["code"].startswith("payment_") and error["message"]


def test_signed_junk_bodies_are_4xx_never_500(pay):
    lease_at_deposit()
    bodies = [
        b"null",
        b'{"id": "x", "resource_type": "encrypt-resource", "event_type": "REFUND.SUCCESS",'
        b' "resource": {"algorithm": "AEAD_AES_256_GCM", "original_type": "refund",'
        b' "ciphertext": "AAAA", "nonce": "123456789012", "associated_data": "refund"}}',
        b'{"id": "x", "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS",'
        b' "resource": {"algorithm": "AEAD_AES_256_GCM", "original_type": "transaction",'
        b' "ciphertext": "@@@@", "nonce": "123456789012", "associated_data": "transaction"}}',
        json.dumps({"id": "\ud800", "resource": {}}).encode(),
    ]
    for body in bodies:
        headers = pay_dev.dev_signed_headers(body=body, timestamp=int(NOW.timestamp()))
        with time_machine.travel(NOW, tick=False):
            status, answer = post(body, headers)
        assert 400 <= status < 500 and answer["error"]["code"].startswith("payment_"), body
