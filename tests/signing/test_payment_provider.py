"""The payment provider interface and the development provider (WeChat Pay API v3-shaped).

Provider level only (none of our models): the provider's side (orders idempotent per
out_trade_no, the cashier's confirmation paying once, the notification delivered server to
server through an httpx.MockTransport, the order query) and our side's verification of a
notification: signature by the platform key, serial, freshness, replay, decryption with the
APIv3 key, the JSON's shape. Also the platform key's creation and the cashier template.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import threading
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.template.loader import render_to_string
from django.test import RequestFactory

from signing.lease.payments import (
    PaymentNotice,
    PaymentNotificationInvalid,
    PaymentNotificationMalformed,
    PaymentProviderError,
    get_provider,
    provider_name,
)
from signing.lease.payments import dev as dev_module
from signing.lease.payments.dev import (
    DevPayProvider,
    api_v3_key,
    dev_encrypt_resource,
    dev_notification,
    dev_pay_confirm,
    dev_pay_page_context,
    dev_platform_ensure,
    dev_signed_headers,
    platform_identity,
)

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 1, 21, 10, 0, tzinfo=TZ)
NOTIFY_URL = "http://testserver/api/v1/payments/notify/dev/"
RETURN_URL = "http://testserver/h5/deposit/7/paid/?from=pay"
MCHID, APPID = "1900000001", "wx_anju_dev"
OUT_TRADE_NO = "DEP20260121000007"
AMOUNT = 123450  # ¥1234.50


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory):
    """One platform key for the module (RSA-2048 generation is slow); the key's creation is
    tested on its own fresh directories."""
    return tmp_path_factory.mktemp("pay")


@pytest.fixture(scope="module")
def forger_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def pay(settings, key_dir):
    settings.SITE_URL = "http://testserver"
    settings.PAYMENT = {
        "PROVIDER": "dev",
        "MCHID": MCHID,
        "APPID": APPID,
        "MERCHANT_NAME": "深圳市住房保障机构（演示）",
        "API_V3_KEY": "",
        "PLATFORM_KEY_DIR": key_dir,
        "NOTIFY_MAX_AGE_SECONDS": 300,
    }
    return settings.PAYMENT


@pytest.fixture
def provider(pay):
    return DevPayProvider(clock=lambda: NOW)


class Notify:
    """Our notify_url, as the provider's outgoing HTTP sees it (an httpx.MockTransport)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.status = 204
        self.fail = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        if self.fail:
            raise httpx.ConnectError("connection refused", request=request)
        self.requests.append(request)
        return httpx.Response(self.status)

    def last(self) -> tuple[bytes, dict[str, str]]:
        request = self.requests[-1]
        return request.content, dict(request.headers.items())


@pytest.fixture
def notify(monkeypatch):
    recorder = Notify()
    monkeypatch.setattr(dev_module, "callback_transport", httpx.MockTransport(recorder.handle))
    return recorder


def create(provider, **overrides):
    args = {
        "out_trade_no": OUT_TRADE_NO,
        "description": "公租房租赁保证金 福田区某小区 3-1201",
        "amount_fen": AMOUNT,
        "notify_url": NOTIFY_URL,
        "return_url": RETURN_URL,
        "payer_hint": "张*",
    }
    return provider.create_order(**{**args, **overrides})


def notice_for(transaction_id: str, **overrides) -> tuple[bytes, dict[str, str]]:
    args = {
        "out_trade_no": OUT_TRADE_NO,
        "transaction_id": transaction_id,
        "amount_fen": AMOUNT,
        "now": NOW,
    }
    return dev_notification(**{**args, **overrides})


def signed(envelope, *, at: datetime = NOW) -> tuple[bytes, dict[str, str]]:
    """Any body (a dict is JSON-encoded), genuinely signed by the platform key."""
    body = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
    return body, dev_signed_headers(body=body, timestamp=int(at.timestamp()))


