"""Agreement lifecycle: create and push (staff), void at the window's end (clock), abandon
(《放弃签约声明书》), staff review: approve → seal, reject → 待签字 with the reason by SMS.

Every change locks the agreement row first, checks the transition table, writes its
evidence, and queues SMS in the same transaction (sent after commit)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.template import Context, Engine

from accounts.models import Family, User
from accounts.services import audit_record
from core.context import RequestContext
from core.errors import Conflict, NotAllowed, ValidationFailed
from core.fmt import clause, datetime_zh
from core.locking import lock_get, lock_rows
from signing.agreements.consult import consult_help
from signing.agreements.evidence import evidence_append
from signing.agreements.transitions import lease_review_check, transition_apply, void_due
from signing.models import Agreement, AgreementTemplate, Lease, TemplateKind
from sms.services import sms_message_queue

_ENGINE = Engine(autoescape=False)  # plain text out: no HTML escaping of names
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I look-alikes


def _verification_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(10))


def _deadline(at: datetime) -> str:
    return datetime_zh(at)


def agreement_lock(agreement_id: int) -> Agreement:
    return lock_get(Agreement.objects.select_related("family__main_applicant"), pk=agreement_id)


# ------------------------------------------------------------------------------ templates

# The variables a template may use. agreement_create gives the first set to every agreement;
# a lease (signing/lease/services.py) adds the second, its rent direct-debit details once confirmed.
COMMON_VARIABLES = frozenset(
    {
        "name",
        "id_number_masked",
        "rank",
        "household_size",
        "window_starts_at",
        "window_ends_at",
        "organisation",
        "consult_phones",
        "consult_hours",
        "verification_code",
    }
)
LEASE_VARIABLES = frozenset(
    {
        "unit_label",
        "building",
        "unit_number",
        "floor",
        "layout",
        "orientation",
        "area",
        "monthly_rent",
        "monthly_rent_capital",
        "deposit",
        "deposit_capital",
        "deposit_months",
        "lease_years",
        "debit_bank",
        "debit_account_masked",
        "debit_holder",
    }
)
TEMPLATE_VARIABLES: dict[str, frozenset[str]] = {
    TemplateKind.LEASE: COMMON_VARIABLES | LEASE_VARIABLES,
    TemplateKind.RENT_SUBSIDY: COMMON_VARIABLES,
}


def body_sha256(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def template_organisation(template: AgreementTemplate) -> str:
    """甲方 of agreements made from this version: its `organisation`, or the deployment's
    `SIGNING["ORG_NAME"]` when blank."""
    return (template.organisation or "").strip() or settings.SIGNING["ORG_NAME"]


def agreement_organisation(agreement: Agreement) -> str:
    """甲方 of this agreement, as its text was rendered with: the text, the PDF's signature
    block, the seal image and the seal certificate all name this one organisation."""
    return (agreement.context or {}).get("organisation") or template_organisation(
        agreement.template
    )


def _template_variables(body: str) -> set[str]:
    """The top-level names a template body reads (`{{ x }}`, `{{ x|f }}`, `{% if x %}`)."""
    from django.template.base import VariableNode
    from django.template.defaulttags import IfNode

    names: set[str] = set()
    nodelist = _ENGINE.from_string(body).nodelist

    def add(expression) -> None:
        var = getattr(expression, "var", None)
        lookups = getattr(var, "lookups", None)
        if lookups:
            names.add(lookups[0])

    for node in nodelist.get_nodes_by_type(VariableNode):
        assert isinstance(node, VariableNode)
        add(node.filter_expression)
    for node in nodelist.get_nodes_by_type(IfNode):
        assert isinstance(node, IfNode)
        for condition, _ in node.conditions_nodelists:
            stack = [condition]
            while stack:
                item = stack.pop()
                if item is None:
                    continue
                if hasattr(item, "value") and hasattr(item.value, "var"):
                    add(item.value)
                stack.extend([getattr(item, "first", None), getattr(item, "second", None)])
    return names


def template_body_check(*, kind: str, body: str) -> None:
    """Refuse a body that would not render, or that reads a variable agreements of `kind`
    never have (a typo would print nothing where a name or an amount belongs). Raises
    `template_invalid`, `template_variable_unknown`."""
    from django.template import TemplateSyntaxError

    try:
        used = _template_variables(body)
    except TemplateSyntaxError as exc:
        raise ValidationFailed(
            "template_invalid", f"正文模板语法错误：{exc}", fields={"body": [str(exc)]}
        ) from None
    unknown = sorted(used - TEMPLATE_VARIABLES.get(kind, COMMON_VARIABLES))
    if unknown:
        names = "、".join(unknown)
        raise ValidationFailed(
            "template_variable_unknown",
            f"正文使用了未定义的变量：{names}",
            fields={"body": [f"未定义的变量：{names}"]},
        )


def template_revise(
    *,
    kind: str,
    title: str,
    body: str,
    organisation: str = "",
    consult_phones: str = "",
    consult_hours: str = "",
    based_on: AgreementTemplate | None = None,
    actor: User | None,
    ip: str = "",
    now: datetime,
) -> AgreementTemplate:
    """Publish a new version of the `kind` template (version 1 when there is none). Versions
    are never edited: an agreement keeps the version it was made from, and new agreements
    take the newest. `based_on` is the version the editor started from; it must be the newest
    (two staff editing at once: the second is told, not silently overwritten). Audited.
    Raises `template_kind_unknown`, `template_title_required`, `template_body_required`,
    `template_invalid`, `template_variable_unknown`, `template_outdated`,
    `template_unchanged`."""
    if kind not in TemplateKind.values:
        raise ValidationFailed("template_kind_unknown", "请选择协议类型", fields={"kind": ["必选"]})
    title, body = (title or "").strip(), (body or "").replace("\r\n", "\n").strip()
    organisation = (organisation or "").strip()
    consult_phones, consult_hours = (consult_phones or "").strip(), (consult_hours or "").strip()
    if not title:
        raise ValidationFailed("template_title_required", "请填写标题", fields={"title": ["必填"]})
    if not body:
        raise ValidationFailed("template_body_required", "请填写正文", fields={"body": ["必填"]})
    template_body_check(kind=kind, body=body)
    with transaction.atomic():
        versions = lock_rows(AgreementTemplate.objects.filter(kind=kind), order_by=("-version",))
        newest = versions[0] if versions else None
        if based_on is not None and newest is not None and based_on.pk != newest.pk:
            raise Conflict(
                "template_outdated",
                f"该模板已有更新的版本 v{newest.version}，请在最新版本上修改",
            )
        fields = (title, body, organisation, consult_phones, consult_hours)
        if newest is not None and fields == (
            newest.title,
            newest.body,
            newest.organisation,
            newest.consult_phones,
            newest.consult_hours,
        ):
            raise ValidationFailed("template_unchanged", "内容与当前版本相同，无需发布新版本")
        template = AgreementTemplate.objects.create(
            kind=kind,
            version=(newest.version + 1) if newest else 1,
            title=title,
            body=body,
            organisation=organisation,
            consult_phones=consult_phones,
            consult_hours=consult_hours,
            body_sha256=body_sha256(body),
        )
        audit_record(
            actor=actor,
            action="signing.template_revised",
            target=str(template),
            detail={
                "kind": kind,
                "version": template.version,
                "previous_version": newest.version if newest else None,
                "body_sha256": template.body_sha256,
                "previous_body_sha256": newest.body_sha256 if newest else None,
                "organisation": template_organisation(template),
            },
            ip=ip,
            now=now,
        )
    return template


def template_newest(*, kind: str) -> AgreementTemplate | None:
    return AgreementTemplate.objects.filter(kind=kind).order_by("-version").first()


# ----------------------------------------------------------------------------- agreements


def _render(template: AgreementTemplate, variables: dict) -> str:
    return _ENGINE.from_string(template.body).render(Context(variables))


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
    window. The exact text is kept with its SHA-256, and the version with its body's SHA-256.
    Only the newest version of a kind makes new agreements. Raises `invalid_window`,
    `template_outdated`, `template_tampered` (the body no longer matches its hash),
    `agreement_exists` (a live agreement of this kind already exists)."""
    if window_ends_at <= window_starts_at:
        raise ValidationFailed("invalid_window", "签约截止时间须晚于开始时间")
    newest = template_newest(kind=template.kind)
    if newest is not None and newest.pk != template.pk:
        raise Conflict(
            "template_outdated", f"「{template.title}」已有新版本 v{newest.version}，请使用最新版本"
        )
    digest = body_sha256(template.body)
    if template.body_sha256 and template.body_sha256 != digest:
        raise Conflict("template_tampered", "协议模板内容与其发布时的摘要不符，请联系系统管理员")
    applicant = family.main_applicant
    code = _verification_code()
    variables = {
        "name": applicant.real_name,
        "id_number_masked": applicant.id_number_masked,
        "rank": family.rank,
        "household_size": family.household_size,
        "window_starts_at": _deadline(window_starts_at),
        "window_ends_at": _deadline(window_ends_at),
        "organisation": template_organisation(template),
        "consult_phones": template.consult_phones,
        "consult_hours": template.consult_hours,
        "verification_code": code,
        **(context or {}),
    }
    text = _render(template, variables)
    with transaction.atomic():
        if Agreement.objects.filter(
            family=family,
            template__kind=template.kind,
            status__in=["pending", "signed", "sealed"],
        ).exists():
            raise NotAllowed("agreement_exists", "该家庭已有此协议")
        agreement = Agreement.objects.create(
            family=family,
            template=template,
            template_sha256=digest,
            title=template.title,
            rendered_text=text,
            text_hash=hashlib.sha256(text.encode()).hexdigest(),
            signer_name=applicant.real_name,
            window_starts_at=window_starts_at,
            window_ends_at=window_ends_at,
            verification_code=code,
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
                "template_sha256": digest,
                "text_sha256": agreement.text_hash,
            },
        )
    return agreement


