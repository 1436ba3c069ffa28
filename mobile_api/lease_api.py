"""The applicant's lease signing API (guide 000, section 三) and the payment webhook. Views
parse, call one service, serialize; the order of stages is enforced in signing/lease/services.py and
signing/lease/deposit.py, the phone's face check and contract steps in signing/agreements/flow.py (through
mobile_api/signing_api.py)."""

from __future__ import annotations

import base64

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse
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
from core.webhooks import webhook_body
from mobile_api.auth import IsApplicant
from mobile_api.schema import (
    ERROR_RESPONSES,
    ErrorSerializer,
    IsoDateTimeField,
    link,
    path_enum,
)
from mobile_api.signer import Signer, session_json, signer_for
from mobile_api.signing_api import (
    AgreementSerializer,
    HelpSerializer,
    PhoneSessionSerializer,
    QrTicketSerializer,
    SentSerializer,
    pdf_response,
    qr_ticket_json,
)
from mobile_api.throttles import ScopedRateThrottleFailOpen
from signing import selectors
from signing.agreements import qr
from signing.lease import deposit
from signing.lease import services as leases
from signing.lease.payments import PROVIDERS as PAYMENT_PROVIDERS
from signing.lease.payments import get_provider as payment_provider
from signing.lease.payments.base import (
    NOTIFY_MAX_BYTES,
    PaymentNotificationInvalid,
    PaymentNotificationJunk,
    RefundNotice,
)
from signing.models import Bank, CardPhoto, Lease, LeaseStage


def _responses(ok, status_code: int = 200) -> dict:
    return {status_code: ok, **ERROR_RESPONSES}


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


# ------------------------------------------------------------------ output serializers


class StageSerializer(serializers.Serializer):
    stage = serializers.ChoiceField(choices=LeaseStage.choices)
    label = serializers.CharField()


class LeaseUnitSerializer(serializers.Serializer):
    label = serializers.CharField()
    round = serializers.CharField()
    building = serializers.CharField()
    number = serializers.CharField()
    floor = serializers.IntegerField()
    layout = serializers.CharField(help_text="label")
    orientation = serializers.CharField(help_text="label")
    area = serializers.CharField(help_text="square metres, decimal")


class LeaseBankSerializer(serializers.Serializer):
    bank = serializers.CharField(allow_blank=True)
    bank_label = serializers.CharField(allow_blank=True)
    account_masked = serializers.CharField(allow_blank=True)
    account_holder = serializers.CharField(allow_blank=True)
    confirmed = serializers.BooleanField()


class LeasePhotoSerializer(serializers.Serializer):
    sha256 = serializers.CharField()
    uploaded_at = IsoDateTimeField()


class LeasePhotosSerializer(serializers.Serializer):
    front = LeasePhotoSerializer(allow_null=True)
    back = LeasePhotoSerializer(allow_null=True)


class LeasePaymentSerializer(serializers.Serializer):
    status = serializers.CharField(help_text="created | paid")
    status_label = serializers.CharField()
    out_trade_no = serializers.CharField()
    paid_at = IsoDateTimeField(allow_null=True)
    receipt_no = serializers.CharField(allow_blank=True)


class LeaseMaterialsSerializer(serializers.Serializer):
    contract = serializers.BooleanField()
    receipt = serializers.BooleanField()


