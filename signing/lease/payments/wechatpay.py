"""WeChat Pay API v3 (微信支付 APIv3), our side, on the `wechatpayv3` SDK.

The SDK does the protocol's cryptography and HTTP: the merchant's request signature (the
`Authorization: WECHATPAY2-SHA256-RSA2048 ...` header over method, path, timestamp, nonce and
body with the merchant's RSA key), the verification of every answer and notification with the
platform's key (the platform certificates it downloads from /v3/certificates and decrypts
with the APIv3 key, or the WeChat Pay public key and its id), and the AES-256-GCM decryption
of a notification's resource. This module adds what the SDK leaves to its user:

- the endpoint is configurable (PAYMENT["ENDPOINT"]; the SDK hard-codes
  https://api.mch.weixin.qq.com), so tests and the demo talk to a local fake server
  (signing/lease/payments/dev.py) through the same code;
- a notification is refused unless its headers are well formed, its timestamp within
  NOTIFY_MAX_AGE_SECONDS of our clock and its nonce never seen (the SDK checks only the
  signature), and its serial is one we know: an unknown serial makes us download the
  platform certificates again at most once a minute, so that a stranger's POST cannot make
  us call WeChat at will;
- every answer is validated field by field into PaymentNotice / RefundNotice, and the SDK's
  bare exceptions become PaymentProviderError (503, with WeChat's error code as `reason`).

Payments are Native (扫码支付): `create_order` returns the `code_url` the desktop shows as a
QR code, which the applicant scans with WeChat (guide 000: 使用手机微信扫描屏幕二维码 ... 完成押金
缴纳). JSAPI (paying inside WeChat's browser) is not offered: it needs the payer's openid from
an official account's OAuth, which this system does not have (docs/DECISIONS.md).
"""

from __future__ import annotations

import binascii
import json
import logging
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit
from zoneinfo import ZoneInfo

import requests
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from wechatpayv3 import WeChatPay, WeChatPayType
from wechatpayv3.core import Core
from wechatpayv3.utils import aes_decrypt

from core import jsonsafe
from core.webhooks import header_value
from signing.lease.payments.base import (
    PaymentNotice,
    PaymentNotificationInvalid,
    PaymentNotificationJunk,
    PaymentNotificationMalformed,
    PaymentNotificationReplayed,
    PaymentNotificationStale,
    PaymentProviderError,
    PaymentSignatureInvalid,
    PaymentStart,
    RefundNotice,
)

logger = logging.getLogger("anju.payments")

NAME = "wechatpay"
GATEWAY = "https://api.mch.weixin.qq.com"
HEADER_TIMESTAMP = "Wechatpay-Timestamp"
HEADER_NONCE = "Wechatpay-Nonce"
HEADER_SERIAL = "Wechatpay-Serial"
HEADER_SIGNATURE = "Wechatpay-Signature"
HEADER_SIGNATURE_TYPE = "Wechatpay-Signature-Type"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
RESOURCE_TYPE = "encrypt-resource"
ALGORITHM = "AEAD_AES_256_GCM"
EVENT_TRANSACTION_SUCCESS = "TRANSACTION.SUCCESS"
REFUND_EVENTS = frozenset({"REFUND.SUCCESS", "REFUND.ABNORMAL", "REFUND.CLOSED"})
TRADE_STATES = frozenset(
    {"SUCCESS", "REFUND", "NOTPAY", "CLOSED", "REVOKED", "USERPAYING", "PAYERROR"}
)
REFUND_STATES = frozenset({"SUCCESS", "PROCESSING", "CLOSED", "ABNORMAL"})
CURRENCY = "CNY"
TZ = ZoneInfo("Asia/Shanghai")
CERT_REFRESH_SECONDS = 60

