"""《个人信息保护政策》 at login (accounts/privacy.py) and the applicant's own copy of their
personal data (signing/personal_data.py), both from 「我的」."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.privacy import privacy_acknowledge, privacy_current
from core.context import RequestContext
from core.http import private_zip_response
from mobile_api.auth import IsApplicant
from mobile_api.schema import ERROR_RESPONSES
from signing.personal_data import personal_data_zip


class PrivacyNoticeApi(APIView):
    """GET: the current notice and whether this applicant still has to acknowledge it.
    POST {version}: acknowledge it (`consent_outdated` when a newer version exists,
    `consent_missing`, 403, when none is configured). Reachable before acknowledging."""

    permission_classes = [IsApplicant]
    privacy_exempt = True

    class OutputSerializer(serializers.Serializer):
        required = serializers.BooleanField()
        acknowledged_version = serializers.IntegerField()
        version = serializers.IntegerField(allow_null=True)
        title = serializers.CharField()
        body = serializers.CharField()

    class InputSerializer(serializers.Serializer):
        version = serializers.IntegerField(min_value=1, max_value=2_000_000_000)

    def _answer(self, applicant) -> Response:
        notice = privacy_current()
        return Response(
            self.OutputSerializer(
                {
                    "required": notice is not None and applicant.privacy_version < notice.version,
                    "acknowledged_version": applicant.privacy_version,
                    "version": notice.version if notice else None,
                    "title": notice.title if notice else "",
                    "body": notice.body if notice else "",
                }
            ).data
        )

    @extend_schema(responses={200: OutputSerializer, **ERROR_RESPONSES})
    def get(self, request):
        return self._answer(request.user.applicant)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer, **ERROR_RESPONSES})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        applicant = privacy_acknowledge(
            applicant=request.user.applicant,
            version=data.validated_data["version"],
            ctx=RequestContext.from_request(request),
            now=timezone.now(),
        )
        return self._answer(applicant)


class PersonalDataApi(APIView):
    """GET: a zip of the logged-in applicant's personal data (personal-data.json and the
    bank-card photos still kept). Only one's own: the applicant comes from the login."""

    permission_classes = [IsApplicant]

    @extend_schema(
        operation_id="v1_me_personal_data",
        responses={(200, "application/zip"): OpenApiTypes.BINARY, **ERROR_RESPONSES},
    )
    def get(self, request):
        now = timezone.now()
        data = personal_data_zip(
            applicant=request.user.applicant, ctx=RequestContext.from_request(request), now=now
        )
        stamp = timezone.localtime(now).strftime("%Y%m%d")
        return private_zip_response(
            data,
            filename=f"我的个人信息-{stamp}.zip",
            ascii_filename=f"personal-data-{stamp}.zip",
        )
