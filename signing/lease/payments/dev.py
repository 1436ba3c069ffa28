"""The development payment provider: a stand-in shaped like WeChat Pay API v3 (微信支付 APIv3).

Provider side (what WeChat Pay runs on its own servers):

- `DevPayProvider.create_order` opens a payment session (WeChat: 下单, returning a prepay id
  such as "wx201410272009395522657a690389285100") and returns the URL of the provider's
  cashier page, `/dev/pay/<prepay_id>/` (DEBUG-only, h5/dev_views.py). It is idempotent per
  `out_trade_no`; the same number with a different amount or description is refused with
  reason "OUT_TRADE_NO_USED", a paid one with "ORDERPAID" (both not retryable).
- `dev_pay_confirm` is what 「确认支付」 posts to. The first confirmation pays the order (a
  28-digit transaction id); later ones pay nothing more and keep the same transaction id.
  Every confirmation delivers the payment notification to the order's notify_url, server to
  server, signed afresh with a new nonce (as WeChat redelivers until it gets a 2xx), and sends
  the phone back to `return_url?out_trade_no=<ours>`, also when the delivery failed: the
  return page can then ask `query_order`, as with a real notification that is late or lost.
- `query_order` is the provider's own record (GET /v3/pay/transactions/out-trade-no/{}).

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

The decrypted resource is the transaction: {"mchid", "appid", "out_trade_no",
"transaction_id", "trade_type": "MWEB", "trade_state": "SUCCESS", "trade_state_desc",
"bank_type", "success_time", "payer": {"openid"}, "amount": {"total", "payer_total",
"currency", "payer_currency"}}.

Our side (`DevPayProvider.parse_notification`) refuses: a missing or malformed header, a
timestamp more than NOTIFY_MAX_AGE_SECONDS (300) away from our clock either way, a serial
other than the platform certificate's, a signature that does not verify, a nonce already seen
(remembered in the cache only once the signature holds, so forgeries cannot use up nonces,
and for longer than a timestamp stays acceptable), a resource that does not decrypt with the
APIv3 key, a body or transaction that is not the expected JSON, another merchant's
notification. A redelivery signed afresh is valid; the apply step makes it a no-op and
compares the amount with our own order.

Keys: the platform's RSA-2048 key and its self-signed certificate live in
PAYMENT["PLATFORM_KEY_DIR"] (platform.key.pem 0600, platform.crt.pem; created on first use
under a file lock, so two processes make one key). In production the private key is
WeChat's and we would hold only the downloaded certificate; the development provider plays
both sides from one directory. The APIv3 key is PAYMENT["API_V3_KEY"] (32 characters), or
one derived from SECRET_KEY.

Why the Django cache holds the simulated provider's orders (as for signing/face/dev.py): they
are the provider's data, not ours, so they should not sit in our schema; they expire by
themselves; and the cache is the one store every process shares, as the nonce memory must be.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import secrets
import string
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone
from django.utils.crypto import salted_hmac

from core import jsonsafe
from core.urls import absolute_url
from core.webhooks import header_value, webhook_post
from signing.agreements.ca import _locked, _write_atomic
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


def _platform_create(*, now: datetime) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "开发环境模拟支付平台"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Anju dev payment platform"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
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


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(TZ).isoformat(timespec="seconds")


def _parse_rfc3339(value: object) -> datetime | None:
    if not isinstance(value, str) or not 0 < len(value) <= 40 or "T" not in value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


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
        "trade_type": "MWEB",
        "trade_state": "SUCCESS",
        "trade_state_desc": "支付成功",
        "bank_type": "OTHERS",
        "attach": "",
        "success_time": _rfc3339(success_time or now),
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
        "create_time": _rfc3339(now),
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
        "success_time": _rfc3339(now),
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


# ---------------------------------------------------------------------------- our side


def _malformed(message: str = "支付结果通知格式不正确") -> PaymentNotificationMalformed:
    return PaymentNotificationMalformed(message=message)


class DevPayProvider:
    """The development provider (settings.PAYMENT["PROVIDER"] == "dev"). `clock` gives the
    time a notification's timestamp is checked against; tests pin it."""

    name = NAME

    def __init__(self, *, clock: Callable[[], datetime] = timezone.now) -> None:
        self.clock = clock

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
    ) -> PaymentStart:
        """WeChat's 下单. `payer_hint` is shown on the cashier page (e.g. a masked name, never
        an ID number). The first call's notify_url and return_url stay with the order."""
        if not _OUT_TRADE_NO_RE.fullmatch(out_trade_no or ""):
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
        if cache.get(_paid_key(out_trade_no)) is not None:
            raise PaymentProviderError(
                f"order {out_trade_no} is already paid", retryable=False, reason="ORDERPAID"
            )
        conf = payment_settings()
        prepay_id = _prepay_id(timezone.now())
        order = {
            "out_trade_no": out_trade_no,
            "prepay_id": prepay_id,
            "description": description,
            "amount_fen": amount_fen,
            "currency": CURRENCY,
            "notify_url": notify_url,
            "return_url": return_url,
            "payer_hint": payer_hint,
            "mchid": conf["MCHID"],
            "appid": conf["APPID"],
            "merchant_name": conf["MERCHANT_NAME"],
        }
        # The prepay id points at the order first; the order is created only if none exists
        # for this number (cache.add), so concurrent calls agree on one session.
        cache.set(_prepay_key(prepay_id), out_trade_no, ORDER_TTL_SECONDS)
        if not cache.add(_trade_key(out_trade_no), order, ORDER_TTL_SECONDS):
            cache.delete(_prepay_key(prepay_id))
            existing = cache.get(_trade_key(out_trade_no))
            if existing is None:  # expired in between: a retry opens a new session
                raise PaymentProviderError(f"order {out_trade_no} changed meanwhile")
            if any(existing[k] != order[k] for k in ("amount_fen", "currency", "description")):
                raise PaymentProviderError(
                    f"out_trade_no {out_trade_no} was used with different parameters",
                    retryable=False,
                    reason="OUT_TRADE_NO_USED",
                )
            prepay_id = existing["prepay_id"]
        return PaymentStart(pay_url=absolute_url(f"/dev/pay/{prepay_id}/"), prepay_id=prepay_id)

    # --------------------------------------------------------------- parse_notification

    def parse_notification(self, *, body: bytes, headers: Mapping[str, str]) -> PaymentNotice:
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
            and _NONCE_RE.fullmatch(nonce)
            and _SERIAL_RE.fullmatch(serial)
            and len(signature) <= 1024
            and signature_type in ("", SIGNATURE_TYPE)
        ):
            raise PaymentNotificationJunk(message="支付结果通知签名格式不正确")
        if abs(int(self.clock().timestamp()) - int(timestamp)) > _max_age():
            raise PaymentNotificationStale()
        identity = platform_identity()
        if serial.upper() != identity.serial:
            # WeChat would have rotated its platform certificate; we know only this one.
            raise PaymentNotificationInvalid(message="支付结果通知的平台证书未知")
        try:
            raw_signature = base64.b64decode(signature, validate=True)
            key = identity.cert.public_key()
            if not isinstance(key, rsa.RSAPublicKey):  # WeChat Pay signs with RSA (SHA256-RSA)
                raise PaymentNotificationInvalid(message="支付结果通知的平台证书未知")
            key.verify(
                raw_signature,
                f"{timestamp}\n{nonce}\n".encode() + body + b"\n",
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (binascii.Error, ValueError, InvalidSignature) as exc:
            raise PaymentSignatureInvalid() from exc
        # Remembered only once the signature holds, so that forgeries cannot use up nonces;
        # kept for longer than the timestamp stays acceptable in either direction.
        if not cache.add(_nonce_key(nonce), 1, 2 * _max_age() + 60):
            raise PaymentNotificationReplayed()
        return self._notice(body)

    def _notice(self, body: bytes) -> PaymentNotice:
        try:
            envelope = jsonsafe.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise _malformed() from exc
        if not isinstance(envelope, dict):
            raise _malformed()
        event_id, resource = envelope.get("id"), envelope.get("resource")
        if not (
            isinstance(event_id, str)
            and 0 < len(event_id) <= 64
            and envelope.get("resource_type") == RESOURCE_TYPE
            and isinstance(resource, dict)
        ):
            raise _malformed()
        if envelope.get("event_type") != EVENT_TRANSACTION_SUCCESS:
            raise _malformed("支付结果通知的事件类型不受支持")
        transaction = self._decrypt(resource)
        conf = payment_settings()
        if transaction.get("mchid") != conf["MCHID"] or transaction.get("appid") != conf["APPID"]:
            raise PaymentNotificationInvalid(message="支付结果通知不属于本商户")
        notice = self._transaction_notice(transaction, notification_id=event_id)
        if notice.trade_state != "SUCCESS" or notice.success_time is None:
            raise _malformed("支付结果通知内容不正确")
        return notice

    def _decrypt(self, resource: dict) -> dict:
        ciphertext = resource.get("ciphertext")
        nonce = resource.get("nonce")
        associated_data = resource.get("associated_data", "")
        if not (
            resource.get("algorithm") == ALGORITHM
            and resource.get("original_type") == ORIGINAL_TYPE
            and isinstance(ciphertext, str)
            and 0 < len(ciphertext) <= 65536
            and isinstance(nonce, str)
            and 0 < len(nonce) <= 64
            and isinstance(associated_data, str)
            and len(associated_data) <= 256
        ):
            raise _malformed()
        try:
            plaintext = AESGCM(api_v3_key()).decrypt(
                nonce.encode(),
                base64.b64decode(ciphertext, validate=True),
                associated_data.encode(),
            )
            transaction = jsonsafe.loads(plaintext)
        except (binascii.Error, ValueError, InvalidTag) as exc:
            # Wrong APIv3 key, tampered ciphertext, a nonce AES-GCM refuses, not JSON.
            raise _malformed("支付结果通知无法解密") from exc
        if not isinstance(transaction, dict):
            raise _malformed()
        return transaction

    def _transaction_notice(self, transaction: dict, *, notification_id: str) -> PaymentNotice:
        out_trade_no = transaction.get("out_trade_no")
        transaction_id = transaction.get("transaction_id")
        trade_state = transaction.get("trade_state")
        amount = transaction.get("amount")
        mchid, appid = transaction.get("mchid"), transaction.get("appid")
        if not (
            isinstance(out_trade_no, str)
            and _OUT_TRADE_NO_RE.fullmatch(out_trade_no)
            and isinstance(transaction_id, str)
            and _TRANSACTION_ID_RE.fullmatch(transaction_id)
            and trade_state in TRADE_STATES
            and isinstance(mchid, str)
            and isinstance(appid, str)
            and isinstance(amount, dict)
            and _is_int(amount.get("total"))
            and amount["total"] >= 0
            and isinstance(amount.get("currency"), str)
            and _CURRENCY_RE.fullmatch(amount["currency"])
        ):
            raise _malformed("支付结果通知内容不正确")
        success_time = None
        if "success_time" in transaction:
            success_time = _parse_rfc3339(transaction["success_time"])
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

    # --------------------------------------------------------------------- query_order

    def query_order(self, *, out_trade_no: str) -> PaymentNotice | None:
        """The provider's own record (GET /v3/pay/transactions/out-trade-no/{}): NOTPAY until
        paid, then SUCCESS with the transaction id; None for an unknown or expired order."""
        if not isinstance(out_trade_no, str) or not _OUT_TRADE_NO_RE.fullmatch(out_trade_no):
            return None
        order = cache.get(_trade_key(out_trade_no))
        if order is None:
            return None
        payment = cache.get(_paid_key(out_trade_no))
        return PaymentNotice(
            provider=self.name,
            notification_id="",
            out_trade_no=out_trade_no,
            transaction_id=payment["transaction_id"] if payment else "",
            trade_state="SUCCESS" if payment else "NOTPAY",
            amount_fen=order["amount_fen"],
            currency=order["currency"],
            mchid=order["mchid"],
            appid=order["appid"],
            success_time=datetime.fromisoformat(payment["success_time"]) if payment else None,
        )