def transaction(**overrides) -> dict:
    return {
        "mchid": MCHID,
        "appid": APPID,
        "out_trade_no": OUT_TRADE_NO,
        "transaction_id": "4200000985202601211441826014",
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "success_time": "2026-01-21T10:00:00+08:00",
        "payer": {"openid": "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o"},
        "amount": {"total": AMOUNT, "payer_total": AMOUNT, "currency": "CNY"},
        **overrides,
    }


def envelope(resource: dict | None = None, **overrides) -> dict:
    if resource is None:
        resource = dev_encrypt_resource(json.dumps(transaction()).encode())
    return {
        "id": "EV-2018022511223320873",
        "create_time": "2026-01-21T10:00:00+08:00",
        "resource_type": "encrypt-resource",
        "event_type": "TRANSACTION.SUCCESS",
        "summary": "支付成功",
        "resource": resource,
        **overrides,
    }


def refused(provider, body: bytes, headers: dict[str, str]) -> str:
    with pytest.raises(PaymentNotificationInvalid) as caught:
        provider.parse_notification(body=body, headers=headers)
    assert caught.value.kind == "invalid"  # HTTP 400
    assert caught.value.message  # a Chinese message for the page
    return caught.value.code


# ------------------------------------------------------------------- the provider's side


def test_create_order_is_idempotent_per_out_trade_no(provider):
    first = create(provider)
    # Shaped like WeChat's "wx201410272009395522657a690389285100".
    assert re.fullmatch(r"wx20\d{12}[0-9a-f]{20}", first.prepay_id)
    assert first.pay_url == f"http://testserver/dev/pay/{first.prepay_id}/"

    again = create(provider)
    assert again == first
    # The first call's return and notify URLs stay with the order.
    moved = create(provider, return_url="http://testserver/elsewhere/")
    assert moved == first
    assert dev_pay_page_context(first.prepay_id)["order"].return_url.startswith(
        "http://testserver/h5/deposit/7/paid/"
    )

    other = create(provider, out_trade_no="DEP20260121000008")
    assert other.prepay_id != first.prepay_id


@pytest.mark.parametrize(
    "change",
    [{"amount_fen": AMOUNT + 1}, {"amount_fen": 1}, {"description": "另一笔保证金"}],
)
def test_create_order_refuses_changed_parameters_for_a_known_out_trade_no(provider, change):
    first = create(provider)
    with pytest.raises(PaymentProviderError) as caught:
        create(provider, **change)
    assert caught.value.retryable is False
    assert caught.value.reason == "OUT_TRADE_NO_USED"
    assert caught.value.code == "payment_provider_unavailable"
    # The original session is untouched.
    order = dev_pay_page_context(first.prepay_id)["order"]
    assert order.amount_fen == AMOUNT
    assert provider.query_order(out_trade_no=OUT_TRADE_NO).amount_fen == AMOUNT


@pytest.mark.parametrize(
    "bad",
    [
        {"out_trade_no": "short"},
        {"out_trade_no": "x" * 33},
        {"out_trade_no": "DEP 2026012100"},
        {"out_trade_no": "DEP2026012100\n"},
        {"description": ""},
        {"description": "长" * 128},
        {"amount_fen": 0},
        {"amount_fen": -100},
        {"amount_fen": True},
        {"amount_fen": 12.5},
        {"notify_url": "/api/v1/payments/notify/dev/"},
        {"notify_url": "ftp://testserver/notify/"},
        {"notify_url": NOTIFY_URL + "?order=1"},
        {"return_url": "javascript:alert(1)"},
        {"payer_hint": "x" * 33},
    ],
)
def test_create_order_refuses_bad_arguments(provider, bad):
    with pytest.raises(ValueError):
        create(provider, **bad)
    assert provider.query_order(out_trade_no=OUT_TRADE_NO) is None


