"""The phone's way into one agreement: signing sessions started by opening a QR ticket.

Guide 001 has the applicant scan the desktop's 「签约协议」 code (or a screenshot of it) with
WeChat, and the 电子合同 page opens at once; guide 000 has the main applicant scan each
screen code (face check, contract, deposit) and finish that stage on the phone. Neither logs
in on the phone, and the desktop stays logged in throughout. So opening a ticket starts a
*signing session* on the phone (signing/models.py `SigningSession`):

- scoped to the ticket's agreement and purpose: a face ticket allows the phone steps up to
  the face check, a lease's contract ticket the reading, signature and submission, a deposit
  ticket the deposit; the rent-subsidy agreement's one ticket allows its whole flow;
- not an account login: it never creates, ends or replaces a device session, and the
  desktop's login never ends it;
- useful until the ticket expires (`QR_TTL` below), then refused;
- proved as the guides prove identity: until a face check of the current attempt has passed
  on this phone (its device id), the phone sees masked details only, and submitting needs
  the SMS code sent to the registered mobile;
- one phone at a time: opening the same ticket on a second phone takes over (the first is
  told, and the takeover is in the evidence chain).

Every scan, refused or not, is a QrScan row; every accepted scan and takeover is evidence.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from accounts.models import Applicant
from core.context import RequestContext
from core.errors import Conflict, DomainError, NotAllowed
from core.locking import lock_first
from events.services import event_record
from events.streams import qr_stream
from signing.agreements.evidence import evidence_append
from signing.agreements.services import agreement_lock
from signing.agreements.transitions import agreement_signable_check
from signing.models import (
    LEASE_QR_PURPOSE,
    Agreement,
    Evidence,
    FaceCheck,
    Lease,
    QrScan,
    QrTicket,
    SigningSession,
    lease_stage,
)

Step = Agreement.Step
Purpose = QrTicket.Purpose

# What each kind of session may do on the phone (the API names the action it serves).
FACE_ACTIONS = {"view", "contract_view", "ecert_consent", "identity_confirm", "face"}
CONTRACT_ACTIONS = {"view", "face", "read", "signature", "sms_code", "submit"}
DEPOSIT_ACTIONS = {"view", "face", "deposit"}
SIGN_ACTIONS = FACE_ACTIONS | CONTRACT_ACTIONS
# What only a phone that passed this attempt's face check may do (the text, the signature,
# the submission, the payment all come after the face check in both guides).
VERIFIED_ACTIONS = {"read", "signature", "sms_code", "submit", "deposit"}


def _qr_ttl(purpose: str) -> timedelta:
    return timedelta(seconds=settings.SIGNING["QR_TTL_SECONDS"][purpose])


def qr_ticket_expiry(*, agreement: Agreement, purpose: str, now: datetime) -> datetime:
    """A ticket lives `SIGNING["QR_TTL_SECONDS"][purpose]`, never past the signing window.
    The desktop page issues a new one when it runs out."""
    return min(now + _qr_ttl(purpose), agreement.window_ends_at)


class SigningSessionEnded(DomainError):
    kind = "unauthenticated"
    code = "signing_session_ended"
    message = "本次扫码签约已失效，请在电脑端重新获取二维码后扫码"


class SigningSessionTakenOver(SigningSessionEnded):
    code = "signing_session_taken_over"
    message = "该签约二维码已在另一部手机上打开，本机已停止签约。如非本人操作，请立即联系工作人员"


class QrInvalid(DomainError):
    kind = "not_found"
    code = "qr_invalid"
    message = "二维码无效，请在电脑端重新获取"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class PhoneOpen:
    session: SigningSession
    secret: str  # for the phone's cookie; only its hash is stored
    took_over: bool


def _allowed_actions(session: SigningSession, agreement: Agreement) -> set[str]:
    if session.purpose == Purpose.FACE:
        return FACE_ACTIONS
    if session.purpose == Purpose.DEPOSIT:
        return DEPOSIT_ACTIONS
    is_lease = Lease.objects.filter(agreement=agreement).exists()
    return CONTRACT_ACTIONS if is_lease else SIGN_ACTIONS


def _stage_of_lease(agreement: Agreement) -> str | None:
    lease = Lease.objects.filter(agreement=agreement).first()
    if lease is None:
        return None
    return LEASE_QR_PURPOSE.get(lease_stage(lease, agreement))


# A code scanned when nothing is left to sign (a screenshot opened again after signing) is
# said in the words of a scan, not the signing steps' 「…，不能签署」: same rule, same code
# and status (`agreement_signable_check`), so the page shows it as information.
SCAN_NOT_PENDING: dict[str, str] = {
    Agreement.Status.SIGNED: "该协议已签字，无需再次扫码",
    Agreement.Status.SEALED: "该协议已签字盖章，无需再次扫码",
    Agreement.Status.ABANDONED: "该协议已放弃签约，无需扫码",
    Agreement.Status.VOID: "该协议已作废，无需扫码",
}


def _signable_for_scan(agreement: Agreement, *, signed_too: bool = False) -> None:
    try:
        agreement_signable_check(agreement, signed_too=signed_too)
    except Conflict as error:
        if error.code != "agreement_not_pending" or agreement.status not in SCAN_NOT_PENDING:
            raise
        raise Conflict(error.code, SCAN_NOT_PENDING[agreement.status]) from error


def _check_ticket_current(ticket: QrTicket, agreement: Agreement) -> None:
    """A ticket of a stage that is over (a face code after the face check passed) is
    refused: the desktop shows the code of the current stage."""
    _signable_for_scan(agreement, signed_too=True)
    current = _stage_of_lease(agreement)
    if current is None:  # an agreement of guide 001: one code for the whole flow
        _signable_for_scan(agreement)
        return
    if current != ticket.purpose:
        raise NotAllowed(
            "qr_stage_mismatch",
            "该二维码对应的签约环节已结束，请扫描电脑端当前显示的二维码",
        )


def phone_session_open(
    *,
    token: str,
    applicant: Applicant | None,
    device_id: str,
    ctx: RequestContext,
    now: datetime,
) -> PhoneOpen:
    """The phone opened a QR ticket's URL. Starts a signing session for that ticket (ending
    the one another phone had: a takeover) and records the scan, its evidence and, on the
    first accepted scan, 已扫码 to the desktop. `applicant` is whoever is logged in on the
    phone, if anyone: logging in is not needed, but another applicant's login is refused.

    Only the agreement's newest code of a purpose opens (the one on the desktop's screen,
    whose 识别码 the phone then shows); an earlier one is refused with `qr_superseded`.

    Locks the agreement row (serialises scans and takeovers with the phone steps and with
    issuing a code). Publishes `qr.scanned` on the ticket's stream and, on a takeover,
    `qr.taken_over` on the ended session's. Raises `qr_invalid`, `qr_expired`,
    `qr_superseded`, `qr_not_yours`, `qr_stage_mismatch`, `agreement_not_pending`.
    Every refusal of a known ticket is recorded with its reason."""
    ticket = QrTicket.objects.filter(token=token or "").first()
    if ticket is None:
        raise QrInvalid()
    device_hash = _hash(device_id)

    def check(agreement: Agreement) -> None:
        if now >= ticket.expires_at:
            raise NotAllowed("qr_expired", "二维码已过期，请在电脑端刷新二维码后重新扫码")
        if applicant is not None and agreement.family.main_applicant_id != applicant.pk:
            raise NotAllowed(
                "qr_not_yours",
                "您当前登录的账号不是该协议的主申请人，只有主申请人本人可以扫码签约",
            )
        _check_ticket_current(ticket, agreement)
        newer = QrTicket.objects.filter(
            agreement_id=agreement.pk, purpose=ticket.purpose, pk__gt=ticket.pk
        )
        if newer.exists():  # under the agreement's lock, which issuing a code takes too
            raise NotAllowed("qr_superseded", "该二维码已更新，请扫描电脑端当前显示的二维码")

    try:
        return _open_locked(ticket, applicant, device_hash, check, ctx, now)
    except DomainError as error:
        # Recorded outside the refused transaction, so that the record stays.
        QrScan.objects.create(
            ticket=ticket,
            at=now,
            user=applicant.user if applicant else None,
            accepted=False,
            reason={"qr_expired": "expired", "qr_not_yours": "not_owner"}.get(
                error.code, error.code
            ),
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
        raise


def _open_locked(ticket, applicant, device_hash, check, ctx, now) -> PhoneOpen:
    with transaction.atomic():
        agreement = agreement_lock(ticket.agreement_id)
        check(agreement)
        # One phone at a time for the agreement's stage, whichever of its codes it opened
        # (a phone still signing through the code the desktop showed before a reload).
        previous = lock_first(
            SigningSession.objects.filter(
                agreement_id=agreement.pk, purpose=ticket.purpose, ended_at__isnull=True
            ).order_by("pk")
        )
        took_over = False
        if previous is not None:
            previous.ended_at = now
            took_over = previous.device_hash != device_hash
            previous.end_reason = (
                SigningSession.EndReason.TAKEN_OVER
                if took_over
                else SigningSession.EndReason.SUPERSEDED  # the same phone scanned again
            )
            previous.save(update_fields=["ended_at", "end_reason"])
        secret = new_secret()
        session = SigningSession.objects.create(
            ticket=ticket,
            agreement=agreement,
            purpose=ticket.purpose,
            secret_hash=_hash(secret),
            device_hash=device_hash,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            created_at=now,
            expires_at=ticket.expires_at,
        )
        first = not ticket.scans.filter(accepted=True).exists()
        QrScan.objects.create(
            ticket=ticket,
            session=session,
            at=now,
            user=applicant.user if applicant else None,
            accepted=True,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
        evidence_append(
            agreement=agreement,
            kind="qr_scanned",
            actor=applicant.user if applicant else None,
            ctx=ctx,
            now=now,
            data={
                "ticket": ticket.pk,
                "purpose": ticket.purpose,
                "signing_session": session.pk,
                "device_sha256": device_hash,
                "logged_in": applicant is not None,
            },
        )
        stream = qr_stream(str(ticket.pk))
        if took_over:
            evidence_append(
                agreement=agreement,
                kind="phone_taken_over",
                ctx=ctx,
                now=now,
                data={
                    "ticket": ticket.pk,
                    "ended_session": previous.pk,
                    "ended_device_sha256": previous.device_hash,
                    "signing_session": session.pk,
                    "device_sha256": device_hash,
                },
            )
            event_record(
                stream=qr_stream(str(previous.ticket_id)),  # where the ended phone listens
                type="qr.taken_over",
                data={"label": "已在另一部手机上打开", "ended_session": previous.pk},
                now=now,
            )
        if first:
            event_record(stream=stream, type="qr.scanned", data={"label": "已扫码"}, now=now)
    return PhoneOpen(session=session, secret=secret, took_over=took_over)


def phone_session_get(*, secret: str, now: datetime) -> SigningSession | None:
    """The signing session a phone's cookie names, if it is live. Raises
    `signing_session_taken_over` for one that another phone took over, and
    `signing_session_ended` for one that expired; None for no or an unknown cookie."""
    if not secret:
        return None
    session = (
        SigningSession.objects.select_related("agreement__family__main_applicant", "ticket")
        .filter(secret_hash=_hash(secret))
        .first()
    )
    if session is None:
        return None
    if session.end_reason == SigningSession.EndReason.TAKEN_OVER:
        raise SigningSessionTakenOver()
    if session.ended_at is not None or now >= session.expires_at:
        raise SigningSessionEnded()
    return session


def phone_session_allows(
    *, session: SigningSession, agreement_id: int, action: str, now: datetime
) -> None:
    """Whether the phone's session may do `action` on agreement `agreement_id`. Raises
    `signing_session_scope` (another agreement, or a step of another stage), `face_required`
    (reading, signing, submitting or paying on a phone that has not passed this attempt's face
    check), `signing_session_ended` (expired meanwhile). Services check the rest again under the
    agreement's lock (the step order, the window, the status)."""
    if now >= session.expires_at or session.ended_at is not None:
        raise SigningSessionEnded()
    if session.agreement_id != agreement_id:
        raise NotAllowed("signing_session_scope", "本次扫码只能办理对应协议的签约")
    if action not in _allowed_actions(session, session.agreement):
        raise NotAllowed(
            "signing_session_scope",
            f"此二维码用于「{session.get_purpose_display()}」，请扫描电脑端当前显示的二维码",
        )
    if action in VERIFIED_ACTIONS and not phone_identity_verified(
        session=session, agreement=session.agreement
    ):
        raise NotAllowed("face_required", "请先在本机完成人脸识别，确认是主申请人本人")


