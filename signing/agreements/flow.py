"""The phone flow of guide 001, enforced in order by the server:
电子合同 → 「下一步」 → consent (e-certificate service agreement + privacy policy) → 「开始」 →
real-name details → consent (privacy policy + biometric rules) → 「确定」 → face recognition →
read the whole agreement → 「阅读并确认」 → one handwritten character per box → 「确定」 →
SMS code → 「提交」 → 已签字.

Each step locks the agreement, accepts only the next step, writes evidence (with the text
version shown) and tells the desktop page showing the QR code (QR progress stream)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from django.db import transaction

from accounts.models import Applicant
from core.context import RequestContext
from core.errors import Conflict, NotAllowed, ValidationFailed
from events.services import events_record
from events.streams import qr_stream
from signing.agreements.evidence import evidence_append
from signing.agreements.phone import (
    face_reverify_needed,
    phone_face_reverified,
    phone_session_still_live,
)
from signing.agreements.services import agreement_lock
from signing.agreements.signature import CleanCharacter, character_clean
from signing.agreements.transitions import (
    agreement_signable_check,
    lease_order_check,
    signing_window_check,
    transition_apply,
)
from signing.face.base import FaceStart
from signing.face.services import face_check_begin, face_check_for_return
from signing.models import (
    Agreement,
    ConsentKind,
    ConsentText,
    FaceCheck,
    QrTicket,
    SignatureCharacter,
    SigningSession,
)
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


def _reverify(agreement: Agreement, session: SigningSession | None) -> bool:
    """A phone that scanned a later stage's code without having passed this attempt's face
    check proves itself again (signing/agreements/phone.py `face_reverify_needed`); the
    applicant's own login and the phone of the flow's face step do the flow's step."""
    return session is not None and face_reverify_needed(session=session, agreement=agreement)


def face_start(
    *,
    agreement: Agreement,
    session: SigningSession | None,
    return_url: str,
    callback_url: str,
    now: datetime,
) -> tuple[FaceCheck, FaceStart]:
    """「开始人脸识别」: the flow's face step, or a phone proving itself again (the service
    decides which). Records the intent, then calls the provider (signing/face/services.py
    `face_check_begin`): call it outside any transaction. Raises what that raises."""
    return face_check_begin(
        agreement=agreement,
        now=now,
        return_url=return_url,
        callback_url=callback_url,
        signing_session_id=session.pk if session is not None else None,
        reverify=_reverify(agreement, session),
    )


def face_complete(
    *,
    agreement: Agreement,
    applicant: Applicant,
    session: SigningSession | None,
    order_id: str,
    provider_token: str,
    ctx: RequestContext,
    now: datetime,
) -> Agreement:
    """Back from the provider with the order id (and the provider's token, a hint where to
    look if the callback has not arrived): this agreement's check, with the provider's
    result pulled in (`face_check_for_return`). Then the service decides what the check
    proves: for a phone proving itself again (a check started as a re-check, or a phone
    still unverified), that phone (`phone_face_reverified`; the flow stays where it is),
    otherwise the flow's face step (`face_verified`). Returns the
    agreement as it now is. Call it outside any transaction (the provider may be asked).
    Raises `face_order_unknown`, `face_result_pending`, `face_check_mismatch`,
    `face_not_passed`, and what every step raises."""
    face_check = face_check_for_return(
        agreement=agreement, order_id=order_id, provider_token=provider_token, now=now
    )
    # A passed check makes its phone verified (phone_identity_verified is derived from the
    # checks), so once the result is in, `face_reverify_needed` no longer tells a re-check
    # apart: how the check was started does (FaceCheck.reverify, set by `face_start`).
    if session is not None and (
        face_check.reverify or face_reverify_needed(session=session, agreement=agreement)
    ):
        phone_face_reverified(session=session, face_check=face_check, ctx=ctx, now=now)
        return Agreement.objects.get(pk=agreement.pk)
    return face_verified(
        agreement_id=agreement.pk, applicant=applicant, face_check=face_check, ctx=ctx, now=now
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
        # says how long: the button is enabled at the end, which a short text reaches at once
        raise ValidationFailed(
            "read_too_fast", f"请仔细阅读协议内容，阅读时间不少于{MIN_READING_SECONDS}秒"
        )

    return _advance(
        agreement_id=agreement_id,
        applicant=applicant,
        to=Step.AGREEMENT_READ,
        kind="agreement_read",
        data={"reading_seconds": reading_seconds},
        ctx=ctx,
        now=now,
    )


def _box_open(
    agreement: Agreement, applicant: Applicant, index: int, ctx: RequestContext, now: datetime
) -> None:
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


def _box_precheck(
    agreement_id: int, applicant: Applicant, index: int, ctx: RequestContext, now: datetime
) -> None:
    """The box is open to a character, checked without a lock before the strokes are even
    looked at (checked again under the lock when the character is stored)."""
    agreement = Agreement.objects.select_related("family__main_applicant").get(pk=agreement_id)
    _box_open(agreement, applicant, index, ctx, now)


def _character_store(
    agreement_id: int,
    applicant: Applicant,
    index: int,
    clean: CleanCharacter,
    ctx: RequestContext,
    now: datetime,
) -> SignatureCharacter:
    with transaction.atomic():
        agreement = agreement_lock(agreement_id)
        _box_open(agreement, applicant, index, ctx, now)
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
    Allowed after reading and before 「确定」. The agreement and the box are checked before
    the strokes: a sealed or void agreement answers its state (`agreement_not_pending`, ...),
    a flow not at this step `step_out_of_order`, a box past the name `box_unknown`, and only
    then bad strokes `signature_invalid`. The character is rendered outside the lock."""
    _box_precheck(agreement_id, applicant, index, ctx, now)
    clean = character_clean(strokes=strokes, width=width, height=height)
    return _character_store(agreement_id, applicant, index, clean, ctx, now)


def signature_character_put(
    *,
    agreement_id: int,
    applicant: Applicant,
    index: int,
    read_input: Callable[[], Mapping[str, Any]],
    ctx: RequestContext,
    now: datetime,
) -> SignatureCharacter:
    """`signature_character_save` for a request whose body is not read yet: `read_input`
    parses and validates it (returning `strokes`, `width`, `height`; raising the caller's
    own validation error) and is called only once the agreement and the box are found open,
    so a sealed or void agreement answers its state, never a stroke validation error."""
    _box_precheck(agreement_id, applicant, index, ctx, now)
    data = read_input()
    clean = character_clean(strokes=data["strokes"], width=data["width"], height=data["height"])
    return _character_store(agreement_id, applicant, index, clean, ctx, now)


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