def test_confirm_pays_once_and_delivers_a_verifiable_notification(provider, notify):
    start = create(provider)
    outcome = dev_pay_confirm(prepay_id=start.prepay_id, now=NOW)

    assert outcome.delivered is True
    assert len(outcome.transaction_id) == 28 and outcome.transaction_id.isdigit()
    assert outcome.transaction_id.startswith("42000") and "20260121" in outcome.transaction_id
    query = parse_qs(urlsplit(outcome.return_url).query)
    assert outcome.return_url.startswith("http://testserver/h5/deposit/7/paid/?")
    assert query == {"from": ["pay"], "out_trade_no": [OUT_TRADE_NO]}

    assert len(notify.requests) == 1
    request = notify.requests[0]
    assert str(request.url) == NOTIFY_URL and request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    body, headers = notify.last()
    notice = provider.parse_notification(body=body, headers=headers)
    assert notice == PaymentNotice(
        provider="dev",
        notification_id=json.loads(body)["id"],
        out_trade_no=OUT_TRADE_NO,
        transaction_id=outcome.transaction_id,
        trade_state="SUCCESS",
        amount_fen=AMOUNT,
        currency="CNY",
        mchid=MCHID,
        appid=APPID,
        success_time=NOW,
    )
    assert notice.paid and notice.success_time.utcoffset() == timedelta(hours=8)

    # A second confirmation pays nothing more: same transaction, redelivered signed afresh.
    later = NOW + timedelta(minutes=1)
    second = dev_pay_confirm(prepay_id=start.prepay_id, now=later)
    assert second.transaction_id == outcome.transaction_id and second.delivered
    body2, headers2 = notify.last()
    assert headers2["wechatpay-nonce"] != headers["wechatpay-nonce"]
    assert json.loads(body2)["id"] != json.loads(body)["id"]
    redelivered = DevPayProvider(clock=lambda: later).parse_notification(
        body=body2, headers=headers2
    )
    assert redelivered.transaction_id == outcome.transaction_id
    assert redelivered.success_time == NOW  # the payment's time, not the redelivery's


def test_the_notification_is_shaped_like_wechat_pay_v3(provider, notify):
    start = create(provider)
    outcome = dev_pay_confirm(prepay_id=start.prepay_id, now=NOW)
    body, headers = notify.last()

    # Headers: the WeChat Pay v3 set, signed over "{timestamp}\n{nonce}\n{body}\n".
    identity = platform_identity()
    assert headers["wechatpay-timestamp"] == str(int(NOW.timestamp()))
    assert len(headers["wechatpay-nonce"]) == 32 and headers["wechatpay-nonce"].isalnum()
    assert headers["wechatpay-serial"] == identity.serial
    assert len(identity.serial) == 40 and identity.serial == identity.serial.upper()
    assert headers["wechatpay-signature-type"] == "WECHATPAY2-SHA256-RSA2048"
    message = (
        f"{headers['wechatpay-timestamp']}\n{headers['wechatpay-nonce']}\n".encode() + body + b"\n"
    )
    identity.cert.public_key().verify(
        base64.b64decode(headers["wechatpay-signature"]),
        message,
        padding.PKCS1v15(),
        hashes.SHA256(),
    )

    data = json.loads(body)
    assert set(data) == {"id", "create_time", "resource_type", "event_type", "summary", "resource"}
    assert data["create_time"] == "2026-01-21T10:00:00+08:00"
    assert data["resource_type"] == "encrypt-resource"
    assert data["event_type"] == "TRANSACTION.SUCCESS" and data["summary"] == "支付成功"
    resource = data["resource"]
    assert resource["original_type"] == "transaction"
    assert resource["algorithm"] == "AEAD_AES_256_GCM"
    assert resource["associated_data"] == "transaction" and len(resource["nonce"]) == 12

    plain = AESGCM(api_v3_key()).decrypt(
        resource["nonce"].encode(),
        base64.b64decode(resource["ciphertext"]),
        resource["associated_data"].encode(),
    )
    tx = json.loads(plain)
    assert tx["mchid"] == MCHID and tx["appid"] == APPID
    assert tx["out_trade_no"] == OUT_TRADE_NO and tx["transaction_id"] == outcome.transaction_id
    assert tx["trade_type"] == "NATIVE" and tx["trade_state"] == "SUCCESS"
    assert tx["trade_state_desc"] == "支付成功" and tx["bank_type"] == "OTHERS"
    assert tx["success_time"] == "2026-01-21T10:00:00+08:00"
    assert tx["payer"]["openid"].startswith("o") and len(tx["payer"]["openid"]) == 28
    assert tx["amount"] == {
        "total": AMOUNT,
        "payer_total": AMOUNT,
        "currency": "CNY",
        "payer_currency": "CNY",
    }


