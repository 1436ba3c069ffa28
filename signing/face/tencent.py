"""Tencent Cloud FaceID (人脸核身, 慧眼 SaaS H5): API 3.0, service "faceid", version 2018-03-01,
through Tencent's Python SDK (tencentcloud-sdk-python-faceid), which signs with
TC3-HMAC-SHA256; the endpoint URL and the error classification are the SMS adapter's.

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

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from django.conf import settings
from tencentcloud.common.credential import Credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
    TencentCloudSDKException,
)
from tencentcloud.faceid.v20180301 import models as faceid_models
from tencentcloud.faceid.v20180301.faceid_client import FaceidClient

from core import jsonsafe
from signing.face.base import (
    FaceCallbackInvalid,
    FaceCallbackJunk,
    FaceProviderError,
    FaceResult,
    FaceResultPending,
    FaceStart,
)
from sms.providers.tencent import client_profile, scrub, sdk_error_is_retryable, sdk_error_text

NAME = "tencent"
INFO_TYPE_TEXT_ONLY = "1"
_BIZ_TOKEN_RE = re.compile(r"^[A-Za-z0-9-]{8,64}$")


class TencentApiError(FaceProviderError):
    def __init__(self, exc: TencentCloudSDKException, secrets_: list[str]) -> None:
        super().__init__(
            f"Tencent FaceID {scrub(sdk_error_text(exc), secrets_)}",
            retryable=sdk_error_is_retryable(exc),
        )
        # Tencent's code when Tencent answered; the SDK's own (ClientNetworkError, ...) else.
        # (Not `code`: that is the API's error code of every FaceProviderError.)
        self.tencent_code = str(exc.code or "")


class TencentFaceProvider:
    """Signs with the current time (the SDK reads time.time()); tests pin it."""

    name = NAME

    # ------------------------------------------------------------------------ API calls

    def _conf(self) -> dict:
        conf = settings.FACE["TENCENT"]
        missing = [key for key in ("SECRET_ID", "SECRET_KEY", "RULE_ID") if not conf.get(key)]
        if missing:
            raise FaceProviderError(
                f"Tencent FaceID: not configured ({', '.join(missing)})", retryable=False
            )
        return conf

    def _call(self, action: str, request: Any, *, scrub_values: list[str] | None = None) -> Any:
        """One API 3.0 request through the SDK (TC3-signed); the response model, or
        TencentApiError (Tencent refused, or the SDK could not get an answer) /
        FaceProviderError (configuration). `scrub_values` must not appear in an error text."""
        conf = self._conf()
        try:
            profile = client_profile(conf["ENDPOINT"], timeout=conf["TIMEOUT_SECONDS"])
            client = FaceidClient(
                Credential(conf["SECRET_ID"], conf["SECRET_KEY"]), conf.get("REGION") or "", profile
            )
        except (ValueError, TencentCloudSDKException) as exc:
            raise FaceProviderError(
                f"Tencent FaceID: bad configuration ({exc})", retryable=False
            ) from None
        try:
            return getattr(client, action)(request)
        except TencentCloudSDKException as exc:
            raise TencentApiError(exc, scrub_values or []) from None

    # ------------------------------------------------------------------------ interface

    def start(
        self, *, order_id: str, real_name: str, id_number: str, return_url: str, callback_url: str
    ) -> FaceStart:
        """DetectAuth. `callback_url` is not used: this product has no server notification
        (the phone's return to `return_url?token=<BizToken>` is the only signal)."""
        request = faceid_models.DetectAuthRequest()
        request.RuleId = str(self._conf()["RULE_ID"])
        request.IdCard = id_number
        request.Name = real_name
        request.RedirectUrl = return_url
        request.Extra = order_id
        response = self._call("DetectAuth", request, scrub_values=[id_number, real_name])
        biz_token, url = response.BizToken, response.Url
        if not (isinstance(biz_token, str) and biz_token and isinstance(url, str) and url):
            raise FaceProviderError(
                f"Tencent FaceID: DetectAuth without BizToken/Url (RequestId {response.RequestId})"
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
        request = faceid_models.GetDetectInfoEnhancedRequest()
        request.BizToken = provider_order_id
        request.RuleId = str(self._conf()["RULE_ID"])
        request.InfoType = INFO_TYPE_TEXT_ONLY
        try:
            response = self._call("GetDetectInfoEnhanced", request)
        except TencentApiError as exc:
            # Tencent refuses a token it did not issue to this account, or one past its three
            # days: the "callback" named something Tencent cannot vouch for.
            if exc.tencent_code.startswith(("InvalidParameter", "ResourceNotFound")):
                raise FaceCallbackInvalid(message="人脸识别 token 无效或已过期") from exc
            raise
        text = response.Text
        if text is None:
            raise FaceProviderError("Tencent FaceID: result without Text")
        err_code = text.ErrCode
        if err_code is None:
            return None
        order_id = text.Extra
        if not (isinstance(order_id, str) and 0 < len(order_id) <= 64):
            raise FaceCallbackInvalid(message="人脸识别结果不属于本系统的订单")
        return FaceResult(
            order_id=order_id,
            passed=_int(err_code) == 0,
            score=_score(text.Sim),
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
