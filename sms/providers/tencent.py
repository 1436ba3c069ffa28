"""Tencent Cloud SMS: API 3.0 action SendSms (version 2021-01-11), signed with TC3-HMAC-SHA256.

Signing follows Tencent's "Signature v3" document: a canonical request (POST, "/", empty query,
the signed headers `content-type` and `host`, the SHA-256 of the body), a string to sign
scoped to the UTC date of X-TC-Timestamp and the service, and a key derived from the secret
key through the date, the service and "tc3_request".

The message parameters may hold a verification code: they go into the request body and
nowhere else (no log line, no error text).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from django.conf import settings
from django.utils import timezone

from sms.providers.base import SmsSendError

SERVICE = "sms"
ACTION = "SendSms"
VERSION = "2021-01-11"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
SIGNED_HEADERS = "content-type;host"

# Error codes a later attempt can get past: Tencent's own faults and rate limits. Everything
# else (AuthFailure, InvalidParameter*, MissingParameter, UnsupportedOperation,
# UnauthorizedOperation, FailedOperation.* such as a blacklisted number or an unapproved
# template, ...) needs a person or a different request, so the outbox stops at once.
_RETRYABLE_PREFIXES = ("InternalError", "RequestLimitExceeded", "ServiceUnavailable")
# LimitExceeded.* are frequency limits (30 s, 1 h, delivery frequency), except the daily caps,
# which do not lift within the outbox's retry window, and the per-request count limits.
_LIMIT_NOT_RETRYABLE = ("DailyLimit", "CountLimit")


def error_is_retryable(code: str) -> bool:
    """Whether a Tencent error code (Response.Error.Code or SendStatusSet[].Code) is worth
    retrying later."""
    if code.startswith(_RETRYABLE_PREFIXES):
        return True
    if code.startswith("LimitExceeded"):
        return not any(part in code for part in _LIMIT_NOT_RETRYABLE)
    return False


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hmac_sha256(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def tc3_credential_scope(*, service: str, timestamp: int) -> str:
    # The date is the UTC date of the timestamp; a local (UTC+8) date fails after midnight.
    date = datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")
    return f"{date}/{service}/tc3_request"


def tc3_signature(
    *,
    secret_key: str,
    service: str,
    host: str,
    timestamp: int,
    payload: bytes,
    content_type: str = CONTENT_TYPE,
) -> str:
    """The hex TC3-HMAC-SHA256 signature of a POST of `payload` to `host` at `timestamp`."""
    canonical_headers = (
        f"content-type:{content_type.strip().lower()}\nhost:{host.strip().lower()}\n"
    )
    canonical_request = "\n".join(
        ["POST", "/", "", canonical_headers, SIGNED_HEADERS, _sha256_hex(payload)]
    )
    scope = tc3_credential_scope(service=service, timestamp=timestamp)
    string_to_sign = "\n".join(
        [ALGORITHM, str(timestamp), scope, _sha256_hex(canonical_request.encode("utf-8"))]
    )
    date = scope.split("/", 1)[0]
    key = _hmac_sha256(("TC3" + secret_key).encode("utf-8"), date)
    key = _hmac_sha256(key, service)
    key = _hmac_sha256(key, "tc3_request")
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def tc3_authorization(
    *, secret_id: str, secret_key: str, service: str, host: str, timestamp: int, payload: bytes
) -> str:
    """The Authorization header value for a POST of `payload` to `host` at `timestamp`."""
    signature = tc3_signature(
        secret_key=secret_key, service=service, host=host, timestamp=timestamp, payload=payload
    )
    scope = tc3_credential_scope(service=service, timestamp=timestamp)
    return (
        f"{ALGORITHM} Credential={secret_id}/{scope}, "
        f"SignedHeaders={SIGNED_HEADERS}, Signature={signature}"
    )


def _international(phone: str) -> str:
    phone = phone.strip()
    return phone if phone.startswith("+") else f"+86{phone}"


def _scrub(text: str, params: list[str]) -> str:
    """Remove the message parameters from text the provider sends back (an error message may
    echo them), so that no verification code reaches last_error or a log line."""
    # One-character values (a digit of minutes) reveal nothing and would garble the text.
    for value in sorted({p for p in params if len(p) > 1}, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


class TencentSmsProvider:
    """Sends one message per call through Tencent Cloud SMS; returns the SerialNo.

    Configured by settings.SMS["TENCENT"]: ENDPOINT, REGION, SECRET_ID, SECRET_KEY,
    SDK_APP_ID, SIGN_NAME, TEMPLATES (message kind -> template id), TIMEOUT_SECONDS.
    `clock` gives the signing time (an aware datetime); tests pin it.
    """

    name = "tencent"

    def __init__(self, *, clock: Callable[[], datetime] = timezone.now) -> None:
        self.clock = clock

    def send(self, *, phone: str, kind: str, params: list[str], text: str) -> str:
        conf = settings.SMS["TENCENT"]
        template_id = conf.get("TEMPLATES", {}).get(kind)
        if not template_id:
            raise SmsSendError(f"Tencent SMS: no template for kind {kind!r}", retryable=False)
        missing = [
            key for key in ("SECRET_ID", "SECRET_KEY", "SDK_APP_ID", "SIGN_NAME") if not conf[key]
        ]
        if missing:
            raise SmsSendError(
                f"Tencent SMS: not configured ({', '.join(missing)})", retryable=False
            )

        params = [str(p) for p in params]
        body = {
            "PhoneNumberSet": [_international(phone)],
            "SmsSdkAppId": str(conf["SDK_APP_ID"]),
            "SignName": conf["SIGN_NAME"],
            "TemplateId": str(template_id),
            "TemplateParamSet": params,
        }
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            url = httpx.URL(conf["ENDPOINT"])
        except httpx.InvalidURL as exc:
            raise SmsSendError(f"Tencent SMS: bad endpoint ({exc})", retryable=False) from exc
        # Sign exactly the Host header that is sent (it carries the port when not the default).
        host = url.netloc.decode("ascii").lower()
        timestamp = int(self.clock().timestamp())
        headers = {
            "Authorization": tc3_authorization(
                secret_id=conf["SECRET_ID"],
                secret_key=conf["SECRET_KEY"],
                service=SERVICE,
                host=host,
                timestamp=timestamp,
                payload=payload,
            ),
            "Content-Type": CONTENT_TYPE,
            "Host": host,
            "X-TC-Action": ACTION,
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": conf["REGION"],
        }

        try:
            with httpx.Client(timeout=conf["TIMEOUT_SECONDS"]) as client:
                response = client.post(url, content=payload, headers=headers)
        except httpx.UnsupportedProtocol as exc:
            raise SmsSendError(f"Tencent SMS: bad endpoint ({exc})", retryable=False) from exc
        except httpx.TimeoutException as exc:
            raise SmsSendError(f"Tencent SMS: timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise SmsSendError(
                f"Tencent SMS: request failed ({type(exc).__name__}: {exc})"
            ) from exc
        return self._result(response, params)

    def _result(self, response: httpx.Response, params: list[str]) -> str:
        status = response.status_code
        if status >= 500 or status in (408, 429):
            raise SmsSendError(f"Tencent SMS: HTTP {status}")
        try:
            data = response.json()["Response"]
            if not isinstance(data, dict):
                raise TypeError("Response is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            # A 2xx without a readable answer may or may not have been sent; a retry risks a
            # duplicate, which beats a lost code. Any other 4xx is a configuration error.
            raise SmsSendError(
                f"Tencent SMS: unreadable response (HTTP {status})", retryable=status < 400
            ) from exc
        request_id = data.get("RequestId", "")

        error = data.get("Error")
        if error:
            code = str(error.get("Code", "")) if isinstance(error, dict) else ""
            message = str(error.get("Message", "")) if isinstance(error, dict) else ""
            raise SmsSendError(
                f"Tencent SMS {code or 'UnknownError'}: {_scrub(message, params)}"
                f" (RequestId {request_id})",
                retryable=error_is_retryable(code),
            )
        statuses = data.get("SendStatusSet")
        if not isinstance(statuses, list) or not statuses or not isinstance(statuses[0], dict):
            raise SmsSendError(f"Tencent SMS: no send status (RequestId {request_id})")
        # One number per request, so one status.
        first = statuses[0]
        code = str(first.get("Code", ""))
        if code != "Ok":
            raise SmsSendError(
                f"Tencent SMS {code or 'UnknownStatus'}: "
                f"{_scrub(str(first.get('Message', '')), params)} (RequestId {request_id})",
                retryable=error_is_retryable(code),
            )
        return str(first.get("SerialNo", ""))