@pytest.mark.parametrize("failure", ["unreachable", "http500"])
def test_a_failed_delivery_is_reported_and_the_order_is_still_paid(provider, notify, failure):
    start = create(provider)
    if failure == "unreachable":
        notify.fail = True
    else:
        notify.status = 500
    outcome = dev_pay_confirm(prepay_id=start.prepay_id, now=NOW)
    assert outcome.delivered is False
    assert parse_qs(urlsplit(outcome.return_url).query)["out_trade_no"] == [OUT_TRADE_NO]
    # The return page can ask the provider.
    queried = provider.query_order(out_trade_no=OUT_TRADE_NO)
    assert queried.trade_state == "SUCCESS" and queried.transaction_id == outcome.transaction_id
    assert dev_pay_page_context(start.prepay_id)["order"].delivered is False

    notify.fail, notify.status = False, 200
    retried = dev_pay_confirm(prepay_id=start.prepay_id, now=NOW)
    assert retried.delivered and retried.transaction_id == outcome.transaction_id
    assert dev_pay_page_context(start.prepay_id)["order"].delivered is True


def test_a_paid_order_cannot_be_created_again(provider, notify):
    start = create(provider)
    dev_pay_confirm(prepay_id=start.prepay_id, now=NOW)
    with pytest.raises(PaymentProviderError) as caught:
        create(provider)
    assert caught.value.reason == "ORDERPAID" and caught.value.retryable is False


def test_unknown_or_expired_sessions(provider, notify):
    assert dev_pay_page_context("wx" + "0" * 34) is None
    assert dev_pay_page_context("../../etc/passwd") is None
    assert dev_pay_confirm(prepay_id="not-a-prepay-id", now=NOW) is None
    start = create(provider)
    cache.delete(dev_module._trade_key(OUT_TRADE_NO))  # the provider forgot the session
    assert dev_pay_page_context(start.prepay_id) is None
    assert dev_pay_confirm(prepay_id=start.prepay_id, now=NOW) is None
    assert notify.requests == []


def test_query_order_before_and_after_payment(provider, notify):
    assert provider.query_order(out_trade_no=OUT_TRADE_NO) is None
    assert provider.query_order(out_trade_no="bad id") is None
    start = create(provider)

    unpaid = provider.query_order(out_trade_no=OUT_TRADE_NO)
    assert unpaid == PaymentNotice(
        provider="dev",
        notification_id="",
        out_trade_no=OUT_TRADE_NO,
        transaction_id="",
        trade_state="NOTPAY",
        amount_fen=AMOUNT,
        currency="CNY",
        mchid=MCHID,
        appid=APPID,
        success_time=None,
    )
    assert not unpaid.paid

    outcome = dev_pay_confirm(prepay_id=start.prepay_id, now=NOW)
    paid = provider.query_order(out_trade_no=OUT_TRADE_NO)
    assert paid.trade_state == "SUCCESS" and paid.paid
    assert paid.transaction_id == outcome.transaction_id
    assert paid.success_time == NOW and paid.notification_id == ""
    assert provider.query_order(out_trade_no="DEP20260121000099") is None


# ------------------------------------------------------------------------------ our side


def test_an_identical_replay_is_refused(provider):
    body, headers = notice_for("4200000985202601211441826014")
    assert provider.parse_notification(body=body, headers=headers).paid
    assert refused(provider, body, headers) == "payment_notification_replayed"


