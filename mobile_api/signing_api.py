"""The applicant's signing API (guide 001): agreements, the desktop QR code, the phone flow
step by step, abandonment, documents and public verification. Views parse, call one
service, serialize; the order of steps is enforced in signing/flow.py."""

from __future__ import annotations

import base64

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.validators import mask_name
from core.context import RequestContext
from core.errors import DomainError
from core.urls import absolute_url
from mobile_api.auth import IsApplicant
from mobile_api.errors import error_body
from mobile_api.schema import ERROR_RESPONSES
from mobile_api.signer import Signer, cookies_set, device_id, session_json, signer_for
from realtime.access import qr_stream_token
from signing import flow, phone, qr, services
from signing.consult import consult_help
from signing.documents import document_latest
from signing.face import provider_name as face_provider_name
from signing.face import services as face_services
from signing.face.base import FaceProviderError
from signing.lease import lease_qr_issue
from signing.models import Agreement, ConsentKind, Lease, QrTicket, SignatureCharacter
from signing.signature import finite_strokes

OBJ = {200: OpenApiTypes.OBJECT, **ERROR_RESPONSES}


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


def agreement_json(
    agreement: Agreement, *, with_text: bool = False, signer: Signer | None = None
) -> dict:
    """The agreement for the pages. `with_text`: the phone flow's view, with the text and the
    signer's details; a phone's signing session that has not passed the face check sees the
    name masked and no text (`signer`)."""
    data = {
        "id": agreement.pk,
        "title": agreement.title,
        "status": agreement.status,
        "status_label": agreement.get_status_display(),
        "step": agreement.step,
        "step_label": agreement.get_step_display(),
        "next_step": agreement.step + 1 if agreement.status == Agreement.Status.PENDING else None,
        "attempt": agreement.attempt,
        "window_starts_at": agreement.window_starts_at.isoformat(),
        "window_ends_at": agreement.window_ends_at.isoformat(),
        "signer_boxes": len(agreement.signer_name),
        "reject_reason": agreement.reject_reason,
        "verification_code": agreement.verification_code,
        "signed_at": agreement.signed_at.isoformat() if agreement.signed_at else None,
        "sealed_at": agreement.sealed_at.isoformat() if agreement.sealed_at else None,
        "lease": Lease.objects.filter(agreement=agreement).values_list("pk", flat=True).first(),
        # 咨询电话 and hours, wherever a page says 请拨打咨询电话 (signing/consult.py)
        "help": consult_help(agreement.template).as_json(),
        "server_time_ms": int(timezone.now().timestamp() * 1000),
    }
    if with_text:
        applicant = agreement.family.main_applicant
        shown = signer is None or signer.verified
        data.update(
            real_name=applicant.real_name if shown else mask_name(applicant.real_name),
            id_number_masked=applicant.id_number_masked,
            mobile_masked=applicant.mobile_masked,
            session=session_json(signer) if signer else None,
        )
        if shown:
            data.update(
                text=agreement.rendered_text,
                text_sha256=agreement.text_hash,
                signer_name=agreement.signer_name,
                characters_drawn=sorted(
                    SignatureCharacter.objects.filter(
                        agreement=agreement, attempt=agreement.attempt
                    ).values_list("index", flat=True)
                ),
            )
    return data


class AgreementListApi(APIView):
    permission_classes = [IsApplicant]

    @extend_schema(responses=OBJ)
    def get(self, request):
        agreements = Agreement.objects.filter(family__main_applicant=_applicant(request)).order_by(
            "-created_at"
        )
        return Response([agreement_json(a) for a in agreements])


class AgreementDetailApi(APIView):
    """The agreement for the phone flow: for the applicant's own login, or for the phone's
    signing session of this agreement (signing/phone.py)."""

    permission_classes = [AllowAny]

    @extend_schema(responses=OBJ)
    def get(self, request, agreement_id: int):
        signer = signer_for(request, agreement_id=agreement_id, action="view")
        return Response(agreement_json(signer.agreement, with_text=True, signer=signer))


