"""The applicant's signing API (guide 001): agreements, the desktop QR code, the phone flow
step by step, abandonment, documents and public verification. Views parse, call one
service, serialize; the order of steps is enforced in signing/agreements/flow.py."""

from __future__ import annotations

import base64

from django.http import HttpResponse
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from core.context import RequestContext
from core.errors import DomainError
from core.urls import absolute_url
from mobile_api.auth import IsApplicant
from mobile_api.schema import (
    ERROR_RESPONSES,
    IsoDateTimeField,
    ServerTimeMsField,
    link,
    path_enum,
)
from mobile_api.signer import Signer, cookies_set, device_id, session_json, signer_for
from realtime.access import qr_stream_token
from signing import selectors
from signing.agreements import flow, phone, qr, services
from signing.agreements.documents import document_latest
from signing.agreements.signature import finite_strokes
from signing.face import provider_name as face_provider_name
from signing.lease.services import lease_qr_issue
from signing.models import Agreement, ConsentKind, Lease, QrTicket


def _applicant(request):
    return request.user.applicant


def _agreement(request, agreement_id: int) -> Agreement:
    """The applicant's own agreement; another family's looks like none."""
    agreement = (
        Agreement.objects.select_related("family__main_applicant")
        .filter(pk=agreement_id, family__main_applicant=_applicant(request))
        .first()
    )
    if agreement is None:
        raise DomainError("agreement_not_found", "协议不存在", kind="not_found")
    return agreement


def _ctx(request) -> RequestContext:
    return RequestContext.from_request(request)


# ------------------------------------------------------------------ output serializers


class HelpSerializer(serializers.Serializer):
    """咨询电话 and hours (signing/agreements/consult.py)."""

    phones = serializers.ListField(child=serializers.CharField())
    phones_text = serializers.CharField()
    hours = serializers.CharField(allow_blank=True)
    text = serializers.CharField()


class PhoneSessionSerializer(serializers.Serializer):
    """The phone's own signing session (mobile_api/signer.py `session_json`)."""

    id = serializers.IntegerField()
    purpose = serializers.ChoiceField(choices=QrTicket.Purpose.choices)
    purpose_label = serializers.CharField()
    expires_at = IsoDateTimeField()
    verified = serializers.BooleanField()
    verify_needed = serializers.BooleanField()
    stream = serializers.CharField()
    stream_token = serializers.CharField()


class AgreementSerializer(serializers.Serializer):
    """An agreement as the pages list it (signing/selectors.py `AgreementSummary`)."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    status = serializers.ChoiceField(choices=Agreement.Status.choices)
    status_label = serializers.CharField()
    step = serializers.ChoiceField(choices=Agreement.Step.choices)
    step_label = serializers.CharField()
    next_step = serializers.IntegerField(allow_null=True)
    attempt = serializers.IntegerField()
    window_starts_at = IsoDateTimeField()
    window_ends_at = IsoDateTimeField()
    signer_boxes = serializers.IntegerField()
    reject_reason = serializers.CharField(allow_blank=True)
    verification_code = serializers.CharField()
    signed_at = IsoDateTimeField(allow_null=True)
    sealed_at = IsoDateTimeField(allow_null=True)
    lease = serializers.IntegerField(allow_null=True)
    help = HelpSerializer()
    server_time_ms = ServerTimeMsField()


class AgreementDetailSerializer(AgreementSerializer):
    """The phone flow's view (signing/selectors.py `AgreementDetail`): the signer's details,
    masked for a phone not yet verified; the text and what is signed only once verified."""

    real_name = serializers.CharField()
    id_number_masked = serializers.CharField()
    mobile_masked = serializers.CharField()
    session = PhoneSessionSerializer(allow_null=True, help_text="null for the applicant's login")
    text = serializers.CharField(required=False, help_text="only once verified")
    text_sha256 = serializers.CharField(required=False)
    signer_name = serializers.CharField(required=False)
    characters_drawn = serializers.ListField(child=serializers.IntegerField(), required=False)

    def to_representation(self, detail: selectors.AgreementDetail):
        data = AgreementSerializer(detail.summary).data
        data.update(
            real_name=detail.real_name,
            id_number_masked=detail.id_number_masked,
            mobile_masked=detail.mobile_masked,
            session=self.context.get("session"),
        )
        if detail.content is not None:
            data.update(
                text=detail.content.text,
                text_sha256=detail.content.text_sha256,
                signer_name=detail.content.signer_name,
                characters_drawn=detail.content.characters_drawn,
            )
        return data


def agreement_response(agreement: Agreement, *, status_code: int = 200) -> Response:
    """A service's resulting agreement, as the pages list it."""
    summary = selectors.agreement_summary(agreement=agreement)
    return Response(AgreementSerializer(summary).data, status=status_code)