OUT_TRADE_NO_RE = re.compile(r"[A-Za-z0-9_\-|*]{6,32}")  # WeChat: 6-32, [0-9A-Za-z_-|*]
OUT_REFUND_NO_RE = re.compile(r"[A-Za-z0-9_\-|*@]{1,64}")
TRANSACTION_ID_RE = re.compile(r"[0-9A-Za-z]{1,32}")
REFUND_ID_RE = re.compile(r"[0-9A-Za-z]{1,32}")
NONCE_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
SERIAL_RE = re.compile(r"[0-9A-Za-z_-]{1,64}")
CURRENCY_RE = re.compile(r"[A-Z]{3}")
MAX_DESCRIPTION = 127
MAX_PAYER_HINT = 32


# ---------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class WechatPayConfig:
    """What the SDK needs. Exactly one of the platform modes: certificates (downloaded and
    kept in `platform_cert_dir`) or the WeChat Pay public key with its id."""

    endpoint: str
    mchid: str
    appid: str
    merchant_key_pem: str
    merchant_serial: str
    api_v3_key: str
    platform_cert_dir: str | None = None
    public_key_pem: str | None = None
    public_key_id: str | None = None
    timeout_seconds: float = 10.0
    max_age_seconds: int = 300


def _read(path: object, what: str) -> str:
    if not path:
        raise ImproperlyConfigured(f'PAYMENT["{what}"] is required for WeChat Pay')
    try:
        return Path(str(path)).read_text()
    except OSError as exc:
        raise ImproperlyConfigured(f'PAYMENT["{what}"]: {exc}') from exc


def config_from_settings() -> WechatPayConfig:
    """The production adapter's configuration (settings.PAYMENT, from the environment)."""
    conf: dict[str, Any] = getattr(settings, "PAYMENT", {})
    api_v3_key = conf.get("API_V3_KEY") or ""
    if len(api_v3_key.encode()) != 32:
        raise ImproperlyConfigured('PAYMENT["API_V3_KEY"] must be 32 bytes')
    public_key_file = conf.get("PLATFORM_PUBLIC_KEY_FILE")
    return WechatPayConfig(
        endpoint=conf.get("ENDPOINT") or GATEWAY,
        mchid=conf["MCHID"],
        appid=conf["APPID"],
        merchant_key_pem=_read(conf.get("MERCHANT_KEY_FILE"), "MERCHANT_KEY_FILE"),
        merchant_serial=conf.get("MERCHANT_SERIAL") or "",
        api_v3_key=api_v3_key,
        platform_cert_dir=str(conf.get("PLATFORM_CERT_DIR") or "") or None,
        public_key_pem=_read(public_key_file, "PLATFORM_PUBLIC_KEY_FILE")
        if public_key_file
        else None,
        public_key_id=conf.get("PLATFORM_PUBLIC_KEY_ID") or None,
        timeout_seconds=float(conf.get("TIMEOUT_SECONDS", 10)),
        max_age_seconds=int(conf.get("NOTIFY_MAX_AGE_SECONDS", 300)),
    )


# ------------------------------------------------------------------------ the SDK client


class _Core(Core):
    """The SDK's core with our endpoint. Core.__init__ sets the fixed gateway and, in
    certificate mode, downloads the certificates at once; both go to `gateway` instead."""

    def __init__(self, *, gateway: str, **kwargs: Any) -> None:
        self._anju_gateway = gateway.rstrip("/")
        super().__init__(**kwargs)
        self._gate_way = self._anju_gateway

    def _init_certificates(self) -> None:
        self._gate_way = self._anju_gateway
        super()._init_certificates()


class _Client(WeChatPay):
    """wechatpayv3.WeChatPay built on `_Core` (its __init__ builds a Core of its own, which
    would call the real gateway before the endpoint could be changed)."""

    def __init__(self, config: WechatPayConfig) -> None:  # noqa: D107 - replaces the SDK's
        self._type = WeChatPayType.NATIVE
        self._mchid = config.mchid
        self._appid = config.appid
        self._notify_url = None
        self._partner_mode = False
        self._core = _Core(
            gateway=config.endpoint,
            mchid=config.mchid,
            cert_serial_no=config.merchant_serial,
            private_key=config.merchant_key_pem,
            apiv3_key=config.api_v3_key,
            cert_dir=config.platform_cert_dir,
            logger=None,
            proxy=_no_proxy(config.endpoint),
            timeout=config.timeout_seconds,
            public_key=config.public_key_pem,
            public_key_id=config.public_key_id,
        )

    @property
    def core(self) -> _Core:
        return self._core

    def knows_serial(self, serial: str) -> bool:
        """A Wechatpay-Serial we can verify: the public key's id, or a platform certificate
        downloaded (compared as numbers, as the SDK does: leading zeros may be dropped)."""
        if self.core._public_key_id and serial == self.core._public_key_id:
            return True
        try:
            number = int(serial, 16)
        except ValueError:
            return False
        return any(cert.serial_number == number for cert in self.core._certificates)