class ConsentTextApi(APIView):
    """The full text of a consent (one tap away on the page) with its version."""

    permission_classes = [AllowAny]

    @extend_schema(responses=OBJ)
    def get(self, request, kind: str):
        if kind not in ConsentKind.values:
            raise DomainError("not_found", "请求的内容不存在", kind="not_found")
        text = flow.consent_current(kind)
        return Response(
            {"kind": kind, "title": text.title, "version": text.version, "body": text.body}
        )


class QrIssueApi(APIView):
    """「签约协议」 on the desktop: a QR code for the phone, and the token its progress socket
    needs (valid only in this browser session)."""

    permission_classes = [IsApplicant]

    @extend_schema(request=None, responses={201: OpenApiTypes.OBJECT, **ERROR_RESPONSES})
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
    return {
        "ticket": ticket.pk,
        "purpose": ticket.purpose,
        "short_code": ticket.short_code,
        "url": qr.qr_url(ticket),
        "png_base64": base64.b64encode(qr.qr_png(ticket)).decode(),
        "expires_at": ticket.expires_at.isoformat(),
        "server_time_ms": int(timezone.now().timestamp() * 1000),
        "stream": f"qr.{ticket.pk}",
        "stream_token": qr_stream_token(ticket_id=str(ticket.pk), expires_at=ticket.expires_at),
    }


class QrOpenApi(APIView):
    """The phone opened a QR code (its token from the URL): starts the phone's signing
    session for that ticket (cookies, see mobile_api/signer.py) and says where the phone goes
    next. No login is needed and none is made; another applicant's login is refused."""

    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        token = serializers.CharField(max_length=64)

    @extend_schema(request=InputSerializer, responses=OBJ)
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
            {
                "agreement": session.agreement_id,
                "purpose": session.purpose,
                "next_url": phone_page_url(session),
                "took_over": opened.took_over,
            }
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


