"""The phone flow of guide 001, enforced in order by the server:
电子合同 → 「下一步」 → consent (e-certificate service agreement + privacy policy) → 「开始」 →
real-name details → consent (privacy policy + biometric rules) → 「确定」 → face recognition →
read the whole agreement → 「阅读并确认」 → one handwritten character per box → 「确定」 →
SMS code → 「提交」 → 已签字.

Each step locks the agreement, accepts only the next step, writes evidence (with the text
version shown) and tells the desktop page showing the QR code (QR progress stream)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from django.db import transaction

from accounts.models import Applicant
from core.context import RequestContext
from core.errors import Conflict, NotAllowed, ValidationFailed
from events.services import events_record
from events.streams import qr_stream
from signing.agreements.evidence import evidence_append
from signing.agreements.phone import phone_session_still_live
from signing.agreements.services import agreement_lock
from signing.agreements.signature import character_clean
from signing.agreements.transitions import (
    agreement_signable_check,
    lease_order_check,
    signing_window_check,
    transition_apply,
)
from signing.models import Agreement, ConsentKind, ConsentText, QrTicket, SignatureCharacter
from sms.models import Purpose
from sms.services import sms_code_send, sms_code_verify

Step = Agreement.Step
MIN_READING_SECONDS = 5


def _open(
    agreement: Agreement, applicant: Applicant, now: datetime, ctx: RequestContext | None = None
) -> None:
    if ctx is not None and ctx.signing_session is not None:
        # The phone's signing session was not taken over or expired since the request began
        # (under the agreement's lock, which a takeover takes too).
        phone_session_still_live(session_id=ctx.signing_session, now=now)
    if agreement.family.main_applicant_id != applicant.pk:
        raise NotAllowed("agreement_not_yours", "该协议不属于您，只有主申请人本人可以签署")
    agreement_signable_check(agreement)
    signing_window_check(agreement, now)
    lease_order_check(agreement)


def _progress(agreement: Agreement, step: int, now: datetime) -> None:
    """Tell every desktop page showing this agreement's signing QR code."""
    tickets = QrTicket.objects.filter(agreement=agreement, expires_at__gt=now).values_list(
        "pk", flat=True
    )
    events_record(
        events=[
            (qr_stream(str(pk)), "qr.step", {"step": int(step), "label": Step(step).label})
            for pk in tickets
        ],
        now=now,
    )


def _advance(
    *,
    agreement_id: int,
    applicant: Applicant,
    to: int,
    kind: str,
    data: dict,
    ctx: RequestContext,
    now: datetime,
    check=None,
) -> Agreement:
    with transaction.atomic():
        agreement = agreement_lock(agreement_id)
        _open(agreement, applicant, now, ctx)
        if agreement.step != to - 1:
            if agreement.step >= to:
                return agreement  # a repeated tap: already done
            raise Conflict("step_out_of_order", f"请先完成「{Step(agreement.step + 1).label}」")
        if check is not None:
            check(agreement)
        agreement.step = to
        agreement.save(update_fields=["step"])
        evidence_append(
            agreement=agreement,
            kind=kind,
            actor=applicant.user,
            ctx=ctx,
            now=now,
            data={"attempt": agreement.attempt, "text_sha256": agreement.text_hash, **data},
        )
        _progress(agreement, to, now)
    return agreement


def consent_current(kind: str) -> ConsentText:
    text = ConsentText.objects.filter(kind=kind).order_by("-version").first()
    if text is None:
        raise NotAllowed("consent_missing", "条款未配置，请联系工作人员")
    return text


def _consents(versions: dict, kinds: list[str]) -> dict:
    shown = {}
    for kind in kinds:
        current = consent_current(kind)
        if versions.get(kind) != current.version:
            raise Conflict("consent_outdated", f"《{current.title}》已更新，请刷新后重新阅读")
        shown[kind] = {
            "version": current.version,
            "sha256": hashlib.sha256(current.body.encode()).hexdigest(),
        }
    return shown


def contract_view(
    *, agreement_id: int, applicant: Applicant, ctx: RequestContext, now: datetime
) -> Agreement:
    """电子合同 page, 「下一步」."""
    return _advance(
        agreement_id=agreement_id,
        applicant=applicant,
        to=Step.CONTRACT_VIEWED,
        kind="contract_viewed",
        data={},
        ctx=ctx,
        now=now,
    )


