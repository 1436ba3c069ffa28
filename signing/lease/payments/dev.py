"""The development payment provider: a local fake WeChat Pay API v3 server and its cashier.

Since issue 15 our side of the protocol is the WeChat Pay adapter (wechatpay.py, on the
`wechatpayv3` SDK); this module is only the provider's side, so that the adapter is exercised
end to end in tests and in `make demo` without a merchant account:

- a fake of the provider's HTTP API (`fake_dispatch`, served on 127.0.0.1 by
  `fake_server_url()` in a daemon thread, or any port in PAYMENT["DEV_SERVER_PORT"]): Native
  order (returns a code_url), order query, close, refund, refund query and the platform
  certificate download. Every request's merchant signature is verified with the development
  merchant certificate; every answer is signed with the platform key, as the SDK checks.
- the cashier that the code_url opens (`/dev/pay/<prepay_id>/`, DEBUG-only, h5/dev_views.py;
  at SITE_URL, so the demo works on any port): 「确认支付」 (`dev_pay_confirm`) pays the
  order once and delivers the signed, encrypted TRANSACTION.SUCCESS notification to the
  order's notify_url (redelivered, signed afresh, on every confirmation), then sends the phone
  back to our return page. A closed or expired order cannot be paid.
- refunds finish with `dev_refund_settle` (SUCCESS and a REFUND.SUCCESS notification), a
  moment after the request unless PAYMENT["DEV_REFUND_AUTO_SETTLE"] is off (tests).
- `DevPayProvider` (name "dev") is the adapter itself configured for this fake.

Keys (test-only, generated at first use, never committed): the platform's RSA-2048 key and
self-signed certificate in PAYMENT["PLATFORM_KEY_DIR"] (0600, under a file lock so two
processes make one key), the merchant's in its `merchant/` subdirectory. In production the
platform key is WeChat's and the merchant key ours. The APIv3 key is PAYMENT["API_V3_KEY"]
(32 characters) or one derived from SECRET_KEY.

The fake's orders live in the Django cache, as before: they are the provider's data, not
ours; they expire by themselves; and every process (and every process's fake server) shares
them.

The notification, exactly as WeChat Pay v3 shapes it:

    POST <notify_url>
    Wechatpay-Timestamp:      unix seconds when signed
    Wechatpay-Nonce:          32 random characters, new for every delivery
    Wechatpay-Serial:         serial of the platform certificate (40 hex digits)
    Wechatpay-Signature:      base64(RSA-SHA256 PKCS#1 v1.5 over
                              f"{timestamp}\\n{nonce}\\n{body}\\n", platform private key)
    Wechatpay-Signature-Type: WECHATPAY2-SHA256-RSA2048

    {"id": "<uuid>", "create_time": "2026-01-21T10:00:00+08:00",
     "resource_type": "encrypt-resource", "event_type": "TRANSACTION.SUCCESS",
     "summary": "支付成功",
     "resource": {"original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                  "ciphertext": base64(AES-256-GCM(APIv3 key, nonce, associated_data)),
                  "associated_data": "transaction", "nonce": "<12 characters>"}}
"""

from __future__ import annotations

import base64
import json
import logging
import re
import secrets
import string
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.crypto import salted_hmac

from core.urls import absolute_url
from core.webhooks import webhook_post
from signing.agreements.ca import _locked, _write_atomic
from signing.lease.payments.base import (
    PaymentStart,
)
from signing.lease.payments.wechatpay import (
    WechatPayConfig,
    WechatPayProvider,
    parse_rfc3339,
    rfc3339,
)

logger = logging.getLogger("anju.payments")

NAME = "dev"
HEADER_TIMESTAMP = "Wechatpay-Timestamp"
HEADER_NONCE = "Wechatpay-Nonce"
HEADER_SERIAL = "Wechatpay-Serial"
HEADER_SIGNATURE = "Wechatpay-Signature"
HEADER_SIGNATURE_TYPE = "Wechatpay-Signature-Type"
SIGNATURE_TYPE = "WECHATPAY2-SHA256-RSA2048"
EVENT_TRANSACTION_SUCCESS = "TRANSACTION.SUCCESS"
RESOURCE_TYPE = "encrypt-resource"
ALGORITHM = "AEAD_AES_256_GCM"
ORIGINAL_TYPE = "transaction"
ASSOCIATED_DATA = "transaction"
TRADE_STATES = frozenset(
    {"SUCCESS", "REFUND", "NOTPAY", "CLOSED", "REVOKED", "USERPAYING", "PAYERROR"}
)
CURRENCY = "CNY"
ORDER_TTL_SECONDS = 2 * 60 * 60  # an unpaid session (WeChat's prepay id lives 2 hours)
PAID_TTL_SECONDS = 24 * 60 * 60  # a paid order stays queryable for a day
CALLBACK_TIMEOUT_SECONDS = 5
PLATFORM_KEY_FILE = "platform.key.pem"
PLATFORM_CERT_FILE = "platform.crt.pem"
PLATFORM_CERT_YEARS = 5
TZ = ZoneInfo("Asia/Shanghai")

