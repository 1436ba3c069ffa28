"""The applicant's evidence package (签约证据包) of a sealed agreement, from the records page
(网上签约记录): the zip signing/agreements/package.py builds, the same files as staff and
`manage.py evidence_export` get. Only the applicant's own agreement (another family's looks
like none); only once sealed (`evidence_package_not_ready` before)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from core.errors import DomainError
from core.http import private_zip_response
from mobile_api.auth import IsApplicant
from mobile_api.schema import ERROR_RESPONSES
from signing.agreements.package import (
    applicant_package_check,
    evidence_package_build,
    package_filename,
)
from signing.models import Agreement


class EvidencePackageApi(APIView):
    """GET …/signing/agreements/<id>/evidence-package/: the agreement's evidence package as a
    zip attachment (check it offline with `python3 verify.py package <file>`)."""

    permission_classes = [IsApplicant]

    @extend_schema(
        operation_id="v1_signing_agreements_evidence_package",
        responses={(200, "application/zip"): OpenApiTypes.BINARY, **ERROR_RESPONSES},
    )
    def get(self, request, agreement_id: int):
        agreement = Agreement.objects.filter(
            pk=agreement_id, family__main_applicant=request.user.applicant
        ).first()
        if agreement is None:
            raise DomainError("agreement_not_found", "协议不存在", kind="not_found")
        applicant_package_check(agreement)
        package = evidence_package_build(agreement_id=agreement.pk, now=timezone.now())
        return private_zip_response(
            package.zip_bytes(),
            filename=package_filename(agreement),
            ascii_filename=package_filename(agreement, ascii=True),
        )
