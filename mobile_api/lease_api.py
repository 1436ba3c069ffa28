"""The applicant's lease signing API (guide 000, section 三) and the payment webhook. Views
parse, call one service, serialize; the order of stages is enforced in signing/lease.py and
signing/deposit.py, the phone's face check and contract steps in signing/flow.py (through
mobile_api/signing_api.py)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
from django.http.request import RawPostDataException
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.context import RequestContext
from core.errors import DomainError, ValidationFailed
from core.urls import absolute_url
from mobile_api.auth import IsApplicant
from mobile_api.errors import error_body
from mobile_api.schema import ERROR_RESPONSES, ErrorSerializer
from mobile_api.signer import Signer, session_json, signer_for
from mobile_api.signing_api import agreement_json, pdf_response, qr_ticket_json
from mobile_api.throttles import ScopedRateThrottleFailOpen
from signing import deposit
from signing import lease as leases
from signing.consult import consult_help
from signing.documents import document_latest
from signing.lease_gates import Stage, lease_stage
from signing.models import Bank, CardPhoto, DepositPayment, Lease
from signing.payments import get_provider as payment_provider
from signing.payments.base import (
    NOTIFY_MAX_BYTES,
    PaymentNotificationInvalid,
    PaymentNotificationJunk,
    PaymentProviderError,
)

OBJ = {200: OpenApiTypes.OBJECT, **ERROR_RESPONSES}
STAGES = [Stage.INFO, Stage.FACE, Stage.CONTRACT, Stage.DEPOSIT, Stage.REVIEW]


def _applicant(request):
    return request.user.applicant


def _logged_in(request) -> bool:
    return IsApplicant().has_permission(request, None)


def _ctx(request) -> RequestContext:
    return RequestContext.from_request(request)


def _lease(request, lease_id: int) -> Lease:
    return leases.lease_for_applicant(applicant=_applicant(request), lease_id=lease_id)


def _deposit_signer(request, lease_id: int, action: str = "deposit") -> tuple[Lease, Signer]:
    """The lease for its deposit page: the applicant's own login, or the phone's signing
    session of the lease's deposit code (mobile_api/signer.py)."""
    agreement_id = Lease.objects.filter(pk=lease_id).values_list("agreement_id", flat=True).first()
    if agreement_id is None:
        raise DomainError("lease_not_found", "签约记录不存在", kind="not_found")
    try:
        signer = signer_for(request, agreement_id=agreement_id, action=action)
    except DomainError as error:
        if error.code == "agreement_not_found":
            raise DomainError("lease_not_found", "签约记录不存在", kind="not_found") from None
        raise
    lease = Lease.objects.select_related(
        "agreement__family__main_applicant", "allocation__unit", "allocation__round"
    ).get(pk=lease_id)
    return lease, signer