def phone_session_still_live(*, session_id: int, now: datetime) -> None:
    """Under the agreement's lock (the caller holds it): the session was not taken over or
    expired since the request began. A takeover commits under the same lock, so a step
    answered 200 was taken by the live session."""
    row = SigningSession.objects.filter(pk=session_id).values(
        "ended_at", "end_reason", "expires_at"
    )
    found = row.first()
    if found is None:
        raise SigningSessionEnded()
    if found["end_reason"] == SigningSession.EndReason.TAKEN_OVER:
        raise SigningSessionTakenOver()
    if found["ended_at"] is not None or now >= found["expires_at"]:
        raise SigningSessionEnded()


def phone_identity_verified(*, session: SigningSession, agreement: Agreement) -> bool:
    """A face check of the agreement's current attempt passed on this phone (any signing
    session of the same device). Until then the phone sees masked details only."""
    return FaceCheck.objects.filter(
        agreement=agreement,
        attempt=agreement.attempt,
        status=FaceCheck.Status.PASSED,
        signing_session__device_hash=session.device_hash,
    ).exists()


def face_reverify_needed(*, session: SigningSession, agreement: Agreement) -> bool:
    """A later stage's code opened on a phone that did not pass this attempt's face check:
    it checks the face again before it sees the contract or pays."""
    return agreement.step >= Step.FACE_VERIFIED and not phone_identity_verified(
        session=session, agreement=agreement
    )


