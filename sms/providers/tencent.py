"""Tencent Cloud SMS: action SendSms (API 3.0, version 2021-01-11) through Tencent's own
Python SDK (tencentcloud-sdk-python-sms on -common), which signs every request with
TC3-HMAC-SHA256. The endpoint is a URL from settings (SMS_TENCENT_ENDPOINT): Tencent's in
production, a local fake in tests.

Also the pieces the FaceID adapter (signing.face.tencent) shares: the SDK client profile for
an endpoint URL and the classification of an SDK error as worth retrying or not.

The message parameters may hold a verification code: they go into the request body and
nowhere else (no log line, no error text).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from django.conf import settings
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as sms_models
from tencentcloud.sms.v20210111.sms_client import SmsClient

from sms.providers.base import SmsSendError

# The SDK logs every request it sends, body included (a verification code, a name and ID
# number), at DEBUG: never that, whatever LOG_LEVEL says.
logging.getLogger("tencentcloud_sdk_common").setLevel(logging.INFO)

# Error codes a later attempt can get past: Tencent's own faults and rate limits. Everything
# else (AuthFailure, InvalidParameter*, MissingParameter, UnsupportedOperation,
# UnauthorizedOperation, FailedOperation.* such as a blacklisted number or an unapproved
# template, ...) needs a person or a different request, so the outbox stops at once.
_RETRYABLE_PREFIXES = ("InternalError", "RequestLimitExceeded", "ServiceUnavailable")
# LimitExceeded.* are frequency limits (30 s, 1 h, delivery frequency), except the daily caps,
# which do not lift within the outbox's retry window, and the per-request count limits.
_LIMIT_NOT_RETRYABLE = ("DailyLimit", "CountLimit")
# Errors the SDK raises itself, without asking Tencent, that no retry can fix.
_SDK_CONFIGURATION = ("InvalidCredential", "ClientError", "ClientParamsError")


def error_is_retryable(code: str) -> bool:
    """Whether a Tencent error code (Response.Error.Code or SendStatusSet[].Code) is worth
    retrying later."""
    if code.startswith(_RETRYABLE_PREFIXES):
        return True
    if code.startswith("LimitExceeded"):
        return not any(part in code for part in _LIMIT_NOT_RETRYABLE)
    return False


def sdk_error_is_retryable(exc: TencentCloudSDKException) -> bool:
    """An SDK error carries a RequestId only when Tencent answered it (then its code is
    Tencent's). Without one, the SDK gave up on its own: the network (ClientNetworkError:
    refused, timed out), an HTTP status other than 200 (ServerNetworkError), an unreadable
    answer (the Python exception's name): all worth another attempt, except its own
    configuration errors."""
    code = str(exc.code or "")
    if exc.requestId:
        return error_is_retryable(code)
    return code not in _SDK_CONFIGURATION


def sdk_error_text(exc: TencentCloudSDKException) -> str:
    """`Code: message (RequestId …)`, the message cut short (a network error's names the
    host; a gateway's error page can be long)."""
    message = (
        exc.message.decode("utf-8", "replace") if isinstance(exc.message, bytes) else exc.message
    )
    text = f"{exc.code or 'UnknownError'}: {str(message or '')[:300]}"
    return f"{text} (RequestId {exc.requestId})" if exc.requestId else text


def client_profile(endpoint: str, *, timeout: float) -> ClientProfile:
    """The SDK profile for `endpoint`, a URL ("https://sms.tencentcloudapi.com",
    "http://127.0.0.1:8123"): its scheme and host (with the port, which is what the SDK puts
    in the signed Host header). Raises ValueError for anything else."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ValueError(f"not an API endpoint URL: {endpoint!r}")
    http = HttpProfile(protocol=parts.scheme, endpoint=parts.netloc, reqTimeout=timeout)
    return ClientProfile(httpProfile=http)


def _international(phone: str) -> str:
    phone = phone.strip()
    return phone if phone.startswith("+") else f"+86{phone}"


def scrub(text: str, values: list[str]) -> str:
    """Remove `values` from text the provider sends back (an error message may echo them),
    so that no verification code, name or ID number reaches last_error or a log line."""
    # One-character values (a digit of minutes) reveal nothing and would garble the text.
    for value in sorted({v for v in values if len(v) > 1}, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


class TencentSmsProvider:
    """Sends one message per call through Tencent Cloud SMS; returns the SerialNo.

    Configured by settings.SMS["TENCENT"]: ENDPOINT, REGION, SECRET_ID, SECRET_KEY,
    SDK_APP_ID, SIGN_NAME, TEMPLATES (message kind -> template id), TIMEOUT_SECONDS.
    The SDK signs with the current time (time.time()); tests pin it with time-machine.
    """

    name = "tencent"

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
        try:
            profile = client_profile(conf["ENDPOINT"], timeout=conf["TIMEOUT_SECONDS"])
            client = SmsClient(
                Credential(conf["SECRET_ID"], conf["SECRET_KEY"]), conf["REGION"], profile
            )
        except (ValueError, TencentCloudSDKException) as exc:
            raise SmsSendError(f"Tencent SMS: bad configuration ({exc})", retryable=False) from exc

        request = sms_models.SendSmsRequest()
        request.PhoneNumberSet = [_international(phone)]
        request.SmsSdkAppId = str(conf["SDK_APP_ID"])
        request.SignName = conf["SIGN_NAME"]
        request.TemplateId = str(template_id)
        request.TemplateParamSet = params
        try:
            response = client.SendSms(request)
        except TencentCloudSDKException as exc:
            raise SmsSendError(
                f"Tencent SMS {scrub(sdk_error_text(exc), params)}",
                retryable=sdk_error_is_retryable(exc),
            ) from None

        # One number per request, so one status.
        statuses = response.SendStatusSet or []
        if not statuses:
            raise SmsSendError(f"Tencent SMS: no send status (RequestId {response.RequestId})")
        status = statuses[0]
        code = str(status.Code or "")
        if code != "Ok":
            raise SmsSendError(
                f"Tencent SMS {code or 'UnknownStatus'}: {scrub(str(status.Message or ''), params)}"
                f" (RequestId {response.RequestId})",
                retryable=error_is_retryable(code),
            )
        return str(status.SerialNo or "")