def _fen(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


def lease_json(lease: Lease, signer: Signer | None = None) -> dict:
    """The lease for the pages. A phone's signing session that has not passed this attempt's
    face check sees where the lease stands and nothing else (no unit, no amounts)."""
    agreement = lease.agreement
    applicant = agreement.family.main_applicant
    if signer is not None and signer.session is not None and not signer.verified:
        stage = lease_stage(lease, agreement)
        return {
            "id": lease.pk,
            "stage": stage,
            "stage_label": Stage(stage).label,
            "agreement": agreement_json(agreement),
            "help": consult_help(agreement.template).as_json(),
            "session": session_json(signer),
        }
    unit = lease.allocation.unit
    stage = lease_stage(lease, agreement)
    photos = {}
    for side in CardPhoto.Side:
        photo = leases.card_photo_current(lease=lease, side=side)
        photos[side.value] = (
            {"sha256": photo.sha256, "uploaded_at": photo.uploaded_at.isoformat()}
            if photo
            else None
        )
    payment = DepositPayment.objects.filter(lease=lease).first()
    approved = stage == Stage.APPROVED
    return {
        "id": lease.pk,
        "stage": stage,
        "stage_label": Stage(stage).label,
        "stages": [{"stage": s.value, "label": s.label} for s in STAGES],
        "agreement": agreement_json(agreement),
        "help": consult_help(agreement.template).as_json(),  # 咨询电话 and hours
        "unit": {
            "label": lease.unit_label,
            "round": lease.allocation.round.name,
            "building": unit.building,
            "number": unit.number,
            "floor": unit.floor,
            "layout": unit.get_layout_display(),
            "orientation": unit.get_orientation_display(),
            "area": str(unit.area),
        },
        "monthly_rent": str(lease.monthly_rent),
        "deposit": _fen(lease.deposit_fen),
        "deposit_fen": lease.deposit_fen,
        "lease_years": lease.allocation.round.lease_years,
        "name": applicant.real_name,
        "mobile_masked": applicant.mobile_masked,
        "bank": {
            "bank": lease.bank,
            "bank_label": lease.get_bank_display() if lease.bank else "",
            "account_masked": lease.account_masked,
            "account_holder": lease.account_holder,
            "confirmed": lease.bank_attempt == agreement.attempt,
        },
        "photos": photos,
        "payment": {
            "status": payment.status,
            "status_label": payment.get_status_display(),
            "out_trade_no": payment.out_trade_no,
            "paid_at": payment.paid_at.isoformat() if payment.paid_at else None,
            "receipt_no": payment.receipt_no,
        }
        if payment
        else None,
        "submitted_at": lease.deposit_paid_at.isoformat()
        if lease.deposit_paid_at and stage in (Stage.REVIEW, Stage.APPROVED)
        else None,
        "materials": {
            "contract": approved and document_latest(agreement=agreement) is not None,
            "receipt": approved and payment is not None,
        },
        "session": session_json(signer) if signer else None,
    }


class BankListApi(APIView):
    permission_classes = [AllowAny]

    @extend_schema(responses=OBJ)
    def get(self, request):
        return Response([{"code": code, "name": name} for code, name in Bank.choices])


class LeaseListApi(APIView):
    """网上签约记录: the family's leases, newest first."""

    permission_classes = [IsApplicant]

    @extend_schema(responses=OBJ)
    def get(self, request):
        return Response(
            [lease_json(lease) for lease in leases.lease_list(applicant=_applicant(request))]
        )


class LeaseStartApi(APIView):
    """「去签约」/「网上签约」: the lease of the family's allocation (created on first use)."""

    permission_classes = [IsApplicant]

    @extend_schema(request=None, responses=OBJ)
    def post(self, request):
        lease = leases.lease_start(
            applicant=_applicant(request), ctx=_ctx(request), now=timezone.now()
        )
        return Response(lease_json(lease))


class LeaseDetailApi(APIView):
    """The lease: for the applicant's own login, or for the phone's signing session of the
    lease's deposit code."""

    permission_classes = [AllowAny]

    @extend_schema(responses=OBJ)
    def get(self, request, lease_id: int):
        if _logged_in(request):
            return Response(lease_json(_lease(request, lease_id)))
        lease, signer = _deposit_signer(request, lease_id, "view")
        return Response(lease_json(lease, signer))


class MobileSerializer(serializers.Serializer):
    mobile = serializers.CharField(max_length=20)


class MobileCodeApi(APIView):
    """修改手机号: an SMS code to the NEW number."""

    permission_classes = [IsApplicant]

    @extend_schema(
        request=MobileSerializer, responses={202: OpenApiTypes.OBJECT, **ERROR_RESPONSES}
    )
    def post(self, request, lease_id: int):
        lease = _lease(request, lease_id)
        data = MobileSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        leases.lease_phone_code_send(
            lease=lease,
            applicant=_applicant(request),
            mobile=data.validated_data["mobile"],
            ctx=_ctx(request),
            now=timezone.now(),
        )
        return Response({"sent": True, "resend_after": 60}, status=status.HTTP_202_ACCEPTED)


class MobileChangeApi(APIView):
    permission_classes = [IsApplicant]

    class InputSerializer(MobileSerializer):
        code = serializers.RegexField(r"^\d{6}$")

    @extend_schema(request=InputSerializer, responses=OBJ)
    def post(self, request, lease_id: int):
        lease = _lease(request, lease_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        leases.lease_phone_change(
            lease=lease,
            applicant=_applicant(request),
            ctx=_ctx(request),
            now=timezone.now(),
            **data.validated_data,
        )
        return Response(lease_json(_lease(request, lease_id)))


class CardPhotoApi(APIView):
    """银行卡正面/反面: POST a photo (multipart field `file`); GET the stored (re-encoded)
    photo, to its owner only (staff see it in the admin)."""

    permission_classes = [IsApplicant]
    parser_classes = [MultiPartParser]

    def _side(self, side: str) -> str:
        if side not in CardPhoto.Side.values:
            raise DomainError("not_found", "请求的内容不存在", kind="not_found")
        return side

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
        responses={201: OpenApiTypes.OBJECT, **ERROR_RESPONSES},
    )
    def post(self, request, lease_id: int, side: str):
        lease = _lease(request, lease_id)
        side = self._side(side)
        try:
            upload = request.FILES.get("file")
        except RequestDataTooBig as exc:
            raise ValidationFailed("upload_too_large", "照片过大，请重新拍摄或压缩后上传") from exc
        if upload is None:
            raise ValidationFailed("upload_empty", "请选择照片", fields={"file": ["必填"]})
        # Never more than one byte past the limit in memory; signing/images.py refuses it.
        limit = settings.UPLOADS["MAX_BYTES"]
        photo = leases.lease_card_photo_upload(
            lease=lease,
            applicant=_applicant(request),
            side=side,
            data=upload.read(limit + 1),
            filename=upload.name or "",
            declared_type=upload.content_type or "",
            ctx=_ctx(request),
            now=timezone.now(),
        )
        return Response(
            {
                "side": photo.side,
                "sha256": photo.sha256,
                "width": photo.width,
                "height": photo.height,
            },
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(responses={(200, "image/jpeg"): OpenApiTypes.BINARY, **ERROR_RESPONSES})
    def get(self, request, lease_id: int, side: str):
        lease = _lease(request, lease_id)
        photo = leases.card_photo_current(lease=lease, side=self._side(side))
        if photo is None:
            raise DomainError("photo_not_found", "尚未上传该照片", kind="not_found")
        return photo_response(photo)


def photo_response(photo: CardPhoto) -> HttpResponse:
    response = HttpResponse(bytes(photo.image), content_type=photo.content_type)
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = f'inline; filename="card-{photo.side}.jpg"'
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


class BankApi(APIView):
    """租金托收: bank, account number, holder (the main applicant), after both photos."""

    permission_classes = [IsApplicant]

    class InputSerializer(serializers.Serializer):
        bank = serializers.CharField(max_length=10)
        account_number = serializers.CharField(max_length=40)
        account_holder = serializers.CharField(max_length=50)

    @extend_schema(request=InputSerializer, responses=OBJ)
    def post(self, request, lease_id: int):
        lease = _lease(request, lease_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lease = leases.lease_bank_confirm(
            lease=lease,
            applicant=_applicant(request),
            ctx=_ctx(request),
            now=timezone.now(),
            **data.validated_data,
        )
        return Response(lease_json(_lease(request, lease_id)))


class LeaseQrApi(APIView):
    """The desktop's QR code for the current stage (人脸识别 / 签订合同 / 押金缴纳)."""

    permission_classes = [IsApplicant]

    @extend_schema(request=None, responses={201: OpenApiTypes.OBJECT, **ERROR_RESPONSES})
    def post(self, request, lease_id: int):
        lease = _lease(request, lease_id)
        if not request.session.session_key:
            request.session.save()
        ticket = leases.lease_qr_issue(
            lease=lease,
            applicant=_applicant(request),
            session_key=request.session.session_key,
            now=timezone.now(),
        )
        return Response(qr_ticket_json(ticket), status=status.HTTP_201_CREATED)


class DepositApi(APIView):
    """押金缴纳 on the phone: the payment order and where the phone goes to pay."""

    permission_classes = [AllowAny]

    @extend_schema(request=None, responses=OBJ)
    def post(self, request, lease_id: int):
        lease, _ = _deposit_signer(request, lease_id)  # a phone: verified (face_required)
        try:
            payment, start = deposit.deposit_begin(
                lease_id=lease.pk,
                return_url=absolute_url(f"/h5/lease/{lease.pk}/deposit/"),
                notify_url=absolute_url(f"/api/v1/payments/notify/{payment_provider().name}/"),
                now=timezone.now(),
            )
        except PaymentProviderError as exc:
            return Response(error_body(exc.code, exc.message), status=503)
        return Response(
            {
                "out_trade_no": payment.out_trade_no,
                "amount": _fen(payment.amount_fen),
                "amount_fen": payment.amount_fen,
                "pay_url": start.pay_url,
            }
        )


class DepositRefreshApi(APIView):
    """Back from the cashier: the order's state, asking the provider if no notice came yet."""

    permission_classes = [AllowAny]

    @extend_schema(request=None, responses=OBJ)
    def post(self, request, lease_id: int):
        lease, signer = _deposit_signer(request, lease_id)
        try:
            deposit.deposit_refresh(lease=lease, now=timezone.now())
        except PaymentProviderError as exc:
            return Response(error_body(exc.code, exc.message), status=503)
        lease, signer = _deposit_signer(request, lease_id)
        return Response(lease_json(lease, signer))


class ReceiptApi(APIView):
    """押金收据 (PDF), once the lease is approved."""

    permission_classes = [IsApplicant]

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY, **ERROR_RESPONSES})
    def get(self, request, lease_id: int):
        lease = _lease(request, lease_id)
        pdf = deposit.deposit_receipt_pdf_for(lease=lease, now=timezone.now())
        return pdf_response(request, pdf, f"deposit-receipt-{lease.pk}.pdf")


class PaymentNotifyApi(APIView):
    """The payment provider's notification (server to server, WeChat Pay APIv3 shape). No
    session, no CSRF: the provider's signature is what is believed. Answers 200 for an
    applied or duplicate payment (so the provider stops retrying), 4xx with the error body
    for anything refused: recorded when it is shaped like a notification (signed, yet
    forged, stale, replayed, mismatched), not when it is junk (no or malformed signature
    headers, an oversized body). Throttled per address (scope "payment_notify")."""

    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottleFailOpen]
    throttle_scope = "payment_notify"
    parser_classes: list = []  # the raw body is what the signature covers

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer("PaymentNotifyOk", {"code": serializers.CharField()}),
            400: OpenApiResponse(
                ErrorSerializer, description="forged, stale, replayed, mismatched"
            ),
            404: OpenApiResponse(ErrorSerializer, description="unknown provider or order"),
        },
    )
    def post(self, request, provider: str):
        payments = payment_provider()
        if provider != payments.name:
            raise DomainError("payment_provider_unknown", "未知的支付服务", kind="not_found")
        ip = RequestContext.from_request(request).ip
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = NOTIFY_MAX_BYTES + 1
        if length > NOTIFY_MAX_BYTES:  # refused unread
            raise PaymentNotificationJunk("payment_notification_malformed")
        try:
            body = request.body
        except (RequestDataTooBig, RawPostDataException) as exc:
            raise PaymentNotificationJunk("payment_notification_malformed") from exc
        if len(body) > NOTIFY_MAX_BYTES:
            raise PaymentNotificationJunk("payment_notification_malformed")
        try:
            notice = payments.parse_notification(body=body, headers=dict(request.headers.items()))
        except PaymentNotificationJunk:
            raise  # anyone can send it: refused, not recorded
        except PaymentNotificationInvalid as exc:
            deposit.payment_notice_refused_record(provider=provider, error=exc, body=body, ip=ip)
            raise
        deposit.deposit_notice_apply(notice=notice, body=body, ip=ip, now=timezone.now())
        return Response({"code": "SUCCESS", "message": "成功"})
