"""The face provider's result notification (server to server)."""

from __future__ import annotations

import logging

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.context import RequestContext
from core.errors import DomainError
from core.webhooks import webhook_body
from mobile_api.schema import ErrorSerializer, path_enum
from mobile_api.throttles import ScopedRateThrottleFailOpen
from signing.face import (
    CALLBACK_MAX_BYTES,
    PROVIDERS,
    FaceCallbackInvalid,
    FaceCallbackJunk,
    get_provider,
)
from signing.face.services import face_check_apply

logger = logging.getLogger("anju.face")

PROVIDER = path_enum(
    "provider", sorted(PROVIDERS), "the face provider; only the configured one's path answers"
)


def _junk() -> FaceCallbackJunk:
    return FaceCallbackJunk(message="人脸识别结果通知格式不正确")


class FaceCallbackApi(APIView):
    """The provider tells us a face check's result. No session and no CSRF token: the caller
    is the provider's server, and the provider's signature (or, for Tencent, our own signed
    query of the result by its token) is what is believed. Applied exactly once; a
    redelivery answers 200 and changes nothing.

    Anyone can POST here, so, as for the payment webhook: junk (no or malformed signature
    headers, no well-formed token, a body larger than any callback) is refused before a
    signature is checked or the provider is asked, and leaves no trace; a callback shaped
    like the provider's but refused (forged, stale, replayed, an unknown order) is logged
    with its code and address; and the callback is throttled per address (scope
    "face_callback")."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottleFailOpen]
    throttle_scope = "face_callback"
    parser_classes: list = []  # the raw body is what the signature covers

    @extend_schema(
        request=None,
        parameters=[PROVIDER],
        responses={
            200: inline_serializer("FaceCallbackOk", {"ok": serializers.BooleanField()}),
            400: OpenApiResponse(
                ErrorSerializer, description="junk, bad signature, stale, replayed, malformed"
            ),
            404: OpenApiResponse(
                ErrorSerializer, description="not the configured provider, or an unknown order"
            ),
            409: OpenApiResponse(ErrorSerializer, description="result not final yet"),
            429: OpenApiResponse(
                ErrorSerializer, description="throttled per address; see Retry-After"
            ),
            503: OpenApiResponse(
                ErrorSerializer,
                description="provider unreachable or busy; nothing changed, see Retry-After",
            ),
        },
    )
    def post(self, request, provider: str):
        face = get_provider()
        if provider != face.name:
            raise DomainError("face_provider_unknown", "未知的人脸识别服务", kind="not_found")
        body = webhook_body(request, max_bytes=CALLBACK_MAX_BYTES, junk=_junk)
        try:
            result = face.parse_callback(body=body, headers=dict(request.headers.items()))
            face_check_apply(result=result, now=timezone.now())
        except FaceCallbackJunk:
            raise  # anyone can send it: refused, not logged
        except FaceCallbackInvalid as exc:
            logger.warning(
                "face callback refused: %s from %s (%d bytes)",
                exc.code,
                RequestContext.from_request(request).ip,
                len(body),
            )
            raise
        return Response({"ok": True})