def test_a_fresh_redelivery_is_valid(provider):
    body, headers = notice_for("4200000985202601211441826014")
    first = provider.parse_notification(body=body, headers=headers)
    body2, headers2 = notice_for("4200000985202601211441826014")
    assert headers2["Wechatpay-Nonce"] != headers["Wechatpay-Nonce"]
    again = provider.parse_notification(body=body2, headers=headers2)
    assert again.transaction_id == first.transaction_id
    assert again.notification_id != first.notification_id


def test_a_forged_signature_is_refused_and_does_not_use_up_the_nonce(provider, forger_key):
    nonce = "N" * 32
    body, headers = notice_for("4200000985202601211441826014", nonce=nonce, sign_with=forger_key)
    assert refused(provider, body, headers) == "payment_signature_invalid"
    genuine_body, genuine = notice_for("4200000985202601211441826014", nonce=nonce)
    assert provider.parse_notification(body=genuine_body, headers=genuine).paid


@pytest.mark.parametrize(
    "tamper",
    [
        lambda b: b.replace(b'"summary":"', b'"summary":"x'),
        lambda b: b + b" ",
        lambda b: b[:-1],
    ],
)
def test_a_body_changed_after_signing_is_refused(provider, tamper):
    body, headers = notice_for("4200000985202601211441826014")
    assert refused(provider, tamper(body), headers) == "payment_signature_invalid"


def test_a_tampered_ciphertext_with_a_fresh_signature_does_not_decrypt(provider):
    body, _ = notice_for("4200000985202601211441826014")
    data = json.loads(body)
    raw = bytearray(base64.b64decode(data["resource"]["ciphertext"]))
    raw[5] ^= 0x01
    data["resource"]["ciphertext"] = base64.b64encode(bytes(raw)).decode()
    assert refused(provider, *signed(data)) == "payment_notification_malformed"


def test_a_signature_of_other_headers_is_refused(provider):
    body, headers = notice_for("4200000985202601211441826014")
    moved = {**headers, "Wechatpay-Timestamp": str(int(NOW.timestamp()) + 1)}
    assert refused(provider, body, moved) == "payment_signature_invalid"
    renonced = {**headers, "Wechatpay-Nonce": "Z" * 32}
    assert refused(provider, body, renonced) == "payment_signature_invalid"


def test_an_unknown_serial_is_refused(provider):
    body, headers = notice_for("4200000985202601211441826014")
    wrong = {**headers, "Wechatpay-Serial": "5157F09EFDC096DE15EBE81A47057A7232F1B8E1"}
    assert refused(provider, body, wrong) == "payment_notification_invalid"
    # The genuine one still verifies: the refusal did not use up its nonce.
    lower = {**headers, "Wechatpay-Serial": headers["Wechatpay-Serial"].lower()}
    assert provider.parse_notification(body=body, headers=lower).paid


@pytest.mark.parametrize(
    "offset,accepted",
    [
        (timedelta(seconds=-301), False),
        (timedelta(seconds=301), False),
        (timedelta(days=-1), False),
        (timedelta(seconds=-300), True),
        (timedelta(seconds=300), True),
        (timedelta(0), True),
    ],
)
def test_a_stale_timestamp_is_refused(pay, offset, accepted):
    body, headers = notice_for("4200000985202601211441826014")
    provider = DevPayProvider(clock=lambda: NOW + offset)
    if accepted:
        assert provider.parse_notification(body=body, headers=headers).paid
    else:
        assert refused(provider, body, headers) == "payment_notification_stale"


def test_the_max_age_is_configurable(provider, settings):
    settings.PAYMENT = {**settings.PAYMENT, "NOTIFY_MAX_AGE_SECONDS": 60}
    body, headers = notice_for("4200000985202601211441826014", now=NOW - timedelta(seconds=61))
    assert refused(provider, body, headers) == "payment_notification_stale"


def test_a_resource_encrypted_with_another_apiv3_key_is_malformed(provider):
    body, headers = notice_for("4200000985202601211441826014", api_v3_key=b"k" * 32)
    with pytest.raises(PaymentNotificationMalformed) as caught:
        provider.parse_notification(body=body, headers=headers)
    assert caught.value.code == "payment_notification_malformed"
    assert caught.value.kind == "invalid"