def _no_proxy(endpoint: str) -> dict[str, None] | None:
    """A local endpoint (the fake server) is never reached through a proxy from the
    environment; the real gateway follows the environment's proxy settings."""
    host = urlsplit(endpoint).hostname or ""
    return {"http": None, "https": None} if host in ("127.0.0.1", "localhost", "::1") else None


_clients: dict[WechatPayConfig, _Client] = {}
_clients_lock = threading.Lock()


def _client_for(config: WechatPayConfig) -> _Client:
    with _clients_lock:
        client = _clients.get(config)
    if client is not None:
        return client
    try:
        client = _Client(config)
    except (requests.RequestException, ValueError) as exc:
        raise PaymentProviderError(f"WeChat Pay unreachable: {type(exc).__name__}") from exc
    except Exception as exc:  # the SDK raises bare Exception (no certificate, bad key)
        raise PaymentProviderError(f"WeChat Pay client: {exc}", retryable=False) from exc
    with _clients_lock:
        return _clients.setdefault(config, client)


def clients_clear() -> None:
    """Forget the SDK clients (their downloaded certificates); tests rotate keys."""
    with _clients_lock:
        _clients.clear()


# ------------------------------------------------------------------------------ helpers


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(TZ).isoformat(timespec="seconds")


def parse_rfc3339(value: object) -> datetime | None:
    if not isinstance(value, str) or not 0 < len(value) <= 40 or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _absolute_http(url: str) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _malformed(message: str = "支付结果通知格式不正确") -> PaymentNotificationMalformed:
    return PaymentNotificationMalformed(message=message)


def _error_of(code: int, text: object) -> tuple[str, str]:
    """WeChat's error body {"code": "ORDERPAID", "message": "..."} -> (code, message)."""
    try:
        data = json.loads(text) if isinstance(text, str | bytes) and text else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    return str(data.get("code") or f"HTTP_{code}")[:64], str(data.get("message") or "")[:200]


def session_of(code_url: str) -> str:
    """A short id of a Native payment session, from its code_url: the `pr` parameter of
    weixin://wxpay/bizpayurl?pr=..., else the URL's last path segment (the fake cashier)."""
    parts = urlsplit(code_url)
    pr = parse_qs(parts.query).get("pr")
    if pr:
        return pr[0][:64]
    return parts.path.rstrip("/").rsplit("/", 1)[-1][:64]


# ------------------------------------------------------------------------- the provider