class LeaseSerializer(serializers.Serializer):
    """A lease for its pages (signing/selectors.py `LeaseView`). A phone's signing session
    that has not passed this attempt's face check gets only id, stage, agreement, help and
    session: the other fields are then absent."""

    id = serializers.IntegerField()
    stage = serializers.ChoiceField(choices=LeaseStage.choices)
    stage_label = serializers.CharField()
    stages = StageSerializer(many=True, required=False)
    agreement = AgreementSerializer()
    help = HelpSerializer()
    unit = LeaseUnitSerializer(required=False)
    monthly_rent = serializers.CharField(required=False)
    deposit = serializers.CharField(required=False, help_text="yuan")
    deposit_fen = serializers.IntegerField(required=False)
    lease_years = serializers.IntegerField(required=False)
    name = serializers.CharField(required=False)
    mobile_masked = serializers.CharField(required=False)
    bank = LeaseBankSerializer(required=False)
    photos = LeasePhotosSerializer(required=False)
    payment = LeasePaymentSerializer(required=False, allow_null=True)
    submitted_at = IsoDateTimeField(required=False, allow_null=True)
    materials = LeaseMaterialsSerializer(required=False)
    session = PhoneSessionSerializer(allow_null=True, help_text="null for the applicant's login")

    def to_representation(self, view: selectors.LeaseView):
        data = {
            "id": view.id,
            "stage": view.stage,
            "stage_label": view.stage_label,
        }
        details = view.details
        if details is None:
            data.update(
                agreement=AgreementSerializer(view.agreement).data,
                help=HelpSerializer(view.help).data,
                session=self.context.get("session"),
            )
            return data
        data.update(
            stages=[{"stage": s.value, "label": s.label} for s in selectors.LEASE_STAGES],
            agreement=AgreementSerializer(view.agreement).data,
            help=HelpSerializer(view.help).data,
            unit=LeaseUnitSerializer(details.unit).data,
            monthly_rent=details.monthly_rent,
            deposit=details.deposit,
            deposit_fen=details.deposit_fen,
            lease_years=details.lease_years,
            name=details.name,
            mobile_masked=details.mobile_masked,
            bank=LeaseBankSerializer(details.bank).data,
            photos=LeasePhotosSerializer(details.photos).data,
            payment=LeasePaymentSerializer(details.payment).data if details.payment else None,
            submitted_at=IsoDateTimeField().to_representation(details.submitted_at),
            materials=dict(details.materials),
            session=self.context.get("session"),
        )
        return data


def lease_data(lease_id: int, signer: Signer | None = None) -> dict:
    """The lease for the pages, for the applicant's login (`signer` None) or a signer."""
    verified = signer is None or signer.verified
    view = selectors.lease_view(lease_id=lease_id, verified=verified)
    session = session_json(signer) if signer else None
    return LeaseSerializer(view, context={"session": session}).data


def _lease_links(lease_id: str) -> dict:
    """Where a lease's answer leads: the lease's own operations."""
    return {
        "Lease": link("v1_lease_retrieve", lease_id=lease_id),
        "Bank": link("v1_lease_bank_create", lease_id=lease_id),
        "Photo": link("v1_lease_photos_create", lease_id=lease_id),
        "QrCode": link("v1_lease_qr_create", lease_id=lease_id),
        "MobileCode": link("v1_lease_mobile_code_create", lease_id=lease_id),
        "Deposit": link("v1_lease_deposit_create", lease_id=lease_id),
        "Receipt": link("v1_lease_receipt_retrieve", lease_id=lease_id),
    }


class BankListApi(APIView):
    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        code = serializers.ChoiceField(choices=Bank.choices)
        name = serializers.CharField()

    @extend_schema(
        operation_id="v1_lease_banks_list", responses=_responses(OutputSerializer(many=True))
    )
    def get(self, request):
        return Response([{"code": code, "name": name} for code, name in Bank.choices])


class LeaseListApi(APIView):
    """网上签约记录: the family's leases, newest first."""

    openapi_links = {"get": {200: _lease_links("$response.body#/0/id")}}

    permission_classes = [IsApplicant]

    @extend_schema(operation_id="v1_lease_list", responses=_responses(LeaseSerializer(many=True)))
    def get(self, request):
        views = selectors.lease_views(applicant=_applicant(request))
        return Response([LeaseSerializer(view, context={"session": None}).data for view in views])