def ecert_consent(
    *, agreement_id: int, applicant: Applicant, versions: dict, ctx: RequestContext, now: datetime
) -> Agreement:
    """Ticked consent to 《电子认证服务协议》《个人信息保护政策》, 「开始」."""
    shown = _consents(versions, [ConsentKind.ECERT_SERVICE, ConsentKind.PRIVACY])
    return _advance(
        agreement_id=agreement_id,
        applicant=applicant,
        to=Step.ECERT_CONSENTED,
        kind="consented_ecert",
        data={"consents": shown},
        ctx=ctx,
        now=now,
    )


def identity_confirm(
    *, agreement_id: int, applicant: Applicant, versions: dict, ctx: RequestContext, now: datetime
) -> Agreement:
    """Checked the real-name details and ticked 《个人信息保护政策》《个人生物识别信息保护规则》."""
    shown = _consents(versions, [ConsentKind.PRIVACY, ConsentKind.BIOMETRIC])
    return _advance(
        agreement_id=agreement_id,
        applicant=applicant,
        to=Step.IDENTITY_CONFIRMED,
        kind="identity_confirmed",
        data={
            "consents": shown,
            "name": applicant.real_name,
            "id_number_masked": applicant.id_number_masked,
        },
        ctx=ctx,
        now=now,
    )


def face_verified(
    *, agreement_id: int, applicant: Applicant, face_check, ctx: RequestContext, now: datetime
) -> Agreement:
    """A passed face check of this attempt moves the flow on (its id and score are kept,
    never the image)."""

    def check(agreement):
        if face_check.agreement_id != agreement.pk or face_check.attempt != agreement.attempt:
            raise Conflict("face_check_mismatch", "人脸识别记录不属于本次签约")
        if ctx.signing_session is not None and face_check.signing_session_id != ctx.signing_session:
            # A phone proves itself with a face check it started itself.
            raise Conflict("face_check_mismatch", "人脸识别记录不属于本次签约")
        if face_check.status != "passed":
            raise NotAllowed("face_not_passed", "人脸识别未通过，请重试")

    return _advance(
        agreement_id=agreement_id,
        applicant=applicant,
        to=Step.FACE_VERIFIED,
        kind="face_verified",
        data={
            "provider": face_check.provider,
            "order_id": face_check.order_id,
            "result_id": face_check.result_id,
            "score": face_check.score,
        },
        ctx=ctx,
        now=now,
        check=check,
    )


def agreement_read(
    *,
    agreement_id: int,
    applicant: Applicant,
    scrolled_to_end: bool,
    reading_seconds: int,
    ctx: RequestContext,
    now: datetime,
) -> Agreement:
    """「阅读并确认」 after scrolling to the end; the reading time is recorded."""
    if not scrolled_to_end:
        raise ValidationFailed("read_to_end", "请阅读完整协议后再确认")
    if reading_seconds < MIN_READING_SECONDS:
        raise ValidationFailed("read_too_fast", "请仔细阅读协议内容")

    return _advance(
        agreement_id=agreement_id,
        applicant=applicant,
        to=Step.AGREEMENT_READ,
        kind="agreement_read",
        data={"reading_seconds": reading_seconds},
        ctx=ctx,
        now=now,
    )