class QrTicketSerializer(serializers.Serializer):
    ticket = serializers.IntegerField()
    purpose = serializers.ChoiceField(choices=QrTicket.Purpose.choices)
    short_code = serializers.CharField()
    url = serializers.CharField()
    png_base64 = serializers.CharField()
    expires_at = IsoDateTimeField()
    server_time_ms = serializers.IntegerField()
    stream = serializers.CharField()
    stream_token = serializers.CharField()


def _responses(ok, status_code: int = 200) -> dict:
    return {status_code: ok, **ERROR_RESPONSES}


# ------------------------------------------------------------------ agreements


class AgreementListApi(APIView):
    """The family's agreements, newest first (one query whatever their number)."""

    openapi_links = {
        "get": {
            200: {
                "Agreement": link(
                    "v1_signing_agreements_retrieve", agreement_id="$response.body#/0/id"
                ),
                "QrCode": link(
                    "v1_signing_agreements_qr_create", agreement_id="$response.body#/0/id"
                ),
                "AbandonText": link(
                    "v1_signing_agreements_abandon_retrieve", agreement_id="$response.body#/0/id"
                ),
                "Verify": link(
                    "v1_signing_verify_retrieve", code="$response.body#/0/verification_code"
                ),
            }
        }
    }

    permission_classes = [IsApplicant]

    @extend_schema(
        operation_id="v1_signing_agreements_list",
        responses=_responses(AgreementSerializer(many=True)),
    )
    def get(self, request):
        agreements = selectors.agreement_list(applicant=_applicant(request))
        return Response(AgreementSerializer(agreements, many=True).data)


class AgreementDetailApi(APIView):
    """The agreement for the phone flow: for the applicant's own login, or for the phone's
    signing session of this agreement (signing/agreements/phone.py)."""

    openapi_links = {
        "get": {
            200: {
                "ContractViewed": link(
                    "v1_signing_agreements_steps_contract_viewed_create",
                    agreement_id="$response.body#/id",
                ),
                "SignatureBox": link(
                    "v1_signing_agreements_signature_update", agreement_id="$response.body#/id"
                ),
            }
        }
    }

    permission_classes = [AllowAny]

    @extend_schema(responses=_responses(AgreementDetailSerializer))
    def get(self, request, agreement_id: int):
        signer = signer_for(request, agreement_id=agreement_id, action="view")
        return Response(agreement_detail_data(signer))


def agreement_detail_data(signer: Signer) -> dict:
    detail = selectors.agreement_detail(agreement=signer.agreement, verified=signer.verified)
    session = session_json(signer)
    return AgreementDetailSerializer(detail, context={"session": session}).data


class ConsentTextApi(APIView):
    """The full text of a consent (one tap away on the page) with its version."""

    permission_classes = [AllowAny]

    class OutputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=ConsentKind.choices)
        title = serializers.CharField()
        version = serializers.IntegerField()
        body = serializers.CharField()

    @extend_schema(
        parameters=[path_enum("kind", ConsentKind.values)], responses=_responses(OutputSerializer)
    )
    def get(self, request, kind: str):
        if kind not in ConsentKind.values:
            raise DomainError("not_found", "请求的内容不存在", kind="not_found")
        text = flow.consent_current(kind)
        return Response(
            self.OutputSerializer(
                {"kind": kind, "title": text.title, "version": text.version, "body": text.body}
            ).data
        )