class LeaseStartApi(APIView):
    """「去签约」/「网上签约」: the lease of the family's allocation (created on first use)."""

    openapi_links = {
        "post": {
            200: {
                **_lease_links("$response.body#/id"),
                "Agreement": link(
                    "v1_signing_agreements_retrieve", agreement_id="$response.body#/agreement/id"
                ),
            }
        }
    }

    permission_classes = [IsApplicant]

    @extend_schema(request=None, responses=_responses(LeaseSerializer))
    def post(self, request):
        lease = leases.lease_start(
            applicant=_applicant(request), ctx=_ctx(request), now=timezone.now()
        )
        return Response(lease_data(lease.pk))


class LeaseDetailApi(APIView):
    """The lease: for the applicant's own login, or for the phone's signing session of the
    lease's deposit code."""

    permission_classes = [AllowAny]

    @extend_schema(responses=_responses(LeaseSerializer))
    def get(self, request, lease_id: int):
        if _logged_in(request):
            return Response(lease_data(_lease(request, lease_id).pk))
        lease, signer = _deposit_signer(request, lease_id, "view")
        return Response(lease_data(lease.pk, signer))


class MobileSerializer(serializers.Serializer):
    mobile = serializers.CharField(max_length=20)


class MobileCodeApi(APIView):
    """修改手机号: an SMS code to the NEW number."""

    permission_classes = [IsApplicant]

    @extend_schema(request=MobileSerializer, responses=_responses(SentSerializer, 202))
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
        return Response(
            SentSerializer({"sent": True, "resend_after": 60}).data,
            status=status.HTTP_202_ACCEPTED,
        )


class MobileChangeApi(APIView):
    permission_classes = [IsApplicant]

    class InputSerializer(MobileSerializer):
        code = serializers.RegexField(r"^\d{6}$")

    @extend_schema(request=InputSerializer, responses=_responses(LeaseSerializer))
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
        return Response(lease_data(lease_id))


class PhotoOutputSerializer(serializers.Serializer):
    side = serializers.ChoiceField(choices=CardPhoto.Side.choices)
    sha256 = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()


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
        parameters=[path_enum("side", CardPhoto.Side.values)],
        responses=_responses(PhotoOutputSerializer, 201),
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
        # Never more than one byte past the limit in memory; signing/lease/card_photos.py refuses it.
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
        return Response(PhotoOutputSerializer(photo).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[path_enum("side", CardPhoto.Side.values)],
        responses={(200, "image/jpeg"): OpenApiTypes.BINARY, **ERROR_RESPONSES},
    )
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
        # What the page says under each field, as its own check does before sending.
        bank = serializers.CharField(
            max_length=10, error_messages={"required": "请选择托收银行", "blank": "请选择托收银行"}
        )
        account_number = serializers.CharField(
            max_length=40, error_messages={"required": "请输入银行卡号", "blank": "请输入银行卡号"}
        )
        account_holder = serializers.CharField(
            max_length=50, error_messages={"required": "请输入账户名", "blank": "请输入账户名"}
        )

    @extend_schema(request=InputSerializer, responses=_responses(LeaseSerializer))
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
        return Response(lease_data(lease_id))


