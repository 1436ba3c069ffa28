"""The API's one error body: {"error": {"code", "message", "fields"}}.

Every refusal, from a domain rule, DRF, CSRF, routing or an unexpected crash, leaves the API
in this shape with a stable code and a Chinese message.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import IntegrityError
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response

from core.errors import DomainError
from core.locking import Busy, is_lock_timeout

logger = logging.getLogger("anju.api")

KIND_STATUS = {
    "invalid": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "throttled": 429,
    # A lock not taken in time (core.locking.Busy): nothing was written, retry shortly.
    "unavailable": 503,
}

SESSION_ENDED = {
    "replaced": (
        "session_replaced",
        "您的账号已在其他设备登录，本设备已退出。如非本人操作，请立即联系工作人员。",
    ),
    "logout": ("session_ended", "您已退出登录，请重新登录"),
    "unknown": ("session_ended", "登录已失效，请重新登录"),
}


INVARIANT_VIOLATION = ("invariant_violation", "数据状态冲突，本次操作未生效，请刷新页面后重试")
# Bodies the server will not read: Django's DATA_UPLOAD_MAX_* limits here; the cap in front
# of Django (core/asgi.py BodyLimit) gives the same answer (a test keeps the two equal).
REQUEST_TOO_LARGE = ("request_too_large", "提交的内容过大")
TOO_MANY_FIELDS = ("too_many_fields", "提交的字段或文件过多")
NOT_FOUND = ("not_found", "请求的内容不存在")


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_json(code: str, message: str, *, status: int) -> JsonResponse:
    """The error body outside DRF's views (CSRF, 404/500 handlers), as DRF writes it: UTF-8,
    the Chinese message readable as it is (JsonResponse escapes non-ASCII by default)."""
    return JsonResponse(
        error_body(code, message), status=status, json_dumps_params={"ensure_ascii": False}
    )


def _drf_fields(detail) -> dict[str, list[str]]:
    if isinstance(detail, dict):
        return {
            str(key): [str(item) for item in (value if isinstance(value, list) else [value])]
            if not isinstance(value, dict)
            else [str(value)]
            for key, value in detail.items()
        }
    if isinstance(detail, list):
        return {"non_field_errors": [str(item) for item in detail]}
    return {"non_field_errors": [str(detail)]}


def exception_handler(exc, context):
    request = context.get("request")
    headers: dict[str, str] = {}
    if is_lock_timeout(exc):
        # A lock wait outside the lock helpers (an index entry, a cascade) ran out: same answer.
        exc = Busy()
    if isinstance(exc, DomainError):
        if exc.retry_after:
            headers["Retry-After"] = str(exc.retry_after)
        return Response(
            error_body(exc.code, exc.message, exc.fields),
            status=KIND_STATUS[exc.kind],
            headers=headers,
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(error_body(*REQUEST_TOO_LARGE), status=413)
    if isinstance(exc, (TooManyFieldsSent, TooManyFilesSent)):
        return Response(error_body(*TOO_MANY_FIELDS), status=400)
    if isinstance(exc, OverflowError):
        # A number past what the database stores (SQLite: 64-bit integers) reached a query,
        # from a field without a bound: no row has it. Paths are bounded by core.converters.
        logger.warning("number out of database range in %s", getattr(request, "path", "?"))
        return Response(error_body(*NOT_FOUND), status=404)
    if isinstance(exc, IntegrityError):
        # A database guard (unique, one-to-one, check, the unit/allocation trigger) refused a
        # write the services should have refused first: the transaction was rolled back, so
        # nothing changed. A bug to look into, never a 500 for the applicant.
        logger.error("database invariant refused a write", exc_info=exc)
        return Response(error_body(*INVARIANT_VIOLATION), status=409)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, exceptions.ValidationError):
        return Response(
            error_body("invalid_input", "提交的内容有误，请检查后重试", _drf_fields(exc.detail)),
            status=400,
        )
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
        ended = getattr(getattr(request, "_request", None), "anju_session_ended", None)
        code, message = SESSION_ENDED.get(ended, ("not_authenticated", "请先登录"))
        return Response(error_body(code, message), status=401)
    if isinstance(exc, exceptions.PermissionDenied):
        if str(exc.detail).startswith("CSRF Failed"):
            return Response(
                error_body("csrf_failed", "页面已过期或请求来源不正确，请刷新页面后重试"),
                status=403,
            )
        return Response(error_body("forbidden", "无权进行此操作"), status=403)
    if isinstance(exc, exceptions.Throttled):
        if exc.wait:
            headers["Retry-After"] = str(int(exc.wait + 0.999))
        return Response(
            error_body("throttled", "操作过于频繁，请稍后再试"), status=429, headers=headers
        )
    simple = {
        exceptions.NotFound: NOT_FOUND,
        exceptions.MethodNotAllowed: ("method_not_allowed", "不支持该请求方式"),
        exceptions.ParseError: ("malformed_request", "请求格式不正确"),
        exceptions.UnsupportedMediaType: ("unsupported_media_type", "不支持的内容类型"),
        exceptions.NotAcceptable: ("not_acceptable", "不支持的响应格式"),
    }
    for klass, (code, message) in simple.items():
        if isinstance(exc, klass):
            return Response(error_body(code, message), status=exc.status_code)
    if isinstance(exc, exceptions.APIException):
        return Response(error_body("error", str(exc.detail)), status=exc.status_code)
    logger.exception("unhandled error in API view", exc_info=exc)
    return Response(
        error_body("server_error", "系统繁忙，请稍后再试"),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )


def csrf_failure(request, reason=""):
    """Django's CSRF failure view, in the API's error body (CSRF_FAILURE_VIEW)."""
    return error_json("csrf_failed", "页面已过期或请求来源不正确，请刷新页面后重试", status=403)


def json_404(request, exception=None):
    return error_json(*NOT_FOUND, status=404)


def json_500(request):
    return error_json("server_error", "系统繁忙，请稍后再试", status=500)
