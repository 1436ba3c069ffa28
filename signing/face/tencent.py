"""Tencent Cloud FaceID (人脸核身, 慧眼 SaaS H5): API 3.0, service "faceid", version 2018-03-01,
signed with TC3-HMAC-SHA256 (the helpers of the SMS adapter).

- `start`: DetectAuth with RuleId, Name, IdCard, RedirectUrl (our return page) and Extra (our
  order id, passed through and returned with the result). The answer is a BizToken and the Url
  the phone opens. Tencent documents RedirectUrl for the WeChat H5 flow: this adapter targets
  that flow (the applicant opens our H5 inside WeChat); another channel would use another
  action with the same shape.
- Tencent appends `token=<BizToken>` to RedirectUrl when it sends the phone back. That
  redirect is NOT signed (DetectAuth has no signed server-to-server notification; the signed
  `newSign` callback belongs to a different, ticket-based H5 product), so it is only a hint.
- The source of truth is GetDetectInfoEnhanced by BizToken, our own signed request to Tencent,
  with InfoType "1" (text only: no ID card images, best frame or video ever reach us). Its
  `Text.ErrCode` is 0 when the check passed, another code when it failed, and null while the
  applicant has not finished; `Text.Sim` is the similarity (0-100); `Text.Extra` is our order
  id. BizToken stays queryable for three days; it is also kept as the result id.
- `parse_callback` therefore takes the hint (`token=...` as a form or query string, or JSON
  {"token": ...}) and fetches the result by that token. A forged token is harmless: Tencent
  refuses it, or answers with the genuine result of that session, which names its own order.

Configured by settings.FACE["TENCENT"]: ENDPOINT, REGION (optional for this product),
SECRET_ID, SECRET_KEY, RULE_ID, TIMEOUT_SECONDS. The name and ID number go into the DetectAuth
body and nowhere else (no log line, no error text).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from urllib.parse import parse_qs

import httpx
from django.conf import settings
from django.utils import timezone

from core import jsonsafe
from signing.face.base import (
    FaceCallbackInvalid,
    FaceCallbackJunk,
    FaceProviderError,
    FaceResult,
    FaceResultPending,
    FaceStart,
)
from sms.providers.tencent import CONTENT_TYPE, error_is_retryable, tc3_authorization

NAME = "tencent"
SERVICE = "faceid"
VERSION = "2018-03-01"
INFO_TYPE_TEXT_ONLY = "1"
_BIZ_TOKEN_RE = re.compile(r"^[A-Za-z0-9-]{8,64}$")


class TencentApiError(FaceProviderError):
    def __init__(self, code: str, message: str, request_id: str) -> None:
        super().__init__(
            f"Tencent FaceID {code or 'UnknownError'}: {message} (RequestId {request_id})",
            retryable=error_is_retryable(code),
        )
        self.code = code


def _scrub(text: str, secrets_: list[str]) -> str:
    for value in sorted({s for s in secrets_ if len(s) > 1}, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


class TencentFaceProvider:
    """`clock` gives the signing time (an aware datetime); tests pin it."""

    name = NAME

    def __init__(self, *, clock: Callable[[], datetime] = timezone.now) -> None:
        self.clock = clock

    # ------------------------------------------------------------------------ API calls

    def _conf(self) -> dict:
        conf = settings.FACE["TENCENT"]
        missing = [key for key in ("SECRET_ID", "SECRET_KEY", "RULE_ID") if not conf.get(key)]
        if missing:
            raise FaceProviderError(
                f"Tencent FaceID: not configured ({', '.join(missing)})", retryable=False
            )
        return conf

    def _call(self, action: str, body: dict, *, scrub: list[str] | None = None) -> dict:
        """One signed API 3.0 request; the Response object, or TencentApiError /
        FaceProviderError. `scrub` are values that must not appear in an error text."""
        conf = self._conf()
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            url = httpx.URL(conf["ENDPOINT"])
        except httpx.InvalidURL as exc:
            raise FaceProviderError(
                f"Tencent FaceID: bad endpoint ({exc})", retryable=False
            ) from exc
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
            "X-TC-Action": action,
            "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp),
        }
        if conf.get("REGION"):
            headers["X-TC-Region"] = conf["REGION"]
        try:
            with httpx.Client(timeout=conf["TIMEOUT_SECONDS"]) as client:
                response = client.post(url, content=payload, headers=headers)
        except httpx.UnsupportedProtocol as exc:
            raise FaceProviderError(
                f"Tencent FaceID: bad endpoint ({exc})", retryable=False
            ) from exc
        except httpx.TimeoutException as exc:
            raise FaceProviderError(f"Tencent FaceID: timed out ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise FaceProviderError(
                f"Tencent FaceID: request failed ({type(exc).__name__})"
            ) from exc

        status = response.status_code
        if status >= 500 or status in (408, 429):
            raise FaceProviderError(f"Tencent FaceID: HTTP {status}")
        try:
            data = response.json()["Response"]
            if not isinstance(data, dict):
                raise TypeError("Response is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise FaceProviderError(
                f"Tencent FaceID: unreadable response (HTTP {status})", retryable=status < 400
            ) from exc
        error = data.get("Error")
        if error:
            code = str(error.get("Code", "")) if isinstance(error, dict) else ""
            message = str(error.get("Message", "")) if isinstance(error, dict) else ""
            raise TencentApiError(
                code, _scrub(message, scrub or []), str(data.get("RequestId", ""))
            )
        return data

    # ------------------------------------------------------------------------ interface

    def start(
        self, *, order_id: str, real_name: str, id_number: str, return_url: str, callback_url: str
    ) -> FaceStart:
        """DetectAuth. `callback_url` is not used: this product has no server notification
        (the phone's return to `return_url?token=<BizToken>` is the only signal)."""
        data = self._call(
            "DetectAuth",
            {
                "RuleId": str(self._conf()["RULE_ID"]),
                "IdCard": id_number,
                "Name": real_name,
                "RedirectUrl": return_url,
                "Extra": order_id,
            },
            scrub=[id_number, real_name],
        )
        biz_token, url = data.get("BizToken"), data.get("Url")
        if not (isinstance(biz_token, str) and biz_token and isinstance(url, str) and url):
            raise FaceProviderError(
                f"Tencent FaceID: DetectAuth without BizToken/Url (RequestId {data.get('RequestId', '')})"
            )
        return FaceStart(redirect_url=url, provider_order_id=biz_token)

    def parse_callback(self, *, body: bytes, headers: Mapping[str, str]) -> FaceResult:
        token = self._token(body)
        result = self.fetch_result(provider_order_id=token)
        if result is None:
            raise FaceResultPending()
        return result

    @staticmethod
    def _token(body: bytes) -> str:
        """The token named by the body, or FaceCallbackJunk: without one, nothing here is
        worth a question to Tencent. JSON is read with the nesting bound (core.jsonsafe)."""
        try:
            text = body.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            raise FaceCallbackJunk(message="人脸识别结果通知格式不正确") from exc
        token: object = None
        if text.startswith("{"):
            try:
                data = jsonsafe.loads(text)
            except ValueError as exc:
                raise FaceCallbackJunk(message="人脸识别结果通知格式不正确") from exc
            token = data.get("token") if isinstance(data, dict) else None
        else:
            values = parse_qs(text.lstrip("?")).get("token", [])
            token = values[0] if len(values) == 1 else None
        if not (isinstance(token, str) and _BIZ_TOKEN_RE.match(token)):
            raise FaceCallbackJunk(message="人脸识别结果通知缺少有效的 token")
        return token

    def fetch_result(self, *, provider_order_id: str) -> FaceResult | None:
        """GetDetectInfoEnhanced, text only. None while the applicant has not finished."""
        if not _BIZ_TOKEN_RE.match(provider_order_id or ""):
            raise FaceCallbackInvalid(message="人脸识别结果通知缺少有效的 token")
        try:
            data = self._call(
                "GetDetectInfoEnhanced",
                {
                    "BizToken": provider_order_id,
                    "RuleId": str(self._conf()["RULE_ID"]),
                    "InfoType": INFO_TYPE_TEXT_ONLY,
                },
            )
        except TencentApiError as exc:
            # Tencent refuses a token it did not issue to this account, or one past its three
            # days: the "callback" named something Tencent cannot vouch for.
            if exc.code.startswith(("InvalidParameter", "ResourceNotFound")):
                raise FaceCallbackInvalid(message="人脸识别 token 无效或已过期") from exc
            raise
        text = data.get("Text")
        if not isinstance(text, dict):
            raise FaceProviderError("Tencent FaceID: result without Text")
        err_code = text.get("ErrCode")
        if err_code is None:
            return None
        order_id = text.get("Extra")
        if not (isinstance(order_id, str) and 0 < len(order_id) <= 64):
            raise FaceCallbackInvalid(message="人脸识别结果不属于本系统的订单")
        return FaceResult(
            order_id=order_id,
            passed=_int(err_code) == 0,
            score=_score(text.get("Sim")),
            result_id=provider_order_id,
            provider=self.name,
        )


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


def _score(value: object) -> float | None:
    """Sim is a string with two decimals ("95.51"), null when no comparison was made."""
    try:
        score = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return score if 0 <= score <= 100 else None
