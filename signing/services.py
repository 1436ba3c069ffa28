"""Agreement lifecycle: create and push (staff), void at the window's end (clock), abandon
(《放弃签约声明书》), staff review: approve → seal, reject → 待签字 with the reason by SMS.

Every change locks the agreement row first, checks the transition table, writes its
evidence, and queues SMS in the same transaction (sent after commit)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.template import Context, Engine

from accounts.models import Family, User
from core.context import RequestContext
from core.errors import NotAllowed, ValidationFailed
from core.fmt import clause, datetime_zh
from signing.consult import consult_help
from signing.evidence import evidence_append
from signing.lease_gates import lease_review_gate, lease_void_due
from signing.models import Agreement, AgreementTemplate, Lease
from signing.transitions import transition_apply
from sms.services import sms_message_queue

_ENGINE = Engine(autoescape=False)  # plain text out: no HTML escaping of names
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I look-alikes


def _verification_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


def _deadline(at: datetime) -> str:
    return datetime_zh(at)


def agreement_lock(agreement_id: int) -> Agreement:
    return (
        Agreement.objects.select_for_update()
        .select_related("family__main_applicant")
        .get(pk=agreement_id)
    )


def agreement_create(
    *,
    family: Family,
    template: AgreementTemplate,
    window_starts_at: datetime,
    window_ends_at: datetime,
    context: dict | None = None,
    actor: User | None,
    now: datetime,
) -> Agreement:
    """Render the template for the family and create a 待签字 agreement with its signing
    window. The exact text is kept with its SHA-256. Raises `invalid_window`,
    `agreement_exists` (a live agreement of this template already exists)."""
    if window_ends_at <= window_starts_at:
        raise ValidationFailed("invalid_window", "签约截止时间须晚于开始时间")
    applicant = family.main_applicant
    variables = {
        "name": applicant.real_name,
        "id_number_masked": applicant.id_number_masked,
        "rank": family.rank,
        "household_size": family.household_size,
        "window_starts_at": _deadline(window_starts_at),
        "window_ends_at": _deadline(window_ends_at),
        **(context or {}),
    }
    text = _ENGINE.from_string(template.body).render(Context(variables))
    with transaction.atomic():
        if Agreement.objects.filter(
            family=family, template=template, status__in=["pending", "signed", "sealed"]
        ).exists():
            raise NotAllowed("agreement_exists", "该家庭已有此协议")
        agreement = Agreement.objects.create(
            family=family,
            template=template,
            title=template.title,
            rendered_text=text,
            text_hash=hashlib.sha256(text.encode()).hexdigest(),
            signer_name=applicant.real_name,
            window_starts_at=window_starts_at,
            window_ends_at=window_ends_at,
            verification_code=_verification_code(),
            created_by=actor,
            created_at=now,
            context={k: str(v) for k, v in variables.items()},
        )
        evidence_append(
            agreement=agreement,
            kind="created",
            actor=actor,
            now=now,
            data={
                "template": template.pk,
                "template_version": template.version,
                "text_sha256": agreement.text_hash,
            },
        )
    return agreement


def agreement_push(
    *, agreement_id: int, actor: User | None, ip: str = "", now: datetime
) -> Agreement:
    """Tell the applicant by SMS that the agreement waits for them (once; pushing again
    re-sends). Raises `invalid_transition` unless pending."""
    with transaction.atomic():
        agreement = agreement_lock(agreement_id)
        if agreement.status != Agreement.Status.PENDING:
            raise NotAllowed("invalid_transition", "只有待签字的协议可以推送")
        agreement.pushed_at = now
        agreement.save(update_fields=["pushed_at"])
        applicant = agreement.family.main_applicant
        sms_message_queue(
            phone=applicant.mobile,
            kind="agreement_pushed",
            params=[agreement.title, _deadline(agreement.window_ends_at)],
            now=now,
        )
        evidence_append(
            agreement=agreement,
            kind="pushed",
            actor=actor,
            ctx=RequestContext(ip=ip),
            data={"phone_masked": applicant.mobile_masked},
            now=now,
        )
    return agreement


def agreements_void_due(*, now: datetime) -> list[int]:
    """作废: every agreement still 待签字 when its window ends, and every lease signed but with
    its deposit still unpaid then. Conditional on the status under the row lock, so two
    clocks void each one once. Signed agreements (and paid leases) stay for review."""
    # Each tick's reads touch one table per statement (no join): a statement holding one
    # table while waiting for another can deadlock with a TRUNCATE or DDL taking them all.
    unpaid = list(
        Lease.objects.filter(deposit_paid_at__isnull=True).values_list("agreement_id", flat=True)
    )
    unpaid_lease = Q(status=Agreement.Status.SIGNED, pk__in=unpaid)
    voided = []
    for agreement_id in Agreement.objects.filter(
        Q(status=Agreement.Status.PENDING) | unpaid_lease, window_ends_at__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic():
            agreement = agreement_lock(agreement_id)
            if not lease_void_due(agreement):
                continue
            fields = transition_apply(agreement, Agreement.Status.VOID)
            agreement.closed_at = now
            agreement.save(update_fields=[*fields, "closed_at"])
            evidence_append(
                agreement=agreement,
                kind="voided",
                now=now,
                data={"window_ends_at": agreement.window_ends_at.isoformat()},
            )
            voided.append(agreement_id)
    return voided


ABANDON_DECLARATION = "放弃签约声明书\n本人自愿放弃本次《{title}》的签约，知悉放弃后本协议不再签署，相关资格按规定处理。"


def agreement_abandon(
    *,
    agreement_id: int,
    actor: User,
    on_behalf: bool,
    declaration_version: str,
    ctx: RequestContext,
    now: datetime,
) -> Agreement:
    """《放弃签约声明书》: by the applicant, or by staff on the applicant's behalf (recorded as
    such). Irreversible. Raises `declaration_outdated`, `invalid_transition`."""
    with transaction.atomic():
        agreement = agreement_lock(agreement_id)
        text = ABANDON_DECLARATION.format(title=agreement.title)
        if declaration_version != hashlib.sha256(text.encode()).hexdigest():
            raise ValidationFailed("declaration_outdated", "声明内容已更新，请刷新后重新确认")
        fields = transition_apply(agreement, Agreement.Status.ABANDONED)
        agreement.closed_at = now
        agreement.save(update_fields=[*fields, "closed_at"])
        evidence_append(
            agreement=agreement,
            kind="abandoned",
            actor=actor,
            ctx=ctx,
            now=now,
            data={"on_behalf": on_behalf, "declaration_sha256": declaration_version},
        )
    return agreement


def abandon_declaration(agreement: Agreement) -> tuple[str, str]:
    text = ABANDON_DECLARATION.format(title=agreement.title)
    return text, hashlib.sha256(text.encode()).hexdigest()


def agreement_approve(*, agreement_id: int, actor: User, ip: str = "", now: datetime) -> Agreement:
    """Staff approve a 已签字 agreement: seal it (已盖章) and tell the applicant by SMS.
    The sealed PDF is the signed one plus an incremental seal signature."""
    from signing.documents import document_seal

    with transaction.atomic():
        agreement = agreement_lock(agreement_id)
        lease_review_gate(agreement)
        fields = transition_apply(agreement, Agreement.Status.SEALED)
        agreement.sealed_at = now
        agreement.save(update_fields=[*fields, "sealed_at"])
        sealed = document_seal(agreement=agreement, now=now)
        evidence_append(
            agreement=agreement,
            kind="sealed",
            actor=actor,
            ctx=RequestContext(ip=ip),
            now=now,
            data={"pdf_sha256": sealed.sha256},
        )
        sms_message_queue(
            phone=agreement.family.main_applicant.mobile,
            kind="agreement_sealed",
            params=[agreement.title],
            now=now,
        )
    return agreement


def agreement_reject(
    *, agreement_id: int, actor: User, reason: str, ip: str = "", now: datetime
) -> Agreement:
    """Staff reject a 已签字 agreement: back to 待签字 with the reason, a new signing attempt
    from the first step, and an SMS carrying the reason. Raises `reason_required`."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("reason_required", "请填写退回原因", fields={"reason": ["必填"]})
    with transaction.atomic():
        agreement = agreement_lock(agreement_id)
        lease_review_gate(agreement)
        fields = transition_apply(agreement, Agreement.Status.PENDING)
        agreement.reject_reason = reason[:300]
        agreement.attempt += 1
        agreement.step = Agreement.Step.NONE
        agreement.signed_at = None
        agreement.save(update_fields=[*fields, "reject_reason", "attempt", "step", "signed_at"])
        evidence_append(
            agreement=agreement,
            kind="rejected",
            actor=actor,
            ctx=RequestContext(ip=ip),
            now=now,
            data={"reason": agreement.reject_reason, "next_attempt": agreement.attempt},
        )
        consult = consult_help(agreement.template)
        sms_message_queue(
            phone=agreement.family.main_applicant.mobile,
            kind="agreement_rejected",
            params=[
                agreement.title,
                clause(agreement.reject_reason)[:60],
                _deadline(agreement.window_ends_at),
                consult.phones_text,
                consult.hours,
            ],
            now=now,
        )
    return agreement