def phone_face_reverified(
    *, session: SigningSession, face_check: FaceCheck, ctx: RequestContext, now: datetime
) -> None:
    """A passed face check of the current attempt, started by this session after the flow's
    own face step: recorded as evidence once per check (the return page may be reloaded);
    the phone is then verified (derived, see `phone_identity_verified`). Raises
    `face_check_mismatch`, `face_not_passed`."""
    from core.errors import Conflict

    with transaction.atomic():
        agreement = agreement_lock(session.agreement_id)
        phone_session_still_live(session_id=session.pk, now=now)
        if (
            face_check.agreement_id != agreement.pk
            or face_check.attempt != agreement.attempt
            or face_check.signing_session_id != session.pk
        ):
            raise Conflict("face_check_mismatch", "人脸识别记录不属于本次签约")
        if face_check.status != FaceCheck.Status.PASSED:
            raise NotAllowed("face_not_passed", "人脸识别未通过，请重试")
        if Evidence.objects.filter(
            agreement=agreement, kind="face_reverified", data__order_id=face_check.order_id
        ).exists():
            return
        evidence_append(
            agreement=agreement,
            kind="face_reverified",
            ctx=ctx,
            now=now,
            data={
                "attempt": agreement.attempt,
                "signing_session": session.pk,
                "order_id": face_check.order_id,
                "result_id": face_check.result_id,
                "score": face_check.score,
            },
        )
