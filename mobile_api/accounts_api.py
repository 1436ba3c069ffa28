"""Applicant login by the development identity provider (ID number + SMS code), logout, me."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.services import applicant_authenticate, login_code_send
from core.context import RequestContext
from core.errors import NotAllowed
from mobile_api.auth import (
    IsApplicant,
    session_login_applicant,
    session_login_cancel,
    session_login_confirm,
    session_logout,
)
from mobile_api.schema import ERROR_RESPONSES
from mobile_api.throttles import ScopedRateThrottleFailOpen as ScopedRateThrottle


def _require_dev_login() -> None:
    if not settings.DEV_LOGIN_ENABLED:
        raise NotAllowed("dev_login_disabled", "请通过广东省统一身份认证平台登录")


class LoginCodeSendApi(APIView):
    """Send a login code to the registered mobile of this ID number (if it is registered;
    the answer is the same either way)."""

    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "sms_send"

    class InputSerializer(serializers.Serializer):
        id_number = serializers.CharField(max_length=32)

    class OutputSerializer(serializers.Serializer):
        message = serializers.CharField()
        resend_after = serializers.IntegerField()
        expires_in = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer, **ERROR_RESPONSES})
    def post(self, request):
        _require_dev_login()
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        login_code_send(
            id_number=data.validated_data["id_number"], ctx=RequestContext.from_request(request)
        )
        return Response(
            {
                "message": "如该身份证号码已登记，验证码已发送至登记的手机号码",
                "resend_after": settings.SMS["RESEND_COOLDOWN_SECONDS"],
                "expires_in": settings.SMS["CODE_TTL_SECONDS"],
            },
            status=status.HTTP_202_ACCEPTED,
        )


class MeOutputSerializer(serializers.Serializer):
    real_name = serializers.CharField()
    id_number_masked = serializers.CharField()
    mobile_masked = serializers.CharField()
    family = serializers.SerializerMethodField()

    def get_family(self, applicant) -> dict | None:
        family = getattr(applicant, "family", None)
        if family is None:
            return None
        return {
            "rank": family.rank,
            "household_size": family.household_size,
            "eligible_layouts": family.eligible_layout_labels,
        }


class LoginApi(APIView):
    """Log in with ID number + SMS code; this device becomes the family's only active one.

    When another device is logged in to the account: 409 `device_active`, and nothing
    changes there. The code is spent and the login is held for this browser for a few
    minutes: `login/confirm/` finishes it (the other device is logged out at once),
    `login/cancel/` forgets it."""

    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    class InputSerializer(serializers.Serializer):
        id_number = serializers.CharField(max_length=32)
        code = serializers.RegexField(r"^\d{6}$", error_messages={"invalid": "请输入6位数字验证码"})

    @extend_schema(request=InputSerializer, responses={200: MeOutputSerializer, **ERROR_RESPONSES})
    def post(self, request):
        _require_dev_login()
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        applicant = applicant_authenticate(
            id_number=data.validated_data["id_number"], code=data.validated_data["code"]
        )
        session_login_applicant(request, applicant, provider="dev_sms")
        return Response(MeOutputSerializer(applicant).data)


class LoginConfirmApi(APIView):
    """Finish the login this browser was asked to confirm (409 `device_active`): this device
    becomes the active one and the other is logged out, its open pages told at once.
    Refused with `login_pending_missing` (nothing held by this browser) or
    `login_pending_expired`."""

    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=None, responses={200: MeOutputSerializer, **ERROR_RESPONSES})
    def post(self, request):
        applicant = session_login_confirm(request)
        return Response(MeOutputSerializer(applicant).data)


class LoginCancelApi(APIView):
    """Keep the other device logged in: forget the login this browser holds (if any)."""

    permission_classes = [AllowAny]

    @extend_schema(request=None, responses={204: None, **ERROR_RESPONSES})
    def post(self, request):
        session_login_cancel(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutApi(APIView):
    @extend_schema(request=None, responses={204: None, **ERROR_RESPONSES})
    def post(self, request):
        session_logout(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    permission_classes = [IsApplicant]
    privacy_exempt = True  # who is logged in, asked before the privacy notice too

    @extend_schema(responses={200: MeOutputSerializer, **ERROR_RESPONSES})
    def get(self, request):
        return Response(MeOutputSerializer(request.user.applicant).data)
