"""Page images of the applicant's agreement and deposit receipt for the viewer page
(h5/document_views.py): phone browsers often cannot show a PDF inline, so the viewer shows
PNGs drawn on the server (signing/agreements/preview.py). Only the applicant's own; the PDF itself stays
at …/document/ and …/receipt/ (打印 opens it, 保存 downloads it)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from core.errors import DomainError
from mobile_api.auth import IsApplicant
from mobile_api.schema import ERROR_RESPONSES
from signing.agreements.preview import ViewedPdf, agreement_pdf_for_view
from signing.lease import services as leases
from signing.lease.deposit import receipt_pdf_for_view
from signing.models import Agreement

PNG = {(200, "image/png"): OpenApiTypes.BINARY, **ERROR_RESPONSES}


def _own_agreement(request, agreement_id: int) -> Agreement:
    agreement = Agreement.objects.filter(
        pk=agreement_id, family__main_applicant=request.user.applicant
    ).first()
    if agreement is None:
        raise DomainError("agreement_not_found", "协议不存在", kind="not_found")
    return agreement


def page_response(request, viewed: ViewedPdf, page: int) -> HttpResponse:
    """One page as PNG. The viewer asks with ?v=<the document's version>: such an answer
    never changes, so the phone may keep it; any other is not stored."""
    response = HttpResponse(viewed.page_png(page), content_type="image/png")
    if request.query_params.get("v") == viewed.version:
        response["Cache-Control"] = "private, max-age=86400, immutable"
    else:
        response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


class AgreementPageApi(APIView):
    """GET …/signing/agreements/<id>/document/pages/<n>/: page n (from 1) of the agreement's
    current PDF as PNG."""

    permission_classes = [IsApplicant]

    @extend_schema(responses=PNG)
    def get(self, request, agreement_id: int, page: int):
        agreement = _own_agreement(request, agreement_id)
        return page_response(request, agreement_pdf_for_view(agreement=agreement), page)


class ReceiptPageApi(APIView):
    """GET …/lease/<id>/receipt/pages/<n>/: page n of the deposit receipt as PNG."""

    permission_classes = [IsApplicant]

    @extend_schema(responses=PNG)
    def get(self, request, lease_id: int, page: int):
        lease = leases.lease_for_applicant(applicant=request.user.applicant, lease_id=lease_id)
        return page_response(request, receipt_pdf_for_view(lease=lease), page)