class WechatPayProvider:
    """WeChat Pay APIv3, Native payments (settings.PAYMENT["PROVIDER"] == "wechatpay").
    `clock` is what a notification's timestamp is checked against (tests pin it)."""

    name = NAME

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = timezone.now,
        config: WechatPayConfig | None = None,
    ) -> None:
        self.clock = clock
        self._config = config

    def config(self) -> WechatPayConfig:
        return self._config or config_from_settings()

    def client(self) -> _Client:
        return _client_for(self.config())

    def _call(self, what: str, call: Callable[[_Client], tuple[int, Any]]) -> tuple[int, Any]:
        try:
            return call(self.client())
        except requests.RequestException as exc:
            raise PaymentProviderError(f"WeChat Pay {what}: {type(exc).__name__}") from exc
        except PaymentProviderError:
            raise
        except Exception as exc:  # the SDK's bare Exception: a signature that did not verify
            raise PaymentProviderError(f"WeChat Pay {what}: {exc}") from exc

    @staticmethod
    def _refusal(what: str, code: int, text: object) -> PaymentProviderError:
        reason, message = _error_of(code, text)
        retryable = code >= 500 or code == 429 or reason in ("SYSTEM_ERROR", "FREQUENCY_LIMITED")
        return PaymentProviderError(
            f"WeChat Pay {what}: HTTP {code} {reason} {message}".strip(),
            retryable=retryable,
            reason=reason,
        )

    @staticmethod
    def _json(what: str, text: object) -> dict:
        try:
            data = jsonsafe.loads(text if isinstance(text, str | bytes) else b"")
        except (UnicodeDecodeError, ValueError) as exc:
            raise PaymentProviderError(f"WeChat Pay {what}: not JSON") from exc
        if not isinstance(data, dict):
            raise PaymentProviderError(f"WeChat Pay {what}: not an object")
        return data

    # -------------------------------------------------------------------- create_order

    def create_order(
        self,
        *,
        out_trade_no: str,
        description: str,
        amount_fen: int,
        notify_url: str,
        return_url: str,
        payer_hint: str,
        expires_at: datetime | None = None,
    ) -> PaymentStart:
        """Native 下单 (POST /v3/pay/transactions/native): the code_url to show as a QR code.
        `return_url` and `payer_hint` are not part of WeChat's Native order (the phone stays
        in WeChat); `expires_at` becomes `time_expire`, so WeChat refuses to take the money
        after the signing window."""
        self._check_order_args(
            out_trade_no=out_trade_no,
            description=description,
            amount_fen=amount_fen,
            notify_url=notify_url,
            return_url=return_url,
            payer_hint=payer_hint,
        )
        config = self.config()
        code, text = self._call(
            "order",
            lambda client: client.pay(
                description=description,
                out_trade_no=out_trade_no,
                amount={"total": amount_fen, "currency": CURRENCY},
                notify_url=notify_url,
                time_expire=rfc3339(expires_at) if expires_at else None,
                appid=config.appid,
                mchid=config.mchid,
                pay_type=WeChatPayType.NATIVE,
            ),
        )
        if code != 200:
            raise self._refusal("order", code, text)
        code_url = self._json("order", text).get("code_url")
        if not isinstance(code_url, str) or not 0 < len(code_url) <= 512:
            raise PaymentProviderError("WeChat Pay order: no code_url")
        return PaymentStart(pay_url=code_url, prepay_id=session_of(code_url), code_url=code_url)

    @staticmethod
    def _check_order_args(
        *,
        out_trade_no: str,
        description: str,
        amount_fen: int,
        notify_url: str,
        return_url: str,
        payer_hint: str,
    ) -> None:
        if not OUT_TRADE_NO_RE.fullmatch(out_trade_no or ""):
            raise ValueError("out_trade_no must be 6-32 characters of [A-Za-z0-9_-|*]")
        if not isinstance(description, str) or not 0 < len(description) <= MAX_DESCRIPTION:
            raise ValueError(f"description must be 1-{MAX_DESCRIPTION} characters")
        if not _is_int(amount_fen) or amount_fen <= 0:
            raise ValueError("amount_fen must be a positive integer")
        if not _absolute_http(notify_url) or urlsplit(notify_url).query:
            raise ValueError("notify_url must be an absolute http(s) URL without a query")
        if not _absolute_http(return_url):
            raise ValueError("return_url must be an absolute http(s) URL")
        if not isinstance(payer_hint, str) or len(payer_hint) > MAX_PAYER_HINT:
            raise ValueError(f"payer_hint must be at most {MAX_PAYER_HINT} characters")

    # ---------------------------------------------------------- query, close and refund

    def query_order(self, *, out_trade_no: str) -> PaymentNotice | None:
        """GET /v3/pay/transactions/out-trade-no/{}: the order as WeChat knows it; None for
        an order WeChat does not have (ORDER_NOT_EXIST)."""
        if not isinstance(out_trade_no, str) or not OUT_TRADE_NO_RE.fullmatch(out_trade_no):
            return None
        code, text = self._call("query", lambda c: c.query(out_trade_no=out_trade_no))
        if code == 404:
            return None
        if code != 200:
            raise self._refusal("query", code, text)
        try:
            return self._transaction_notice(self._json("query", text), notification_id="")
        except PaymentNotificationMalformed as exc:
            raise PaymentProviderError("WeChat Pay query: unexpected answer") from exc

    def close_order(self, *, out_trade_no: str) -> None:
        """POST /v3/pay/transactions/out-trade-no/{}/close (204). An order WeChat never had
        is closed already; ORDERPAID is raised (reason "ORDERPAID") for the caller to apply."""
        code, text = self._call("close", lambda c: c.close(out_trade_no=out_trade_no))
        if code in (200, 204):
            return
        reason, _ = _error_of(code, text)
        if code == 404 or reason == "ORDER_NOT_EXIST":
            return
        raise self._refusal("close", code, text)

    def refund_create(
        self,
        *,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str,
        notify_url: str,
    ) -> RefundNotice:
        """POST /v3/refund/domestic/refunds: usually answers PROCESSING; the outcome comes
        as a REFUND.* notification or from `refund_query`."""
        if not OUT_REFUND_NO_RE.fullmatch(out_refund_no or ""):
            raise ValueError("out_refund_no must be 1-64 characters of [A-Za-z0-9_-|*@]")
        if not (_is_int(refund_fen) and _is_int(total_fen) and 0 < refund_fen <= total_fen):
            raise ValueError("0 < refund_fen <= total_fen")
        if not _absolute_http(notify_url):
            raise ValueError("notify_url must be an absolute http(s) URL")
        code, text = self._call(
            "refund",
            lambda c: c.refund(
                out_refund_no=out_refund_no,
                amount={"refund": refund_fen, "total": total_fen, "currency": CURRENCY},
                out_trade_no=out_trade_no,
                reason=reason[:80] or None,
                notify_url=notify_url,
            ),
        )
        if code != 200:
            raise self._refusal("refund", code, text)
        try:
            return self._refund_notice(self._json("refund", text), notification_id="")
        except PaymentNotificationMalformed as exc:
            raise PaymentProviderError("WeChat Pay refund: unexpected answer") from exc

    def refund_query(self, *, out_refund_no: str) -> RefundNotice | None:
        """GET /v3/refund/domestic/refunds/{}; None when WeChat has no such refund."""
        if not isinstance(out_refund_no, str) or not OUT_REFUND_NO_RE.fullmatch(out_refund_no):
            return None
        code, text = self._call(
            "refund query", lambda c: c.query_refund(out_refund_no=quote(out_refund_no))
        )
        if code == 404:
            return None
        if code != 200:
            raise self._refusal("refund query", code, text)
        try:
            return self._refund_notice(self._json("refund query", text), notification_id="")
        except PaymentNotificationMalformed as exc:
            raise PaymentProviderError("WeChat Pay refund query: unexpected answer") from exc

    # --------------------------------------------------------------- parse_notification

    def parse_notification(
        self, *, body: bytes, headers: Mapping[str, str]
    ) -> PaymentNotice | RefundNotice:
        """Verify a notification (TRANSACTION.SUCCESS or REFUND.*) and say what it states.
        Order: headers well formed (else junk, not recorded), fresh, a known serial, the
        signature (the SDK's verification), the nonce never seen (remembered only once the
        signature holds, so forgeries cannot use up nonces), then the body and its resource
        (decrypted by the SDK with the APIv3 key), then the merchant."""
        timestamp = header_value(headers, HEADER_TIMESTAMP)
        nonce = header_value(headers, HEADER_NONCE)
        serial = header_value(headers, HEADER_SERIAL)
        signature = header_value(headers, HEADER_SIGNATURE)
        signature_type = header_value(headers, HEADER_SIGNATURE_TYPE)
        if not (timestamp and nonce and serial and signature):
            raise PaymentNotificationJunk(message="支付结果通知缺少签名")
        if not (
            timestamp.isascii()
            and timestamp.isdigit()
            and len(timestamp) <= 12
            and NONCE_RE.fullmatch(nonce)
            and SERIAL_RE.fullmatch(serial)
            and len(signature) <= 1024
            and signature_type in ("", SIGNATURE_TYPE)
        ):
            raise PaymentNotificationJunk(message="支付结果通知签名格式不正确")
        config = self.config()
        if abs(int(self.clock().timestamp()) - int(timestamp)) > config.max_age_seconds:
            raise PaymentNotificationStale()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _malformed() from exc
        client = _client_for(config)
        if not self._serial_known(client, serial):
            raise PaymentNotificationInvalid(message="支付结果通知的平台证书未知")
        sdk_headers = {
            HEADER_TIMESTAMP: timestamp,
            HEADER_NONCE: nonce,
            HEADER_SERIAL: serial,
            HEADER_SIGNATURE: signature,
            HEADER_SIGNATURE_TYPE: SIGNATURE_TYPE,
        }
        try:
            verified = client.core._verify_signature(sdk_headers, text)
        except (ValueError, UnicodeError):
            verified = False
        if not verified:
            raise PaymentSignatureInvalid()
        if not cache.add(_nonce_key(config.mchid, nonce), 1, 2 * config.max_age_seconds + 60):
            raise PaymentNotificationReplayed()
        return self._notice(text, config)

    def _serial_known(self, client: _Client, serial: str) -> bool:
        if client.knows_serial(serial):
            return True
        if client.core._public_key_id and not client.core._certificates:
            return False  # public key mode: its id is the only serial
        # WeChat may have rotated its platform certificate: download them again, at most
        # once a minute per merchant (a stranger's POST must not make us call WeChat at will).
        if cache.add(f"pay:wx:certs:{client._mchid}", 1, CERT_REFRESH_SECONDS):
            try:
                client.core._update_certificates()
            except Exception as exc:  # noqa: BLE001 - the SDK raises bare Exception
                logger.warning("platform certificate refresh failed: %s", type(exc).__name__)
        return client.knows_serial(serial)

    def _notice(self, text: str, config: WechatPayConfig) -> PaymentNotice | RefundNotice:
        try:
            envelope = jsonsafe.loads(text)
        except ValueError as exc:
            raise _malformed() from exc
        if not isinstance(envelope, dict):
            raise _malformed()
        event_id, resource = envelope.get("id"), envelope.get("resource")
        event_type = envelope.get("event_type")
        if not (
            isinstance(event_id, str)
            and 0 < len(event_id) <= 64
            and envelope.get("resource_type") == RESOURCE_TYPE
            and isinstance(resource, dict)
        ):
            raise _malformed()
        if event_type == EVENT_TRANSACTION_SUCCESS:
            data = self._decrypt(resource, original_type="transaction", config=config)
            if data.get("mchid") != config.mchid or data.get("appid") != config.appid:
                raise PaymentNotificationInvalid(message="支付结果通知不属于本商户")
            notice = self._transaction_notice(data, notification_id=event_id)
            if notice.trade_state != "SUCCESS" or notice.success_time is None:
                raise _malformed("支付结果通知内容不正确")
            return notice
        if event_type in REFUND_EVENTS:
            data = self._decrypt(resource, original_type="refund", config=config)
            if data.get("mchid") != config.mchid:
                raise PaymentNotificationInvalid(message="退款结果通知不属于本商户")
            refund = self._refund_notice(data, notification_id=event_id, notified=True)
            if event_type == "REFUND.SUCCESS" and (
                refund.refund_status != "SUCCESS" or refund.success_time is None
            ):
                raise _malformed("退款结果通知内容不正确")
            return refund
        raise _malformed("支付结果通知的事件类型不受支持")

    def _decrypt(self, resource: dict, *, original_type: str, config: WechatPayConfig) -> dict:
        ciphertext = resource.get("ciphertext")
        nonce = resource.get("nonce")
        associated_data = resource.get("associated_data", "")
        if not (
            resource.get("algorithm") == ALGORITHM
            and resource.get("original_type") == original_type
            and isinstance(ciphertext, str)
            and 0 < len(ciphertext) <= 65536
            and isinstance(nonce, str)
            and 0 < len(nonce) <= 64
            and isinstance(associated_data, str)
            and len(associated_data) <= 256
        ):
            raise _malformed()
        try:
            plaintext = aes_decrypt(
                nonce=nonce,
                ciphertext=ciphertext,
                associated_data=associated_data,
                apiv3_key=config.api_v3_key,
            )
            if plaintext is None:  # the SDK's answer to a failed tag: wrong key, tampered
                raise _malformed("支付结果通知无法解密")
            data = jsonsafe.loads(plaintext)
        except (binascii.Error, ValueError, UnicodeError) as exc:
            raise _malformed("支付结果通知无法解密") from exc
        if not isinstance(data, dict):
            raise _malformed()
        return data

    def _transaction_notice(self, transaction: dict, *, notification_id: str) -> PaymentNotice:
        out_trade_no = transaction.get("out_trade_no")
        transaction_id = transaction.get("transaction_id", "")
        trade_state = transaction.get("trade_state")
        amount = transaction.get("amount")
        mchid, appid = transaction.get("mchid"), transaction.get("appid")
        paid = trade_state == "SUCCESS" or bool(notification_id)
        if not (
            isinstance(out_trade_no, str)
            and OUT_TRADE_NO_RE.fullmatch(out_trade_no)
            and isinstance(transaction_id, str)
            and (TRANSACTION_ID_RE.fullmatch(transaction_id) or (not paid and not transaction_id))
            and trade_state in TRADE_STATES
            and isinstance(mchid, str)
            and isinstance(appid, str)
            and isinstance(amount, dict)
            and _is_int(amount.get("total"))
            and amount["total"] >= 0
            and isinstance(amount.get("currency"), str)
            and CURRENCY_RE.fullmatch(amount["currency"])
        ):
            raise _malformed("支付结果通知内容不正确")
        success_time = None
        if "success_time" in transaction:
            success_time = parse_rfc3339(transaction["success_time"])
            if success_time is None:
                raise _malformed("支付结果通知内容不正确")
        return PaymentNotice(
            provider=self.name,
            notification_id=notification_id,
            out_trade_no=out_trade_no,
            transaction_id=transaction_id,
            trade_state=trade_state,
            amount_fen=amount["total"],
            currency=amount["currency"],
            mchid=mchid,
            appid=appid,
            success_time=success_time,
        )

    def _refund_notice(
        self, data: dict, *, notification_id: str, notified: bool = False
    ) -> RefundNotice:
        # A notification names the state `refund_status`; an API answer names it `status`.
        state = data.get("refund_status" if notified else "status")
        amount = data.get("amount")
        mchid = data.get("mchid", "")
        if not (
            isinstance(data.get("out_trade_no"), str)
            and OUT_TRADE_NO_RE.fullmatch(data["out_trade_no"])
            and isinstance(data.get("out_refund_no"), str)
            and OUT_REFUND_NO_RE.fullmatch(data["out_refund_no"])
            and isinstance(data.get("refund_id"), str)
            and REFUND_ID_RE.fullmatch(data["refund_id"])
            and isinstance(data.get("transaction_id"), str)
            and TRANSACTION_ID_RE.fullmatch(data["transaction_id"])
            and state in REFUND_STATES
            and isinstance(mchid, str)
            and isinstance(amount, dict)
            and _is_int(amount.get("refund"))
            and _is_int(amount.get("total"))
            and 0 < amount["refund"] <= amount["total"]
        ):
            raise _malformed("退款结果通知内容不正确")
        success_time = None
        if data.get("success_time"):
            success_time = parse_rfc3339(data["success_time"])
            if success_time is None:
                raise _malformed("退款结果通知内容不正确")
        return RefundNotice(
            provider=self.name,
            notification_id=notification_id,
            out_trade_no=data["out_trade_no"],
            transaction_id=data["transaction_id"],
            out_refund_no=data["out_refund_no"],
            refund_id=data["refund_id"],
            refund_status=state,
            refund_fen=amount["refund"],
            total_fen=amount["total"],
            mchid=mchid,
            success_time=success_time,
        )


def _nonce_key(mchid: str, nonce: str) -> str:
    return f"pay:wx:nonce:{mchid}:{nonce}"