class StepApi(APIView):
    """One step of the phone flow: POST …/steps/<name>/, by the applicant's own login or the
    phone's signing session (only the steps of its ticket's stage). Steps out of order get
    409 `step_out_of_order`."""

    permission_classes = [AllowAny]

    class VersionsSerializer(serializers.Serializer):
        versions = serializers.DictField(child=serializers.IntegerField(min_value=1))

    class ReadSerializer(serializers.Serializer):
        scrolled_to_end = serializers.BooleanField()
        reading_seconds = serializers.IntegerField(min_value=0, max_value=86400)

    class CodeSerializer(serializers.Serializer):
        code = serializers.RegexField(r"^\d{6}$")

    class FaceSerializer(serializers.Serializer):
        order_id = serializers.RegexField(r"^[A-Za-z0-9_-]{4,64}$")
        token = serializers.CharField(max_length=200, required=False, default="")

    ACTIONS = {
        "contract-viewed": "contract_view",
        "ecert-consent": "ecert_consent",
        "identity-confirm": "identity_confirm",
        "read": "read",
        "face-start": "face",
        "face-complete": "face",
        "signature-complete": "signature",
        "sms-code": "sms_code",
        "submit": "submit",
    }

    def _face_start(self, request, signer: Signer):
        """Record the intent, then call the provider (outside any transaction); the phone
        goes to the provider's page and comes back to the flow page with the order id. A
        phone that scanned a later stage's code without having passed this attempt's face
        check proves itself again (signing/phone.py `face_reverify_needed`)."""
        now = timezone.now()
        agreement = signer.agreement
        return_url = absolute_url(f"/h5/signing/{agreement.pk}/sign/?face_order={{order_id}}")
        callback_url = absolute_url(f"/api/v1/face/callback/{face_provider_name()}/")
        try:
            face_check, start = face_services.face_check_begin(
                agreement=agreement,
                now=now,
                return_url=return_url,
                callback_url=callback_url,
                signing_session_id=signer.session.pk if signer.session else None,
                reverify=self._reverify(signer),
            )
        except FaceProviderError as exc:
            return Response(error_body(exc.code, exc.message), status=503)
        return Response({"order_id": face_check.order_id, "redirect_url": start.redirect_url})

    @staticmethod
    def _reverify(signer: Signer) -> bool:
        return signer.session is not None and phone.face_reverify_needed(
            session=signer.session, agreement=signer.agreement
        )

    def _face_complete(self, request, signer: Signer, common: dict):
        data = self.FaceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        face_check = face_services.face_check_for_return(
            agreement=signer.agreement,
            order_id=data.validated_data["order_id"],
            provider_token=data.validated_data["token"],
            now=common["now"],
        )
        if self._reverify(signer):
            phone.phone_face_reverified(
                session=signer.session, face_check=face_check, ctx=common["ctx"], now=common["now"]
            )
            signer.agreement.refresh_from_db()
            return signer.agreement
        return flow.face_verified(face_check=face_check, **common)

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OBJ)
    def post(self, request, agreement_id: int, step: str):
        action = self.ACTIONS.get(step)
        if action is None:
            raise DomainError("not_found", "请求的内容不存在", kind="not_found")
        signer = signer_for(request, agreement_id=agreement_id, action=action)
        common = {
            "agreement_id": signer.agreement.pk,
            "applicant": signer.applicant,
            "ctx": signer.ctx(request),
            "now": timezone.now(),
        }
        if step == "contract-viewed":
            result = flow.contract_view(**common)
        elif step in ("ecert-consent", "identity-confirm"):
            data = self.VersionsSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            action_fn = flow.ecert_consent if step == "ecert-consent" else flow.identity_confirm
            result = action_fn(versions=data.validated_data["versions"], **common)
        elif step == "read":
            data = self.ReadSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            result = flow.agreement_read(**data.validated_data, **common)
        elif step == "face-start":
            return self._face_start(request, signer)
        elif step == "face-complete":
            result = self._face_complete(request, signer, common)
        elif step == "signature-complete":
            result = flow.signature_complete(**common)
        elif step == "sms-code":
            flow.sign_code_send(**common)
            return Response({"sent": True, "resend_after": 60}, status=status.HTTP_202_ACCEPTED)
        else:  # submit
            data = self.CodeSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            result = flow.sign_submit(code=data.validated_data["code"], **common)
        return Response(agreement_json(result))


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

    @extend_schema(request=InputSerializer, responses=OBJ)
    def put(self, request, agreement_id: int, index: int):
        signer = signer_for(request, agreement_id=agreement_id, action="signature")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        character = flow.signature_character_save(
            agreement_id=signer.agreement.pk,
            applicant=signer.applicant,
            index=index,
            ctx=signer.ctx(request),
            now=timezone.now(),
            **data.validated_data,
        )
        return Response({"index": character.index, "png_sha256": character.png_sha256})


class AbandonApi(APIView):
    """《放弃签约声明书》: GET the declaration text and version; POST to abandon."""

    permission_classes = [IsApplicant]

    class InputSerializer(serializers.Serializer):
        declaration_version = serializers.RegexField(r"^[0-9a-f]{64}$")

    @extend_schema(responses=OBJ)
    def get(self, request, agreement_id: int):
        text, version = services.abandon_declaration(_agreement(request, agreement_id))
        return Response({"text": text, "version": version})

    @extend_schema(request=InputSerializer, responses=OBJ)
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
        return Response(agreement_json(result))


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

    @extend_schema(responses=OBJ)
    def get(self, request, code: str):
        agreement = Agreement.objects.filter(verification_code=code.upper()).first()
        if agreement is None:
            raise DomainError(
                "verification_not_found", "未找到该验证码对应的协议", kind="not_found"
            )
        document = document_latest(agreement=agreement)
        return Response(
            {
                "title": agreement.title,
                "status": agreement.status,
                "status_label": agreement.get_status_display(),
                "signed_at": agreement.signed_at.isoformat() if agreement.signed_at else None,
                "sealed_at": agreement.sealed_at.isoformat() if agreement.sealed_at else None,
                "text_sha256": agreement.text_hash,
                "pdf_sha256": document.sha256 if document else None,
            }
        )