DEFAULTS: dict[str, Any] = {
    "PROVIDER": "dev",
    "MCHID": "1900000001",
    "APPID": "wx_anju_dev",
    "MERCHANT_NAME": "深圳市住房保障机构（演示）",
    "API_V3_KEY": "",  # empty: derived from SECRET_KEY
    "PLATFORM_KEY_DIR": None,  # None: VAR_DIR / "pay"
    "NOTIFY_MAX_AGE_SECONDS": 300,
}

_ALNUM = string.ascii_letters + string.digits
_PREPAY_RE = re.compile(r"wx\d{14}[0-9a-f]{20}")
_OUT_TRADE_NO_RE = re.compile(r"[A-Za-z0-9_\-|*]{6,32}")  # WeChat: 6-32, [0-9A-Za-z_-|*]
_TRANSACTION_ID_RE = re.compile(r"[0-9A-Za-z]{1,32}")
_NONCE_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")
_SERIAL_RE = re.compile(r"[0-9A-Za-z_-]{1,64}")
_CURRENCY_RE = re.compile(r"[A-Z]{3}")
MAX_DESCRIPTION = 127
MAX_PAYER_HINT = 32

# Tests route the provider's outgoing notification through an httpx.MockTransport; None is
# the network (httpx's default transport).
callback_transport: httpx.BaseTransport | None = None


# ---------------------------------------------------------------------- configuration


def payment_settings() -> dict[str, Any]:
    """settings.PAYMENT over DEFAULTS (so a missing or partial setting still works)."""
    conf = {**DEFAULTS, **getattr(settings, "PAYMENT", {})}
    if not conf["PLATFORM_KEY_DIR"]:
        conf["PLATFORM_KEY_DIR"] = Path(settings.VAR_DIR) / "pay"
    return conf


def api_v3_key() -> bytes:
    """The 32-byte APIv3 key (AES-256-GCM): PAYMENT["API_V3_KEY"] (32 ASCII characters, as
    WeChat issues them), or 32 hex characters derived from SECRET_KEY (stable across
    restarts, distinct from every other use of the key)."""
    configured = payment_settings()["API_V3_KEY"]
    if configured:
        key = configured.encode() if isinstance(configured, str) else bytes(configured)
        if len(key) != 32:
            raise ImproperlyConfigured('PAYMENT["API_V3_KEY"] must be 32 bytes')
        return key
    digest = salted_hmac("anju.payments.dev", "api-v3-key", algorithm="sha256").hexdigest()
    return digest[:32].encode()


def _max_age() -> int:
    return int(payment_settings()["NOTIFY_MAX_AGE_SECONDS"])


# ------------------------------------------------------------------ the platform key pair


@dataclass(frozen=True)
class PlatformIdentity:
    """The platform key pair: the provider's private key signs notifications; the
    certificate (what a merchant downloads from WeChat) verifies them."""

    directory: Path
    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    @property
    def serial(self) -> str:
        return certificate_serial(self.cert)


def certificate_serial(cert: x509.Certificate) -> str:
    """A certificate's serial as WeChat writes it in Wechatpay-Serial: 40 uppercase hex."""
    return f"{cert.serial_number:040X}"


def _platform_paths(directory: Path) -> tuple[Path, Path]:
    return directory / PLATFORM_KEY_FILE, directory / PLATFORM_CERT_FILE