class QrIssueApi(APIView):
    """「签约协议」 on the desktop: a QR code for the phone, and the token its progress socket
    needs (valid only in this browser session)."""

    permission_classes = [IsApplicant]

    @extend_schema(request=None, responses=_responses(QrTicketSerializer, 201))
    def post(self, request, agreement_id: int):
        agreement = _agreement(request, agreement_id)
        if not request.session.session_key:
            request.session.save()
        lease = Lease.objects.filter(agreement=agreement).first()
        if lease is not None:  # a lease shows the code of its current stage
            ticket = lease_qr_issue(
                lease=lease,
                applicant=_applicant(request),
                session_key=request.session.session_key,
                now=timezone.now(),
            )
        else:
            ticket = qr.qr_ticket_issue(
                agreement=agreement,
                applicant=_applicant(request),
                session_key=request.session.session_key,
                now=timezone.now(),
            )
        return Response(qr_ticket_json(ticket), status=status.HTTP_201_CREATED)


def qr_ticket_json(ticket) -> dict:
    """A QR ticket for the desktop page: the code, and the token its progress socket needs."""
    return QrTicketSerializer(
        {
            "ticket": ticket.pk,
            "purpose": ticket.purpose,
            "short_code": ticket.short_code,
            "url": qr.qr_url(ticket),
            "png_base64": base64.b64encode(qr.qr_png(ticket)).decode(),
            "expires_at": ticket.expires_at,
            "server_time_ms": int(timezone.now().timestamp() * 1000),
            "stream": f"qr.{ticket.pk}",
            "stream_token": qr_stream_token(ticket_id=str(ticket.pk), expires_at=ticket.expires_at),
        }
    ).data


class QrOpenApi(APIView):
    """The phone opened a QR code (its token from the URL): starts the phone's signing
    session for that ticket (cookies, see mobile_api/signer.py) and says where the phone goes
    next. No login is needed and none is made; another applicant's login is refused."""

    openapi_links = {
        "post": {
            200: {
                "Agreement": link(
                    "v1_signing_agreements_retrieve", agreement_id="$response.body#/agreement"
                )
            }
        }
    }

    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=64)

    class OutputSerializer(serializers.Serializer):
        agreement = serializers.IntegerField()
        purpose = serializers.ChoiceField(choices=QrTicket.Purpose.choices)
        next_url = serializers.CharField()
        took_over = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses=_responses(OutputSerializer))
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        applicant = (
            getattr(request.user, "applicant", None) if request.user.is_authenticated else None
        )
        device, new_device = device_id(request)
        opened = phone.phone_session_open(
            token=data.validated_data["token"],
            applicant=applicant,
            device_id=device,
            ctx=_ctx(request),
            now=timezone.now(),
        )
        session = opened.session
        response = Response(
            self.OutputSerializer(
                {
                    "agreement": session.agreement_id,
                    "purpose": session.purpose,
                    "next_url": phone_page_url(session),
                    "took_over": opened.took_over,
                }
            ).data
        )
        cookies_set(response, request, opened=opened, device=device, new_device=new_device)
        return response


def phone_page_url(session) -> str:
    """Where the phone goes for its session's purpose: the phone flow (电子合同 …), or the
    lease's deposit page."""
    if session.purpose == QrTicket.Purpose.DEPOSIT:
        lease_id = Lease.objects.filter(agreement_id=session.agreement_id).values_list(
            "pk", flat=True
        )
        return f"/h5/lease/{lease_id.get()}/deposit/"
    if session.purpose == QrTicket.Purpose.FACE:  # the flow stops after the face check
        return f"/h5/signing/{session.agreement_id}/sign/?until=face"
    return f"/h5/signing/{session.agreement_id}/sign/"


# ------------------------------------------------------------------ the phone flow
#
# One view per step, at POST …/agreements/<id>/steps/<name>/ (`step_urlpatterns`), by the
# applicant's own login or the phone's signing session (only the steps of its ticket's
# stage, signing/agreements/phone.py). The order of steps is enforced in signing/agreements/flow.py: a step out of
# order gets 409 `step_out_of_order`.


