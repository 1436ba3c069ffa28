"""The face provider's result notification (server to server)."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http.request import RawPostDataException
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.errors import DomainError
from mobile_api.schema import ErrorSerializer
from signing.face import FaceCallbackInvalid, get_provider
from signing.face.services import face_check_apply


class FaceCallbackApi(APIView):
    """The provider tells us a face check's result. No session and no CSRF token: the caller
    is the provider's server, and the provider's signature (or, for Tencent, our own signed
    query of the result by its token) is what is believed. Applied exactly once; a
    redelivery answers 200 and changes nothing."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes: list = []
    parser_classes: list = []  # the raw body is what the signature covers

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer("FaceCallbackOk", {"ok": serializers.BooleanField()}),
            400: OpenApiResponse(ErrorSerializer, description="bad signature, stale, replayed"),
            404: OpenApiResponse(ErrorSerializer, description="unknown provider or order"),
            409: OpenApiResponse(ErrorSerializer, description="result not final yet"),
            503: OpenApiResponse(ErrorSerializer, description="provider unreachable"),
        },
    )
    def post(self, request, provider: str):
        face = get_provider()
        if provider != face.name:
            raise DomainError("face_provider_unknown", "未知的人脸识别服务", kind="not_found")
        try:
            body = request.body
        except (RequestDataTooBig, RawPostDataException) as exc:
            raise FaceCallbackInvalid(message="人脸识别结果通知格式不正确") from exc
        result = face.parse_callback(body=body, headers=dict(request.headers.items()))
        face_check_apply(result=result, now=timezone.now())
        return Response({"ok": True})