def test_a_configured_apiv3_key_is_used(provider, settings):
    settings.PAYMENT = {**settings.PAYMENT, "API_V3_KEY": "a" * 32}
    assert api_v3_key() == b"a" * 32
    body, headers = notice_for("4200000985202601211441826014")
    assert provider.parse_notification(body=body, headers=headers).paid
    settings.PAYMENT = {**settings.PAYMENT, "API_V3_KEY": ""}
    assert len(api_v3_key()) == 32 and api_v3_key() != b"a" * 32
    assert refused(provider, body, headers) == "payment_notification_replayed"
    body, headers = notice_for("4200000985202601211441826014", api_v3_key=b"a" * 32)
    assert refused(provider, body, headers) == "payment_notification_malformed"
    settings.PAYMENT = {**settings.PAYMENT, "API_V3_KEY": "too-short"}
    with pytest.raises(ImproperlyConfigured):
        api_v3_key()


@pytest.mark.parametrize(
    "drop",
    ["Wechatpay-Timestamp", "Wechatpay-Nonce", "Wechatpay-Serial", "Wechatpay-Signature"],
)
def test_a_missing_header_is_refused(provider, drop):
    body, headers = notice_for("4200000985202601211441826014")
    partial = {k: v for k, v in headers.items() if k != drop}
    assert refused(provider, body, partial) == "payment_notification_invalid"
    blank = {**headers, drop: "  "}
    assert refused(provider, body, blank) == "payment_notification_invalid"
    assert refused(provider, body, {}) == "payment_notification_invalid"


def test_headers_are_matched_without_regard_to_case(provider):
    body, headers = notice_for("4200000985202601211441826014")
    lowered = {k.lower(): v for k, v in headers.items()}
    assert provider.parse_notification(body=body, headers=lowered).paid


@pytest.mark.parametrize(
    "header,value,code",
    [
        ("Wechatpay-Timestamp", "17689601OO", "payment_notification_invalid"),
        ("Wechatpay-Timestamp", "-1768960800", "payment_notification_invalid"),
        ("Wechatpay-Timestamp", "１７６８９６０８００", "payment_notification_invalid"),
        ("Wechatpay-Timestamp", "9" * 13, "payment_notification_invalid"),
        ("Wechatpay-Nonce", "short", "payment_notification_invalid"),
        ("Wechatpay-Nonce", "has space in the nonce", "payment_notification_invalid"),
        ("Wechatpay-Serial", "5157F09E FDC096DE", "payment_notification_invalid"),
        ("Wechatpay-Signature-Type", "WECHATPAY2-SHA256-RSA1024", "payment_notification_invalid"),
        ("Wechatpay-Signature", "not base64!", "payment_signature_invalid"),
        ("Wechatpay-Signature", "WECHATPAY/SIGNTEST/abc", "payment_signature_invalid"),
        ("Wechatpay-Signature", "QUJD", "payment_signature_invalid"),
        ("Wechatpay-Signature", "A" * 2000, "payment_notification_invalid"),
    ],
)
def test_malformed_headers_are_refused(provider, header, value, code):
    body, headers = notice_for("4200000985202601211441826014")
    assert refused(provider, body, {**headers, header: value}) == code


def test_a_missing_signature_type_is_accepted(provider):
    body, headers = notice_for("4200000985202601211441826014")
    del headers["Wechatpay-Signature-Type"]
    assert provider.parse_notification(body=body, headers=headers).paid


def test_a_non_json_body_is_refused(provider):
    # Signed by the platform: malformed (a subclass of invalid).
    assert refused(provider, *signed(b"not json")) == "payment_notification_malformed"
    assert refused(provider, *signed(b"\xff\xfe")) == "payment_notification_malformed"
    # Unsigned (someone else's): its signature is wrong first.
    _, headers = signed(b"{}")
    assert refused(provider, b"not json", headers) == "payment_signature_invalid"


def _resource_of(tx) -> dict:
    return dev_encrypt_resource(json.dumps(tx).encode() if isinstance(tx, dict) else tx)