class _PhoneStepApi(APIView):
    permission_classes = [AllowAny]
    step: str  # the URL's last segment
    action: str  # signing/agreements/phone.py's name for what a signing session may do

    def signer(self, request, agreement_id: int) -> Signer:
        return signer_for(request, agreement_id=agreement_id, action=self.action)

    @staticmethod
    def common(request, signer: Signer) -> dict:
        return {
            "agreement_id": signer.agreement.pk,
            "applicant": signer.applicant,
            "ctx": signer.ctx(request),
            "now": timezone.now(),
        }


class VersionsSerializer(serializers.Serializer):
    versions = serializers.DictField(
        child=serializers.IntegerField(min_value=1),
        help_text="the version of each consent text shown, by kind",
    )


class ContractViewedApi(_PhoneStepApi):
    """电子合同 page, 「下一步」."""

    step, action = "contract-viewed", "contract_view"

    @extend_schema(request=None, responses=_responses(AgreementSerializer))
    def post(self, request, agreement_id: int):
        signer = self.signer(request, agreement_id)
        return agreement_response(flow.contract_view(**self.common(request, signer)))


class EcertConsentApi(_PhoneStepApi):
    """Ticked consent to 《电子认证服务协议》《个人信息保护政策》, 「开始」."""

    step, action = "ecert-consent", "ecert_consent"

    @extend_schema(request=VersionsSerializer, responses=_responses(AgreementSerializer))
    def post(self, request, agreement_id: int):
        signer = self.signer(request, agreement_id)
        data = VersionsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return agreement_response(
            flow.ecert_consent(
                versions=data.validated_data["versions"], **self.common(request, signer)
            )
        )


class IdentityConfirmApi(_PhoneStepApi):
    """Checked the real-name details and ticked the privacy and biometric rules."""

    step, action = "identity-confirm", "identity_confirm"

    @extend_schema(request=VersionsSerializer, responses=_responses(AgreementSerializer))
    def post(self, request, agreement_id: int):
        signer = self.signer(request, agreement_id)
        data = VersionsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return agreement_response(
            flow.identity_confirm(
                versions=data.validated_data["versions"], **self.common(request, signer)
            )
        )


class FaceStartApi(_PhoneStepApi):
    """Record the intent, then call the face provider (outside any transaction); the phone
    goes to the provider's page and comes back to the flow page with the order id."""

    step, action = "face-start", "face"

    class OutputSerializer(serializers.Serializer):
        order_id = serializers.CharField()
        redirect_url = serializers.CharField()

    @extend_schema(request=None, responses=_responses(OutputSerializer))
    def post(self, request, agreement_id: int):
        signer = self.signer(request, agreement_id)
        agreement = signer.agreement
        face_check, start = flow.face_start(
            agreement=agreement,
            session=signer.session,
            return_url=absolute_url(f"/h5/signing/{agreement.pk}/sign/?face_order={{order_id}}"),
            callback_url=absolute_url(f"/api/v1/face/callback/{face_provider_name()}/"),
            now=timezone.now(),
        )
        return Response(
            self.OutputSerializer(
                {"order_id": face_check.order_id, "redirect_url": start.redirect_url}
            ).data
        )