def _platform_create(
    *, now: datetime, common_name: str = "Anju dev payment platform"
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "开发环境模拟支付平台"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        # Valid from 2000: tests freeze clocks at other dates, and the SDK drops a platform
        # certificate outside its validity. Development keys only.
        .not_valid_before(datetime(2000, 1, 1, tzinfo=TZ))
        .not_valid_after(now + timedelta(days=365 * PLATFORM_CERT_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def dev_platform_ensure(*, directory: Path | None = None, now: datetime | None = None) -> bool:
    """Create the development platform key (0600) and certificate unless both exist; True
    when created. Holds an exclusive file lock on the directory meanwhile, so two processes
    starting at once make one key, not two."""
    directory = Path(directory or payment_settings()["PLATFORM_KEY_DIR"])
    key_path, cert_path = _platform_paths(directory)
    with _locked(directory):
        if key_path.exists() and cert_path.exists():
            return False
        key, cert = _platform_create(now=now or timezone.now())
        pem_key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_atomic(key_path, pem_key, mode=0o600)
        _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    _identity_cached.cache_clear()
    return True


def _fingerprint(directory: Path) -> tuple[int, ...]:
    return tuple(p.stat().st_mtime_ns for p in _platform_paths(directory))


@lru_cache(maxsize=8)
def _identity_cached(directory: Path, fingerprint: tuple[int, ...]) -> PlatformIdentity:
    del fingerprint  # part of the cache key only: replaced files are read again
    key_path, cert_path = _platform_paths(directory)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size != 2048:
        raise ImproperlyConfigured(f"{key_path}: expected an RSA-2048 private key")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    if cert.public_key() != key.public_key():
        raise ImproperlyConfigured(f"{cert_path} does not belong to {key_path}")
    return PlatformIdentity(directory=directory, key=key, cert=cert)


def platform_identity(*, directory: Path | None = None) -> PlatformIdentity:
    """The platform key and certificate (loaded once per process until a file changes;
    created on first use)."""
    directory = Path(directory or payment_settings()["PLATFORM_KEY_DIR"])
    try:
        fingerprint = _fingerprint(directory)
    except FileNotFoundError:
        dev_platform_ensure(directory=directory)
        fingerprint = _fingerprint(directory)
    return _identity_cached(directory, fingerprint)


# ------------------------------------------------------------------------------ helpers


def _trade_key(out_trade_no: str) -> str:
    return f"pay:dev:trade:{out_trade_no}"


def _prepay_key(prepay_id: str) -> str:
    return f"pay:dev:prepay:{prepay_id}"


def _paid_key(out_trade_no: str) -> str:
    return f"pay:dev:paid:{out_trade_no}"


def _delivery_key(out_trade_no: str) -> str:
    return f"pay:dev:delivery:{out_trade_no}"


def _nonce_key(nonce: str) -> str:
    return f"pay:dev:nonce:{nonce}"


def _random_text(length: int, alphabet: str = _ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _with_out_trade_no(url: str, out_trade_no: str) -> str:
    parts = urlsplit(url)
    query = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "out_trade_no"
    ]
    query.append(("out_trade_no", out_trade_no))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _absolute_http(url: str) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _prepay_id(now: datetime) -> str:
    return f"wx{now.astimezone(TZ):%Y%m%d%H%M%S}{secrets.token_hex(10)}"


def _transaction_id(now: datetime) -> str:
    """28 digits, like WeChat's "4200000985202103031441826014"."""
    return f"42000{secrets.randbelow(10**5):05d}{now.astimezone(TZ):%Y%m%d}" + (
        f"{secrets.randbelow(10**10):010d}"
    )


def _openid(*, appid: str, payer: str) -> str:
    """A stable per-payer openid (28 characters starting with "o", like WeChat's)."""
    digest = salted_hmac("anju.payments.dev", f"openid:{appid}:{payer}", algorithm="sha256")
    return "o" + base64.urlsafe_b64encode(digest.digest()).decode()[:27]


def amount_yuan(amount_fen: int) -> str:
    """12345 -> "123.45"."""
    return f"{amount_fen // 100}.{amount_fen % 100:02d}"


# ------------------------------------------------------------- the provider's notification


def dev_signature(*, key: rsa.RSAPrivateKey, timestamp: str, nonce: str, body: bytes) -> str:
    """WECHATPAY2-SHA256-RSA2048: base64(RSA-SHA256 PKCS#1 v1.5 over
    "{timestamp}\\n{nonce}\\n{body}\\n")."""
    message = f"{timestamp}\n{nonce}\n".encode() + body + b"\n"
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def dev_signed_headers(
    *,
    body: bytes,
    timestamp: int,
    nonce: str | None = None,
    sign_with: rsa.RSAPrivateKey | None = None,
) -> dict[str, str]:
    """The headers the provider sends with `body`, signed at `timestamp` with the platform
    key (or `sign_with`, to forge one). The serial is always the platform certificate's."""
    identity = platform_identity()
    nonce = nonce or _random_text(32, string.ascii_uppercase + string.digits)
    stamp = str(timestamp)
    return {
        HEADER_TIMESTAMP: stamp,
        HEADER_NONCE: nonce,
        HEADER_SERIAL: identity.serial,
        HEADER_SIGNATURE: dev_signature(
            key=sign_with or identity.key, timestamp=stamp, nonce=nonce, body=body
        ),
        HEADER_SIGNATURE_TYPE: SIGNATURE_TYPE,
    }


def dev_encrypt_resource(
    plaintext: bytes, *, api_key: bytes | None = None, nonce: str | None = None
) -> dict[str, str]:
    """The notification's `resource`: AEAD_AES_256_GCM with the APIv3 key."""
    nonce = nonce or _random_text(12)
    ciphertext = AESGCM(api_key or api_v3_key()).encrypt(
        nonce.encode(), plaintext, ASSOCIATED_DATA.encode()
    )
    return {
        "original_type": ORIGINAL_TYPE,
        "algorithm": ALGORITHM,
        "ciphertext": base64.b64encode(ciphertext).decode(),
        "associated_data": ASSOCIATED_DATA,
        "nonce": nonce,
    }


def dev_notification(
    *,
    out_trade_no: str,
    transaction_id: str,
    amount_fen: int,
    currency: str = CURRENCY,
    mchid: str | None = None,
    appid: str | None = None,
    now: datetime,
    nonce: str | None = None,
    sign_with: rsa.RSAPrivateKey | None = None,
    api_v3_key: bytes | None = None,
    openid: str | None = None,
    success_time: datetime | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A TRANSACTION.SUCCESS notification as the provider sends it at `now`: the body and
    the signed headers. `nonce` is the Wechatpay-Nonce header; `sign_with` another RSA key
    (a forgery); `api_v3_key` another key to encrypt the resource with; `success_time`
    defaults to `now`. Tests keep the pair to replay it byte for byte."""
    conf = payment_settings()
    mchid = conf["MCHID"] if mchid is None else mchid
    appid = conf["APPID"] if appid is None else appid
    transaction = {
        "mchid": mchid,
        "appid": appid,
        "out_trade_no": out_trade_no,
        "transaction_id": transaction_id,
        "trade_type": "NATIVE",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": rfc3339(success_time or now),
        "payer": {"openid": openid or _openid(appid=appid, payer=out_trade_no)},
        "amount": {
            "total": amount_fen,
            "payer_total": amount_fen,
            "currency": currency,
            "payer_currency": currency,
        },
    }
    plaintext = json.dumps(transaction, ensure_ascii=False, separators=(",", ":")).encode()
    envelope = {
        "id": str(uuid.uuid4()),
        "create_time": rfc3339(now),
        "resource_type": RESOURCE_TYPE,
        "event_type": EVENT_TRANSACTION_SUCCESS,
        "summary": "支付成功",
        "resource": dev_encrypt_resource(plaintext, api_key=api_v3_key),
    }
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    headers = dev_signed_headers(
        body=body, timestamp=int(now.timestamp()), nonce=nonce, sign_with=sign_with
    )
    return body, headers


# ---------------------------------------------------------------- the provider's cashier


@dataclass(frozen=True)
class DevPayOrder:
    """What the cashier page shows about one payment session."""

    prepay_id: str
    out_trade_no: str
    merchant_name: str
    description: str
    amount_fen: int
    payer_hint: str
    return_url: str  # with ?out_trade_no= appended
    transaction_id: str  # "" until paid
    success_time: datetime | None
    delivered: bool | None  # None until a notification was attempted

    @property
    def paid(self) -> bool:
        return bool(self.transaction_id)

    @property
    def amount_yuan(self) -> str:
        return amount_yuan(self.amount_fen)


def _order_by_prepay(prepay_id: str) -> dict | None:
    if not _PREPAY_RE.fullmatch(prepay_id or ""):
        return None
    out_trade_no = cache.get(_prepay_key(prepay_id))
    if out_trade_no is None:
        return None
    order = cache.get(_trade_key(out_trade_no))
    if order is None or order["prepay_id"] != prepay_id:
        return None
    paid = cache.get(_paid_key(out_trade_no)) is not None
    expire = order.get("time_expire")
    if not paid and (
        dev_order_closed(out_trade_no)
        or (expire and timezone.now() >= datetime.fromisoformat(expire))
    ):
        return None  # closed, or past its time_expire: WeChat takes no money for it
    return order


def dev_pay_page_context(prepay_id: str) -> dict | None:
    """The cashier page's template context ({"order": DevPayOrder}), or None if the session
    is unknown or expired."""
    order = _order_by_prepay(prepay_id)
    if order is None:
        return None
    payment = cache.get(_paid_key(order["out_trade_no"]))
    return {
        "order": DevPayOrder(
            prepay_id=prepay_id,
            out_trade_no=order["out_trade_no"],
            merchant_name=order["merchant_name"],
            description=order["description"],
            amount_fen=order["amount_fen"],
            payer_hint=order["payer_hint"],
            return_url=_with_out_trade_no(order["return_url"], order["out_trade_no"]),
            transaction_id=payment["transaction_id"] if payment else "",
            success_time=datetime.fromisoformat(payment["success_time"]) if payment else None,
            delivered=cache.get(_delivery_key(order["out_trade_no"])),
        )
    }


@dataclass(frozen=True)
class DevPayOutcome:
    return_url: str  # where the phone goes next: return_url?out_trade_no=<ours>
    transaction_id: str  # the payment that stuck (the first confirmation's)
    delivered: bool  # whether our notify_url answered 2xx


def dev_pay_confirm(*, prepay_id: str, now: datetime | None = None) -> DevPayOutcome | None:
    """「确认支付」: pay the order (only the first confirmation pays; later ones keep its
    transaction id), deliver the signed notification to the notify_url server to server, and
    say where the phone goes. None if the session is unknown or expired."""
    now = now or timezone.now()
    order = _order_by_prepay(prepay_id)
    if order is None:
        return None
    out_trade_no = order["out_trade_no"]
    payment = {
        "transaction_id": _transaction_id(now),
        "success_time": rfc3339(now),
        "openid": _openid(appid=order["appid"], payer=order["payer_hint"] or out_trade_no),
    }
    if cache.add(_paid_key(out_trade_no), payment, PAID_TTL_SECONDS):
        # A paid order outlives the unpaid session, so that it can still be queried.
        cache.touch(_trade_key(out_trade_no), PAID_TTL_SECONDS)
        cache.touch(_prepay_key(prepay_id), PAID_TTL_SECONDS)
    else:
        payment = cache.get(_paid_key(out_trade_no)) or payment
    body, headers = dev_notification(
        out_trade_no=out_trade_no,
        transaction_id=payment["transaction_id"],
        amount_fen=order["amount_fen"],
        currency=order["currency"],
        mchid=order["mchid"],
        appid=order["appid"],
        now=now,
        openid=payment["openid"],
        success_time=datetime.fromisoformat(payment["success_time"]),
    )
    delivered = _deliver(order["notify_url"], body, headers)
    cache.set(_delivery_key(out_trade_no), delivered, PAID_TTL_SECONDS)
    return DevPayOutcome(
        return_url=_with_out_trade_no(order["return_url"], out_trade_no),
        transaction_id=payment["transaction_id"],
        delivered=delivered,
    )


def _deliver(notify_url: str, body: bytes, headers: dict[str, str]) -> bool:
    return webhook_post(
        url=notify_url,
        body=body,
        headers=headers,
        transport=callback_transport,
        timeout=CALLBACK_TIMEOUT_SECONDS,
        what="dev payment notification",
    )


def dev_order_closed(out_trade_no: str) -> bool:
    return bool(cache.get(_closed_key(out_trade_no)))


def _closed_key(out_trade_no: str) -> str:
    return f"pay:dev:closed:{out_trade_no}"


def _extras_key(out_trade_no: str) -> str:
    return f"pay:dev:extras:{out_trade_no}"


def _refund_key(out_refund_no: str) -> str:
    return f"pay:dev:refund:{out_refund_no}"


def _refunds_of_key(out_trade_no: str) -> str:
    return f"pay:dev:refunds-of:{out_trade_no}"


# ------------------------------------------------------- the fake WeChat Pay API v3 server
#
# The provider's HTTP API as WeChat Pay serves it at https://api.mch.weixin.qq.com, over the
# same cache state as the cashier above: every request must carry the merchant's
# `Authorization: WECHATPAY2-SHA256-RSA2048 mchid=...,nonce_str=...,signature=...,
# timestamp=...,serial_no=...` signed with the merchant key (its certificate is what the
# merchant uploaded to WeChat; here `merchant_identity()`), and every answer is signed with
# the platform key in the Wechatpay-* headers, as the SDK checks.

MERCHANT_DIR = "merchant"
REQUEST_MAX_AGE_SECONDS = 300
REFUND_TTL_SECONDS = 24 * 60 * 60
_AUTH_RE = re.compile(r'(\w+)="([^"]*)"')


def merchant_identity() -> PlatformIdentity:
    """The development merchant's API key pair (商户API证书), generated at first use beside
    the platform key (a test-only key: never a real merchant's)."""
    return platform_identity(directory=Path(payment_settings()["PLATFORM_KEY_DIR"]) / MERCHANT_DIR)


def _pem_key(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _error(status: int, code: str, message: str) -> tuple[int, dict | None]:
    return status, {"code": code, "message": message}


def _transaction_json(order: dict) -> dict:
    """GET /v3/pay/transactions/out-trade-no/{}: the order as the provider knows it."""
    out_trade_no = order["out_trade_no"]
    payment = cache.get(_paid_key(out_trade_no))
    data: dict[str, Any] = {
        "appid": order["appid"],
        "mchid": order["mchid"],
        "out_trade_no": out_trade_no,
        "trade_type": "NATIVE",
        "attach": "",
        "amount": {"total": order["amount_fen"], "currency": order["currency"]},
    }
    if payment:
        refunded = cache.get(_refunds_of_key(out_trade_no)) or []
        data.update(
            {
                "transaction_id": payment["transaction_id"],
                "trade_state": "REFUND" if refunded else "SUCCESS",
                "trade_state_desc": "转入退款" if refunded else "支付成功",
                "bank_type": "OTHERS",
                "success_time": payment["success_time"],
                "payer": {"openid": payment["openid"]},
            }
        )
        data["amount"].update(
            {"payer_total": order["amount_fen"], "payer_currency": order["currency"]}
        )
    elif dev_order_closed(out_trade_no):
        data.update({"trade_state": "CLOSED", "trade_state_desc": "订单已关闭"})
    else:
        data.update({"trade_state": "NOTPAY", "trade_state_desc": "订单未支付"})
    return data


def _fake_native_order(mchid: str, data: dict) -> tuple[int, dict | None]:
    conf = payment_settings()
    amount = data.get("amount")
    out_trade_no = data.get("out_trade_no")
    description = data.get("description")
    notify_url = data.get("notify_url")
    if data.get("mchid") != mchid or data.get("appid") != conf["APPID"]:
        return _error(400, "APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配")
    if not (
        isinstance(out_trade_no, str)
        and _OUT_TRADE_NO_RE.fullmatch(out_trade_no)
        and isinstance(description, str)
        and 0 < len(description) <= MAX_DESCRIPTION
        and isinstance(amount, dict)
        and _is_int(amount.get("total"))
        and amount["total"] > 0
        and amount.get("currency", CURRENCY) == CURRENCY
        and isinstance(notify_url, str)
        and _absolute_http(notify_url)
    ):
        return _error(400, "PARAM_ERROR", "参数错误")
    expire = None
    if data.get("time_expire") is not None:
        expire = parse_rfc3339(data["time_expire"])
        if expire is None:
            return _error(400, "PARAM_ERROR", "time_expire格式错误")
    if cache.get(_paid_key(out_trade_no)) is not None:
        return _error(403, "ORDERPAID", "该订单已支付")
    if dev_order_closed(out_trade_no):
        return _error(400, "ORDER_CLOSED", "订单已关闭")
    extras = cache.get(_extras_key(out_trade_no)) or {}
    prepay_id = _prepay_id(timezone.now())
    order = {
        "out_trade_no": out_trade_no,
        "prepay_id": prepay_id,
        "description": description,
        "amount_fen": amount["total"],
        "currency": CURRENCY,
        "notify_url": notify_url,
        "return_url": extras.get("return_url") or absolute_url("/"),
        "payer_hint": extras.get("payer_hint", ""),
        "mchid": mchid,
        "appid": conf["APPID"],
        "merchant_name": conf["MERCHANT_NAME"],
        "time_expire": expire.isoformat() if expire else None,
    }
    # The prepay id points at the order first; the order is created only if none exists
    # for this number (cache.add), so concurrent calls agree on one session.
    cache.set(_prepay_key(prepay_id), out_trade_no, ORDER_TTL_SECONDS)
    if not cache.add(_trade_key(out_trade_no), order, ORDER_TTL_SECONDS):
        cache.delete(_prepay_key(prepay_id))
        existing = cache.get(_trade_key(out_trade_no))
        if existing is None:  # expired in between: a retry opens a new session
            return _error(500, "SYSTEM_ERROR", "系统错误")
        if any(existing[k] != order[k] for k in ("amount_fen", "currency", "description")):
            return _error(400, "OUT_TRADE_NO_USED", "商户订单号重复")
        prepay_id = existing["prepay_id"]
    return 200, {"code_url": absolute_url(f"/dev/pay/{prepay_id}/")}


def _fake_query(mchid: str, out_trade_no: str) -> tuple[int, dict | None]:
    order = cache.get(_trade_key(out_trade_no))
    if order is None or order["mchid"] != mchid:
        return _error(404, "ORDER_NOT_EXIST", "订单不存在")
    return 200, _transaction_json(order)


def _fake_close(mchid: str, out_trade_no: str, data: dict) -> tuple[int, dict | None]:
    if data.get("mchid") != mchid:
        return _error(400, "PARAM_ERROR", "mchid不正确")
    order = cache.get(_trade_key(out_trade_no))
    if order is None or order["mchid"] != mchid:
        return _error(404, "ORDER_NOT_EXIST", "订单不存在")
    # Closed first, then checked for a payment: a payment racing the close either lands
    # before (ORDERPAID below) or finds the order closed (dev_pay_confirm refuses it).
    cache.set(_closed_key(out_trade_no), 1, PAID_TTL_SECONDS)
    if cache.get(_paid_key(out_trade_no)) is not None:
        cache.delete(_closed_key(out_trade_no))
        return _error(400, "ORDERPAID", "订单已支付")
    cache.touch(_trade_key(out_trade_no), PAID_TTL_SECONDS)
    return 204, None


def _refund_json(refund: dict) -> dict:
    return {k: v for k, v in refund.items() if k not in ("notify_url", "mchid")}


def _fake_refund(mchid: str, data: dict) -> tuple[int, dict | None]:
    out_refund_no = data.get("out_refund_no")
    out_trade_no = data.get("out_trade_no")
    amount = data.get("amount")
    notify_url = data.get("notify_url", "")
    if not (
        isinstance(out_refund_no, str)
        and 0 < len(out_refund_no) <= 64
        and isinstance(out_trade_no, str)
        and isinstance(amount, dict)
        and _is_int(amount.get("refund"))
        and _is_int(amount.get("total"))
        and amount.get("currency") == CURRENCY
        and isinstance(notify_url, str)
    ):
        return _error(400, "PARAM_ERROR", "参数错误")
    existing = cache.get(_refund_key(out_refund_no))
    if existing is not None:
        if (
            existing["out_trade_no"] != out_trade_no
            or existing["amount"]["refund"] != amount["refund"]
        ):
            return _error(400, "INVALID_REQUEST", "退款单号已用于其他退款")
        return 200, _refund_json(existing)
    order = cache.get(_trade_key(out_trade_no))
    payment = cache.get(_paid_key(out_trade_no))
    if order is None or order["mchid"] != mchid:
        return _error(404, "RESOURCE_NOT_EXISTS", "订单不存在")
    if payment is None:
        return _error(400, "INVALID_REQUEST", "订单未支付，不能退款")
    if amount["total"] != order["amount_fen"]:
        return _error(400, "PARAM_ERROR", "订单金额不一致")
    refunds = cache.get(_refunds_of_key(out_trade_no)) or []
    already = sum(cache.get(_refund_key(no))["amount"]["refund"] for no in refunds)
    if not 0 < amount["refund"] <= order["amount_fen"] - already:
        return _error(403, "NOT_ENOUGH", "可退金额不足")
    now = timezone.now()
    refund = {
        "refund_id": f"5030{secrets.randbelow(10**25):025d}",
        "out_refund_no": out_refund_no,
        "transaction_id": payment["transaction_id"],
        "out_trade_no": out_trade_no,
        "channel": "ORIGINAL",
        "user_received_account": "支付用户零钱",
        "create_time": rfc3339(now),
        "status": "PROCESSING",
        "funds_account": "AVAILABLE",
        "amount": {
            "total": order["amount_fen"],
            "refund": amount["refund"],
            "payer_total": order["amount_fen"],
            "payer_refund": amount["refund"],
            "currency": CURRENCY,
        },
        "notify_url": notify_url,
        "mchid": mchid,
    }
    cache.set(_refund_key(out_refund_no), refund, REFUND_TTL_SECONDS)
    cache.set(_refunds_of_key(out_trade_no), [*refunds, out_refund_no], REFUND_TTL_SECONDS)
    return 200, _refund_json(refund)


def _fake_refund_query(out_refund_no: str) -> tuple[int, dict | None]:
    refund = cache.get(_refund_key(out_refund_no))
    if refund is None:
        return _error(404, "RESOURCE_NOT_EXISTS", "退款单不存在")
    return 200, _refund_json(refund)


def dev_refund_notification(
    refund: dict, *, now: datetime, event_type: str = "REFUND.SUCCESS", **overrides: Any
) -> tuple[bytes, dict[str, str]]:
    """A REFUND.* notification as the provider sends it: body and signed headers.
    `overrides` replace fields of the decrypted resource (tests' wrong amounts)."""
    resource = {
        "mchid": refund["mchid"],
        "out_trade_no": refund["out_trade_no"],
        "transaction_id": refund["transaction_id"],
        "out_refund_no": refund["out_refund_no"],
        "refund_id": refund["refund_id"],
        "refund_status": refund["status"],
        "success_time": refund.get("success_time") or rfc3339(now),
        "user_received_account": refund["user_received_account"],
        "amount": {
            "total": refund["amount"]["total"],
            "refund": refund["amount"]["refund"],
            "payer_total": refund["amount"]["payer_total"],
            "payer_refund": refund["amount"]["payer_refund"],
        },
        **overrides,
    }
    plaintext = json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()
    nonce = _random_text(12)
    ciphertext = AESGCM(api_v3_key()).encrypt(nonce.encode(), plaintext, b"refund")
    envelope = {
        "id": str(uuid.uuid4()),
        "create_time": rfc3339(now),
        "resource_type": RESOURCE_TYPE,
        "event_type": event_type,
        "summary": "退款成功",
        "resource": {
            "original_type": "refund",
            "algorithm": ALGORITHM,
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "associated_data": "refund",
            "nonce": nonce,
        },
    }
    body = json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode()
    return body, dev_signed_headers(body=body, timestamp=int(now.timestamp()))


def dev_refund_settle(
    *, out_refund_no: str, now: datetime | None = None, deliver: bool = True
) -> bool | None:
    """The provider finishes a refund (SUCCESS) and notifies its notify_url, as WeChat does
    a few seconds to days after the request. Returns whether the notification was answered
    2xx (None: unknown refund; False also when `deliver` is off)."""
    now = now or timezone.now()
    refund = cache.get(_refund_key(out_refund_no))
    if refund is None:
        return None
    if refund["status"] != "SUCCESS":
        refund = {**refund, "status": "SUCCESS", "success_time": rfc3339(now)}
        cache.set(_refund_key(out_refund_no), refund, REFUND_TTL_SECONDS)
    if not deliver or not refund["notify_url"]:
        return False
    body, headers = dev_refund_notification(refund, now=now)
    return webhook_post(
        url=refund["notify_url"],
        body=body,
        headers=headers,
        transport=callback_transport,
        timeout=CALLBACK_TIMEOUT_SECONDS,
        what="dev refund notification",
    )


def _fake_certificates() -> tuple[int, dict | None]:
    identity = platform_identity()
    pem = identity.cert.public_bytes(serialization.Encoding.PEM)
    nonce = _random_text(12)
    ciphertext = AESGCM(api_v3_key()).encrypt(nonce.encode(), pem, b"certificate")
    return 200, {
        "data": [
            {
                "serial_no": identity.serial,
                "effective_time": rfc3339(identity.cert.not_valid_before_utc),
                "expire_time": rfc3339(identity.cert.not_valid_after_utc),
                "encrypt_certificate": {
                    "algorithm": ALGORITHM,
                    "nonce": nonce,
                    "associated_data": "certificate",
                    "ciphertext": base64.b64encode(ciphertext).decode(),
                },
            }
        ]
    }


def fake_authorized(method: str, path: str, body: str, authorization: str) -> str | None:
    """The merchant id of a request whose Authorization header verifies with the merchant's
    certificate (serial, freshness, signature), else None."""
    scheme, _, params = authorization.partition(" ")
    fields = dict(_AUTH_RE.findall(params))
    merchant = merchant_identity()
    if scheme != SIGNATURE_TYPE or fields.get("mchid") != payment_settings()["MCHID"]:
        return None
    serial = fields.get("serial_no", "")
    try:
        if int(serial, 16) != merchant.cert.serial_number:
            return None
        stamp = int(fields.get("timestamp", ""))
        signature = base64.b64decode(fields.get("signature", ""), validate=True)
    except ValueError:
        return None
    if abs(int(timezone.now().timestamp()) - stamp) > REQUEST_MAX_AGE_SECONDS:
        return None
    message = f"{method}\n{path}\n{stamp}\n{fields.get('nonce_str', '')}\n{body}\n".encode()
    public_key = merchant.cert.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        return None
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        return None
    return fields["mchid"]


def fake_dispatch(method: str, path: str, body: str, authorization: str) -> tuple[int, dict | None]:
    """One API request (path with its query string) -> (status, JSON body or None)."""
    mchid = fake_authorized(method, path, body, authorization)
    if mchid is None:
        return _error(401, "SIGN_ERROR", "签名错误")
    route = urlsplit(path).path
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        return _error(400, "PARAM_ERROR", "请求体不是JSON")
    if not isinstance(data, dict):
        return _error(400, "PARAM_ERROR", "请求体不是对象")
    parts = route.strip("/").split("/")
    if method == "GET" and route == "/v3/certificates":
        return _fake_certificates()
    if method == "POST" and route == "/v3/pay/transactions/native":
        return _fake_native_order(mchid, data)
    if parts[:4] == ["v3", "pay", "transactions", "out-trade-no"] and len(parts) >= 5:
        out_trade_no = parts[4]
        if method == "GET" and len(parts) == 5:
            return _fake_query(mchid, out_trade_no)
        if method == "POST" and parts[5:] == ["close"]:
            return _fake_close(mchid, out_trade_no, data)
    if method == "POST" and route == "/v3/refund/domestic/refunds":
        return _fake_refund(mchid, data)
    if method == "GET" and parts[:4] == ["v3", "refund", "domestic", "refunds"] and len(parts) == 5:
        return _fake_refund_query(parts[4])
    return _error(404, "NOT_FOUND", "接口不存在")


class _FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        logger.debug("fake wechatpay: " + format, *args)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        try:
            status, payload = fake_dispatch(
                self.command, self.path, body, self.headers.get("Authorization", "")
            )
        except Exception:  # a bug in the fake: answer as WeChat would, keep serving
            logger.exception("fake wechatpay failed")
            status, payload = _error(500, "SYSTEM_ERROR", "系统错误")
        out = b"" if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        for name, value in dev_signed_headers(body=out, timestamp=int(time.time())).items():
            self.send_header(name, value)
        self.send_header("Request-ID", uuid.uuid4().hex)
        self.send_header("Content-Length", str(len(out)))
        if payload is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.end_headers()
        self.wfile.write(out)
        self.wfile.flush()
        if (
            status == 200
            and self.command == "POST"
            and urlsplit(self.path).path == "/v3/refund/domestic/refunds"
            and payment_settings().get("DEV_REFUND_AUTO_SETTLE", True)
            and payload is not None
        ):
            # WeChat settles a refund later and notifies: here a moment after the answer.
            threading.Timer(
                1.0, dev_refund_settle, kwargs={"out_refund_no": payload["out_refund_no"]}
            ).start()

    do_GET = _handle
    do_POST = _handle


_server: ThreadingHTTPServer | None = None
_server_lock = threading.Lock()


def fake_server_url() -> str:
    """The in-process fake WeChat Pay API's base URL, http://127.0.0.1:<port>, started on
    first use (a daemon thread; port PAYMENT["DEV_SERVER_PORT"], 0 = any free one). Its
    state is the cache, so every process's server serves the same orders."""
    global _server
    with _server_lock:
        if _server is None:
            port = int(payment_settings().get("DEV_SERVER_PORT") or 0)
            server = ThreadingHTTPServer(("127.0.0.1", port), _FakeHandler)
            server.daemon_threads = True
            threading.Thread(
                target=server.serve_forever, name="fake-wechatpay", daemon=True
            ).start()
            _server = server
        port = _server.server_address[1]
        return f"http://127.0.0.1:{port}"


# ------------------------------------------------------------------ the development provider


class DevPayProvider(WechatPayProvider):
    """settings.PAYMENT["PROVIDER"] == "dev": our WeChat Pay adapter (wechatpay.py, on the
    wechatpayv3 SDK) pointed at the fake server above, with the development merchant and
    platform keys and APIv3 key. PAYMENT["ENDPOINT"] points it at another fake server."""

    name = NAME

    def config(self) -> WechatPayConfig:
        if self._config is not None:
            return self._config
        conf = payment_settings()
        merchant = merchant_identity()
        return WechatPayConfig(
            endpoint=conf.get("ENDPOINT") or fake_server_url(),
            mchid=conf["MCHID"],
            appid=conf["APPID"],
            merchant_key_pem=_pem_key(merchant.key),
            merchant_serial=merchant.serial,
            api_v3_key=api_v3_key().decode(),
            # Certificate mode: the SDK downloads the platform certificate from the server.
            platform_cert_dir=None,
            max_age_seconds=_max_age(),
        )

    def create_order(self, **kwargs: Any) -> PaymentStart:
        """Native 下单. The fake's cashier (the code_url, opened on the phone) also shows the
        payer hint and sends the phone back to return_url; WeChat's Native API has neither,
        so the provider hands them to its own fake beside the request."""
        out_trade_no = kwargs.get("out_trade_no")
        if isinstance(out_trade_no, str) and _OUT_TRADE_NO_RE.fullmatch(out_trade_no):
            cache.add(
                _extras_key(out_trade_no),
                {"return_url": kwargs.get("return_url"), "payer_hint": kwargs.get("payer_hint")},
                ORDER_TTL_SECONDS,
            )
        return super().create_order(**kwargs)