@pytest.mark.parametrize(
    "body",
    [
        lambda: [],
        lambda: "TRANSACTION.SUCCESS",
        lambda: envelope(event_type="REFUND.SUCCESS"),
        lambda: envelope(event_type=None),
        lambda: envelope(resource_type="plain"),
        lambda: envelope(id=""),
        lambda: envelope(id=42),
        lambda: {k: v for k, v in envelope().items() if k != "resource"},
        lambda: envelope(resource="ciphertext"),
        lambda: envelope({**_resource_of(transaction()), "algorithm": "AEAD_AES_128_GCM"}),
        lambda: envelope({**_resource_of(transaction()), "original_type": "refund"}),
        lambda: envelope({**_resource_of(transaction()), "ciphertext": "!!!"}),
        lambda: envelope({**_resource_of(transaction()), "ciphertext": 12}),
        lambda: envelope({**_resource_of(transaction()), "nonce": "short"}),
        lambda: envelope({**_resource_of(transaction()), "nonce": "x" * 65}),
        lambda: envelope({**_resource_of(transaction()), "associated_data": "certificate"}),
        lambda: envelope({**_resource_of(transaction()), "nonce": "\ud800" * 12}),
        lambda: envelope(_resource_of(b"not json")),
        lambda: envelope(_resource_of(b"[1, 2]")),
        lambda: envelope(_resource_of(transaction(out_trade_no="bad id"))),
        lambda: envelope(_resource_of(transaction(out_trade_no="DEP20260121\n"))),
        lambda: envelope(_resource_of(transaction(out_trade_no=None))),
        lambda: envelope(_resource_of(transaction(transaction_id=""))),
        lambda: envelope(_resource_of(transaction(transaction_id=4200000985))),
        lambda: envelope(_resource_of(transaction(trade_state="NOTPAY"))),
        lambda: envelope(_resource_of(transaction(trade_state="PAID!"))),
        lambda: envelope(_resource_of(transaction(amount={"total": "12345", "currency": "CNY"}))),
        lambda: envelope(_resource_of(transaction(amount={"total": True, "currency": "CNY"}))),
        lambda: envelope(_resource_of(transaction(amount={"total": -1, "currency": "CNY"}))),
        lambda: envelope(_resource_of(transaction(amount={"total": 100}))),
        lambda: envelope(_resource_of(transaction(amount={"total": 100, "currency": "rmb"}))),
        lambda: envelope(_resource_of(transaction(amount=100))),
        lambda: envelope(_resource_of(transaction(success_time="yesterday"))),
        lambda: envelope(_resource_of(transaction(success_time="2026-01-21T10:00:00"))),
        lambda: envelope(_resource_of(transaction(success_time=1768960800))),
        lambda: envelope(
            _resource_of({k: v for k, v in transaction().items() if k != "success_time"})
        ),
    ],
)
def test_a_malformed_but_signed_body_is_refused(provider, body):
    assert refused(provider, *signed(body())) == "payment_notification_malformed"


def test_a_well_formed_hand_built_notification_verifies(provider):
    # The control for the malformed cases above: the same builders, unchanged.
    body, headers = signed(envelope())
    notice = provider.parse_notification(body=body, headers=headers)
    assert notice.transaction_id == "4200000985202601211441826014"
    assert notice.notification_id == "EV-2018022511223320873"
    assert notice.success_time == NOW


@pytest.mark.parametrize("field", ["mchid", "appid"])
def test_another_merchants_notification_is_refused(provider, field):
    body, headers = notice_for("4200000985202601211441826014", **{field: "someone-else"})
    assert refused(provider, body, headers) == "payment_notification_invalid"


def test_a_wrong_amount_verifies_and_is_reported_as_stated(provider):
    # The provider vouches for what it says; comparing with our order is the apply step's job.
    body, headers = notice_for("4200000985202601211441826014", amount_fen=1, currency="USD")
    notice = provider.parse_notification(body=body, headers=headers)
    assert (notice.amount_fen, notice.currency) == (1, "USD")