def signature_character_save(
    *,
    agreement_id: int,
    applicant: Applicant,
    index: int,
    strokes,
    width,
    height,
    ctx: RequestContext,
    now: datetime,
) -> SignatureCharacter:
    """One character, in its own box; saving a box again redoes it (「清除」 then rewrite).
    Allowed after reading and before 「确定」. Raises `signature_invalid`, `box_unknown`."""
    clean = character_clean(strokes=strokes, width=width, height=height)
    with transaction.atomic():
        agreement = agreement_lock(agreement_id)
        _open(agreement, applicant, now, ctx)
        if agreement.step != Step.AGREEMENT_READ:
            raise Conflict(
                "step_out_of_order",
                "请先阅读并确认协议"
                if agreement.step < Step.AGREEMENT_READ
                else "签名已确认，如需修改请联系工作人员",
            )
        if not 0 <= index < len(agreement.signer_name):
            raise ValidationFailed("box_unknown", "签字框不存在")
        character, _ = SignatureCharacter.objects.update_or_create(
            agreement=agreement,
            attempt=agreement.attempt,
            index=index,
            defaults={
                "expected": agreement.signer_name[index],
                "strokes": clean.strokes,
                "box_width": clean.width,
                "box_height": clean.height,
                "png": clean.png,
                "png_sha256": clean.png_sha256,
                "strokes_sha256": clean.strokes_sha256,
                "drawn_at": now,
            },
        )
        evidence_append(
            agreement=agreement,
            kind="character_drawn",
            actor=applicant.user,
            ctx=ctx,
            now=now,
            data={
                "attempt": agreement.attempt,
                "index": index,
                "expected": character.expected,
                "strokes_sha256": clean.strokes_sha256,
                "png_sha256": clean.png_sha256,
            },
        )
    return character


def signature_complete(
    *, agreement_id: int, applicant: Applicant, ctx: RequestContext, now: datetime
) -> Agreement:
    """「确定」: every character of the signer's name has its box."""

    def check(agreement):
        drawn = set(
            SignatureCharacter.objects.filter(
                agreement=agreement, attempt=agreement.attempt
            ).values_list("index", flat=True)
        )
        missing = [i for i in range(len(agreement.signer_name)) if i not in drawn]
        if missing:
            raise ValidationFailed(
                "signature_incomplete", f"请写完「{agreement.signer_name}」的每一个字"
            )

    return _advance(
        agreement_id=agreement_id,
        applicant=applicant,
        to=Step.SIGNATURE_DRAWN,
        kind="signature_confirmed",
        data={},
        ctx=ctx,
        now=now,
        check=check,
    )


def _code_subject(agreement: Agreement) -> str:
    return f"agreement:{agreement.pk}:{agreement.attempt}"


def sign_code_send(
    *, agreement_id: int, applicant: Applicant, ctx: RequestContext, now: datetime
) -> None:
    """The SMS code for 「提交」, to the registered mobile, once the signature is confirmed."""
    agreement = Agreement.objects.select_related("family").get(pk=agreement_id)
    _open(agreement, applicant, now, ctx)
    if agreement.step != Step.SIGNATURE_DRAWN:
        raise Conflict("step_out_of_order", "请先完成签名")
    sms_code_send(
        purpose=Purpose.SIGN,
        subject=_code_subject(agreement),
        phone=applicant.mobile,
        ip=ctx.ip,
        now=now,
    )


def sign_submit(
    *, agreement_id: int, applicant: Applicant, code: str, ctx: RequestContext, now: datetime
) -> Agreement:
    """「提交」: the SMS code verified, the agreement becomes 已签字 and its PDF is signed on
    the applicant's behalf (the key is used only now: after the face check and the code)."""
    from signing.agreements.documents import document_sign

    agreement = Agreement.objects.get(pk=agreement_id)
    _open(agreement, applicant, now, ctx)
    if agreement.step != Step.SIGNATURE_DRAWN:
        raise Conflict("step_out_of_order", "请先完成签名")
    sms_code_verify(
        purpose=Purpose.SIGN,
        subject=_code_subject(agreement),
        phone=applicant.mobile,
        code=code,
        now=now,
    )
    with transaction.atomic():
        agreement = agreement_lock(agreement_id)
        _open(agreement, applicant, now, ctx)
        if agreement.step != Step.SIGNATURE_DRAWN:
            raise Conflict("step_out_of_order", "请先完成签名")
        fields = transition_apply(agreement, Agreement.Status.SIGNED)
        agreement.step = Step.SUBMITTED
        agreement.signed_at = now
        agreement.save(update_fields=[*fields, "step", "signed_at"])
        document = document_sign(agreement=agreement, now=now)
        evidence_append(
            agreement=agreement,
            kind="submitted",
            actor=applicant.user,
            ctx=ctx,
            now=now,
            data={
                "attempt": agreement.attempt,
                "text_sha256": agreement.text_hash,
                "pdf_sha256": document.sha256,
                "sms_verified": True,
            },
        )
        _progress(agreement, Step.SUBMITTED, now)
    return agreement