class LeaseQrApi(APIView):
    """The desktop's QR code for the current stage (人脸识别 / 签订合同 / 押金缴纳)."""

    permission_classes = [IsApplicant]

    @extend_schema(request=None, responses=_responses(QrTicketSerializer, 201))
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
    """押金缴纳: the payment order (WeChat Pay Native). A desktop shows `code_url` as a QR
    code (`png_base64`, made here like the signing QR codes) for WeChat on the phone to scan;
    a phone may go to `pay_url` itself. The order closes at `expires_at`, the signing
    window's end. The same order each time until it is paid or closed."""

    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        out_trade_no = serializers.CharField()
        amount = serializers.CharField(help_text="yuan")
        amount_fen = serializers.IntegerField()
        pay_url = serializers.CharField()
        code_url = serializers.CharField(
            help_text="WeChat Pay Native: what a desktop shows as a QR code for WeChat to scan"
        )
        png_base64 = serializers.CharField(help_text="PNG of the QR code of code_url")
        expires_at = IsoDateTimeField(help_text="the order closes then: the window's end")

    @extend_schema(request=None, responses=_responses(OutputSerializer))
    def post(self, request, lease_id: int):
        lease, _ = _deposit_signer(request, lease_id)  # a phone: verified (face_required)
        payment, start = deposit.deposit_begin(
            lease_id=lease.pk,
            return_url=absolute_url(f"/h5/lease/{lease.pk}/deposit/"),
            notify_url=absolute_url(f"/api/v1/payments/notify/{payment_provider().name}/"),
            now=timezone.now(),
        )
        code_url = start.code_url or start.pay_url
        return Response(
            self.OutputSerializer(
                {
                    "out_trade_no": payment.out_trade_no,
                    "amount": selectors.fen_text(payment.amount_fen),
                    "amount_fen": payment.amount_fen,
                    "pay_url": start.pay_url,
                    "code_url": code_url,
                    "png_base64": base64.b64encode(qr.png_of(code_url)).decode(),
                    "expires_at": lease.agreement.window_ends_at,
                }
            ).data
        )


class DepositRefreshApi(APIView):
    """Back from the cashier: the order's state, asking the provider if no notice came yet."""

    permission_classes = [AllowAny]

    @extend_schema(request=None, responses=_responses(LeaseSerializer))
    def post(self, request, lease_id: int):
        lease, signer = _deposit_signer(request, lease_id)
        deposit.deposit_refresh(lease=lease, now=timezone.now())
        lease, signer = _deposit_signer(request, lease_id)
        return Response(lease_data(lease.pk, signer))


class ReceiptApi(APIView):
    """押金收据 (PDF), once the lease is approved."""

    permission_classes = [IsApplicant]

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY, **ERROR_RESPONSES})
    def get(self, request, lease_id: int):
        lease = _lease(request, lease_id)
        pdf = deposit.deposit_receipt_pdf_for(lease=lease, now=timezone.now())
        return pdf_response(request, pdf, f"deposit-receipt-{lease.pk}.pdf")


PAYMENT_PROVIDER = path_enum(
    "provider",
    sorted(PAYMENT_PROVIDERS),
    "the payment provider; only the configured one's path answers",
)


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
        parameters=[PAYMENT_PROVIDER],
        responses={
            200: inline_serializer("PaymentNotifyOk", {"code": serializers.CharField()}),
            400: OpenApiResponse(
                ErrorSerializer, description="junk, forged, stale, replayed, mismatched"
            ),
            404: OpenApiResponse(
                ErrorSerializer, description="not the configured provider, or an unknown order"
            ),
            429: OpenApiResponse(
                ErrorSerializer, description="throttled per address; see Retry-After"
            ),
            503: OpenApiResponse(
                ErrorSerializer, description="busy; nothing changed, see Retry-After"
            ),
        },
    )
    def post(self, request, provider: str):
        payments = payment_provider()
        if provider != payments.name:
            raise DomainError("payment_provider_unknown", "未知的支付服务", kind="not_found")
        ip = RequestContext.from_request(request).ip
        body = webhook_body(  # refused unread when larger than any notification
            request,
            max_bytes=NOTIFY_MAX_BYTES,
            junk=lambda: PaymentNotificationJunk("payment_notification_malformed"),
        )
        try:
            notice = payments.parse_notification(body=body, headers=dict(request.headers.items()))
        except PaymentNotificationJunk:
            raise  # anyone can send it: refused, not recorded
        except PaymentNotificationInvalid as exc:
            deposit.payment_notice_refused_record(provider=provider, error=exc, body=body, ip=ip)
            raise
        if isinstance(notice, RefundNotice):  # REFUND.*: the refund's notify_url is this one
            deposit.refund_notice_apply(notice=notice, body=body, ip=ip, now=timezone.now())
        else:
            deposit.deposit_notice_apply(notice=notice, body=body, ip=ip, now=timezone.now())
        return Response({"code": "SUCCESS", "message": "成功"})