def agreement_text_rerender(
    *,
    agreement: Agreement,
    context: dict,
    actor: User | None,
    ctx: RequestContext,
    now: datetime,
) -> Agreement:
    """Render the agreement's text again from its own template version with `context` added
    (a lease's rent direct-debit details, confirmed before its contract is shown). Only while
    nothing of the current attempt has been shown or signed: 待签字 at step 未开始. The caller
    holds the agreement's row lock. Records the new text hash as evidence. Raises
    `text_locked`, `template_tampered`."""
    if agreement.status != Agreement.Status.PENDING or agreement.step != Agreement.Step.NONE:
        raise Conflict("text_locked", "协议已开始签署，内容不能再更改")
    template = agreement.template
    if agreement.template_sha256 and body_sha256(template.body) != agreement.template_sha256:
        raise Conflict("template_tampered", "协议模板内容与其发布时的摘要不符，请联系系统管理员")
    variables = {**(agreement.context or {}), **{k: str(v) for k, v in context.items()}}
    text = _render(template, variables)
    previous = agreement.text_hash
    agreement.rendered_text = text
    agreement.text_hash = hashlib.sha256(text.encode()).hexdigest()
    agreement.context = variables
    agreement.save(update_fields=["rendered_text", "text_hash", "context"])
    evidence_append(
        agreement=agreement,
        kind="text_rendered",
        actor=actor,
        ctx=ctx,
        now=now,
        data={
            "attempt": agreement.attempt,
            "template_version": template.version,
            "fields": sorted(context),
            "previous_text_sha256": previous,
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
            raise Conflict("invalid_transition", "只有待签字的协议可以推送")
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
            if not void_due(agreement):
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
            raise Conflict("declaration_outdated", "声明内容已更新，请刷新后重新确认")
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
        if on_behalf:  # a staff act: also in the staff audit trail, in the same transaction
            audit_record(
                actor=actor,
                action="signing.agreement_abandon_on_behalf",
                target=str(agreement),
                detail={"agreement_id": agreement.pk, "declaration_sha256": declaration_version},
                ip=ctx.ip,
                now=now,
            )
    return agreement


def abandon_declaration(agreement: Agreement) -> tuple[str, str]:
    text = ABANDON_DECLARATION.format(title=agreement.title)
    return text, hashlib.sha256(text.encode()).hexdigest()


def agreement_approve(*, agreement_id: int, actor: User, ip: str = "", now: datetime) -> Agreement:
    """Staff approve a 已签字 agreement: seal it (已盖章) and tell the applicant by SMS.
    The sealed PDF is the signed one plus an incremental seal signature."""
    from signing.agreements.documents import document_seal

    with transaction.atomic():
        agreement = agreement_lock(agreement_id)
        lease_review_check(agreement)
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
        audit_record(
            actor=actor,
            action="signing.agreement_approve",
            target=str(agreement),
            detail={"agreement_id": agreement.pk, "pdf_sha256": sealed.sha256},
            ip=ip,
            now=now,
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
        lease_review_check(agreement)
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
        audit_record(
            actor=actor,
            action="signing.agreement_reject",
            target=str(agreement),
            detail={
                "agreement_id": agreement.pk,
                "reason": agreement.reject_reason,
                "next_attempt": agreement.attempt,
            },
            ip=ip,
            now=now,
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