# -------------------------------------------------------------------- the platform key


def test_the_platform_key_is_created_once_0600_and_cached(pay, settings, tmp_path):
    directory = tmp_path / "pay"
    settings.PAYMENT = {**settings.PAYMENT, "PLATFORM_KEY_DIR": directory}
    identity = platform_identity()
    key_file, cert_file = directory / "platform.key.pem", directory / "platform.crt.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert b"PRIVATE KEY" in key_file.read_bytes() and b"CERTIFICATE" in cert_file.read_bytes()
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert identity.key.key_size == 2048
    assert platform_identity() is identity  # loaded once per process
    assert dev_platform_ensure(directory=directory) is False
    assert platform_identity().serial == identity.serial
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_concurrent_first_uses_make_one_key(tmp_path):
    directory = tmp_path / "pay"
    barrier = threading.Barrier(4)
    created: list[bool] = []

    def ensure():
        barrier.wait()
        created.append(dev_platform_ensure(directory=directory, now=NOW))

    threads = [threading.Thread(target=ensure) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(created) == [False, False, False, True]


def test_a_key_from_another_directory_is_another_serial(pay, settings, tmp_path):
    body, headers = notice_for("4200000985202601211441826014")
    settings.PAYMENT = {**settings.PAYMENT, "PLATFORM_KEY_DIR": tmp_path / "other"}
    provider = DevPayProvider(clock=lambda: NOW)
    assert refused(provider, body, headers) == "payment_notification_invalid"


# ------------------------------------------------------------------------ the interface


def test_the_provider_is_found_by_name(pay, settings):
    assert provider_name() == "dev"
    assert isinstance(get_provider(), DevPayProvider)
    settings.PAYMENT = {**settings.PAYMENT, "PROVIDER": "signing.lease.payments.dev.DevPayProvider"}
    assert isinstance(get_provider(), DevPayProvider)


def test_error_codes_are_stable():
    from signing.lease.payments import (
        PaymentNotificationReplayed,
        PaymentNotificationStale,
        PaymentSignatureInvalid,
    )

    expected = {
        PaymentNotificationInvalid: "payment_notification_invalid",
        PaymentNotificationStale: "payment_notification_stale",
        PaymentNotificationReplayed: "payment_notification_replayed",
        PaymentSignatureInvalid: "payment_signature_invalid",
        PaymentNotificationMalformed: "payment_notification_malformed",
    }
    for cls, code in expected.items():
        error = cls()
        assert error.code == code and error.kind == "invalid" and error.message
        assert isinstance(error, PaymentNotificationInvalid)
    outage = PaymentProviderError("timeout")
    assert outage.code == "payment_provider_unavailable" and outage.retryable and outage.message


# ---------------------------------------------------------------------- the cashier page


def test_the_cashier_page_renders_before_and_after_payment(provider, notify):
    start = create(provider, amount_fen=5)
    request = RequestFactory().get(f"/dev/pay/{start.prepay_id}/")
    html = render_to_string("h5/dev_pay.html", dev_pay_page_context(start.prepay_id), request)
    assert "深圳市住房保障机构（演示）" in html
    assert "公租房租赁保证金 福田区某小区 3-1201" in html
    assert "<small>¥</small>0.05" in html and "张*" in html
    assert "确认支付" in html and 'name="csrfmiddlewaretoken"' in html
    assert 'method="post"' in html

    outcome = dev_pay_confirm(prepay_id=start.prepay_id, now=NOW)
    html = render_to_string("h5/dev_pay.html", dev_pay_page_context(start.prepay_id), request)
    assert "支付成功" in html and outcome.transaction_id in html
    assert "确认支付" not in html and "未送达" not in html
    assert "out_trade_no=" + OUT_TRADE_NO in html


def test_the_cashier_shows_yuan_with_two_decimals(provider):
    start = create(provider)
    assert dev_pay_page_context(start.prepay_id)["order"].amount_yuan == "1234.50"
    assert dev_module.amount_yuan(100) == "1.00" and dev_module.amount_yuan(7) == "0.07"