class FaceCompleteApi(_PhoneStepApi):
    """Back from the provider with the order id: the passed check moves the flow on (or,
    for a phone proving itself again, verifies that phone; the service decides)."""

    step, action = "face-complete", "face"

    class InputSerializer(serializers.Serializer):
        order_id = serializers.RegexField(r"^[A-Za-z0-9_-]{4,64}$")
        token = serializers.CharField(max_length=200, required=False, default="")

    @extend_schema(request=InputSerializer, responses=_responses(AgreementSerializer))
    def post(self, request, agreement_id: int):
        signer = self.signer(request, agreement_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        common = self.common(request, signer)
        return agreement_response(
            flow.face_complete(
                agreement=signer.agreement,
                applicant=common["applicant"],
                session=signer.session,
                order_id=data.validated_data["order_id"],
                provider_token=data.validated_data["token"],
                ctx=common["ctx"],
                now=common["now"],
            )
        )


class ReadApi(_PhoneStepApi):
    """阅读并确认协议: scrolled to the end, for long enough."""

    step, action = "read", "read"

    class InputSerializer(serializers.Serializer):
        scrolled_to_end = serializers.BooleanField()
        reading_seconds = serializers.IntegerField(min_value=0, max_value=86400)

    @extend_schema(request=InputSerializer, responses=_responses(AgreementSerializer))
    def post(self, request, agreement_id: int):
        signer = self.signer(request, agreement_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return agreement_response(
            flow.agreement_read(**data.validated_data, **self.common(request, signer))
        )


class SignatureCompleteApi(_PhoneStepApi):
    """「确定」 under the signature boxes: every character of the name has its box."""

    step, action = "signature-complete", "signature"

    @extend_schema(request=None, responses=_responses(AgreementSerializer))
    def post(self, request, agreement_id: int):
        signer = self.signer(request, agreement_id)
        return agreement_response(flow.signature_complete(**self.common(request, signer)))


class SentSerializer(serializers.Serializer):
    sent = serializers.BooleanField()
    resend_after = serializers.IntegerField(help_text="seconds before another code may be asked")


class SignCodeApi(_PhoneStepApi):
    """The SMS code for 「提交」, to the registered mobile."""

    step, action = "sms-code", "sms_code"

    @extend_schema(request=None, responses=_responses(SentSerializer, 202))
    def post(self, request, agreement_id: int):
        signer = self.signer(request, agreement_id)
        flow.sign_code_send(**self.common(request, signer))
        return Response(
            SentSerializer({"sent": True, "resend_after": 60}).data,
            status=status.HTTP_202_ACCEPTED,
        )


class SubmitApi(_PhoneStepApi):
    """「提交」 with the SMS code: the agreement becomes 已签字."""

    step, action = "submit", "submit"

    class InputSerializer(serializers.Serializer):
        code = serializers.RegexField(r"^\d{6}$")

    @extend_schema(request=InputSerializer, responses=_responses(AgreementSerializer))
    def post(self, request, agreement_id: int):
        signer = self.signer(request, agreement_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return agreement_response(
            flow.sign_submit(code=data.validated_data["code"], **self.common(request, signer))
        )


PHONE_STEPS: tuple[type[_PhoneStepApi], ...] = (
    ContractViewedApi,
    EcertConsentApi,
    IdentityConfirmApi,
    FaceStartApi,
    FaceCompleteApi,
    ReadApi,
    SignatureCompleteApi,
    SignCodeApi,
    SubmitApi,
)


def _step_operation_id(view: type[_PhoneStepApi]) -> str:
    return "v1_signing_agreements_steps_" + view.step.replace("-", "_") + "_create"


# Each step's answer leads to the next step of the same agreement (the flow's order).
for _view, _next in zip(PHONE_STEPS, PHONE_STEPS[1:], strict=False):
    _status = 202 if _view is SignCodeApi else 200
    _view.openapi_links = {
        "post": {
            _status: {
                "NextStep": link(
                    _step_operation_id(_next), agreement_id="$request.path.agreement_id"
                )
            }
        }
    }

# The id converter of mobile_api/urls.py: <id:> (ids past the database's range answer 404,
# core/converters.py, the hostile-input fix) where it exists, else <int:>.
try:
    import core.converters  # noqa: F401 (registers <id:>)

    _ID = "id"
except ImportError:  # pragma: no cover - before that fix
    _ID = "int"

# Any other step name is no route: the API's 404 `not_found`, as before.
step_urlpatterns = [
    path(
        f"signing/agreements/<{_ID}:agreement_id>/steps/{view.step}/",
        view.as_view(),
        name=f"agreement-step-{view.step}",
    )
    for view in PHONE_STEPS
]


class SignatureCharacterApi(APIView):
    """One character in its box (strokes with x, y, t, p). Saving a box again redoes it."""

    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        strokes = serializers.ListField(
            child=serializers.ListField(child=serializers.DictField()),
            max_length=40,
            validators=[finite_strokes],
        )
        width = serializers.IntegerField()
        height = serializers.IntegerField()

    class OutputSerializer(serializers.Serializer):
        index = serializers.IntegerField()
        png_sha256 = serializers.CharField()

    @extend_schema(request=InputSerializer, responses=_responses(OutputSerializer))
    def put(self, request, agreement_id: int, index: int):
        signer = signer_for(request, agreement_id=agreement_id, action="signature")

        def read_input() -> dict:
            # Only once the agreement and the box are found open (the service calls it).
            data = self.InputSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            return data.validated_data

        character = flow.signature_character_put(
            agreement_id=signer.agreement.pk,
            applicant=signer.applicant,
            index=index,
            read_input=read_input,
            ctx=signer.ctx(request),
            now=timezone.now(),
        )
        return Response(self.OutputSerializer(character).data)


class AbandonApi(APIView):
    """《放弃签约声明书》: GET the declaration text and version; POST to abandon."""

    openapi_links = {
        "get": {
            200: {
                "Abandon": link(
                    "v1_signing_agreements_abandon_create",
                    request_body={"declaration_version": "$response.body#/version"},
                    agreement_id="$request.path.agreement_id",
                )
            }
        }
    }

    permission_classes = [IsApplicant]

    class InputSerializer(serializers.Serializer):
        declaration_version = serializers.RegexField(r"^[0-9a-f]{64}$")

    class OutputSerializer(serializers.Serializer):
        text = serializers.CharField()
        version = serializers.CharField()

    @extend_schema(responses=_responses(OutputSerializer))
    def get(self, request, agreement_id: int):
        text, version = services.abandon_declaration(_agreement(request, agreement_id))
        return Response(self.OutputSerializer({"text": text, "version": version}).data)

    @extend_schema(request=InputSerializer, responses=_responses(AgreementSerializer))
    def post(self, request, agreement_id: int):
        agreement = _agreement(request, agreement_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.agreement_abandon(
            agreement_id=agreement.pk,
            actor=request.user,
            on_behalf=False,
            declaration_version=data.validated_data["declaration_version"],
            ctx=_ctx(request),
            now=timezone.now(),
        )
        return agreement_response(result)


class DocumentApi(APIView):
    """The agreement's PDF (the sealed one once sealed): view, print, download. Only the
    applicant's own; staff use the admin."""

    permission_classes = [IsApplicant]

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY, **ERROR_RESPONSES})
    def get(self, request, agreement_id: int):
        agreement = _agreement(request, agreement_id)
        document = document_latest(agreement=agreement)
        if document is None:
            raise DomainError("document_not_ready", "协议文件尚未生成", kind="not_found")
        return pdf_response(
            request, bytes(document.pdf), f"agreement-{agreement.verification_code}.pdf"
        )


def pdf_response(request, pdf: bytes, filename: str) -> HttpResponse:
    """A private PDF: shown inline, or saved with ?download=1."""
    response = HttpResponse(pdf, content_type="application/pdf")
    disposition = "attachment" if request.query_params.get("download") else "inline"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


class VerifyApi(APIView):
    """Public check of a verification code printed on a PDF: what was signed and sealed when,
    and the PDF's SHA-256 to compare with a file in hand."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    class OutputSerializer(serializers.Serializer):
        title = serializers.CharField()
        status = serializers.ChoiceField(choices=Agreement.Status.choices)
        status_label = serializers.CharField()
        signed_at = IsoDateTimeField(allow_null=True)
        sealed_at = IsoDateTimeField(allow_null=True)
        text_sha256 = serializers.CharField()
        pdf_sha256 = serializers.CharField(allow_null=True)

    @extend_schema(responses=_responses(OutputSerializer))
    def get(self, request, code: str):
        agreement = Agreement.objects.filter(verification_code=code.upper()).first()
        if agreement is None:
            raise DomainError(
                "verification_not_found", "未找到该验证码对应的协议", kind="not_found"
            )
        document = document_latest(agreement=agreement)
        return Response(
            self.OutputSerializer(
                {
                    "title": agreement.title,
                    "status": agreement.status,
                    "status_label": agreement.get_status_display(),
                    "signed_at": agreement.signed_at,
                    "sealed_at": agreement.sealed_at,
                    "text_sha256": agreement.text_hash,
                    "pdf_sha256": document.sha256 if document else None,
                }
            ).data
        )
