"""Lease signing after selection (guide 000, section 三), on top of the agreement machinery:

「去签约」 → 完善承租信息 (unit details, phone change by SMS to the new number, rent
direct-debit: bank, account, holder = main applicant, card photos) → 人脸识别 by QR (the
phone flow's steps 1-4 of signing/agreements/flow.py) → 签订合同 by QR (steps 5-7: read, sign one
character per box, SMS, submit: the agreement becomes 已签字) → 押金缴纳 by QR
(signing/lease/deposit.py) → 待审核 → staff approve (seal) or reject (signing/agreements/services.py).

The stage is derived from facts, never stored (`lease_stage`), and every gate checks it
under the agreement's row lock, the lock every signing service takes first.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone
from stdnum import luhn

from accounts.models import Applicant, Family
from accounts.services import audit_record
from accounts.validators import mobile_clean
from core.context import RequestContext
from core.errors import Conflict, DomainError, NotAllowed, ValidationFailed
from core.locking import lock_get
from selection.models import Allocation
from signing.agreements.evidence import evidence_append
from signing.agreements.services import agreement_create, agreement_lock, agreement_text_rerender
from signing.agreements.transitions import signing_window_check
from signing.lease.card_photos import CleanImage, card_photo_clean
from signing.models import (
    LEASE_QR_PURPOSE,
    Agreement,
    AgreementTemplate,
    Bank,
    CardPhoto,
    Lease,
    LeaseStage,
    TemplateKind,
    lease_stage,
)
from sms.models import Purpose
from sms.services import sms_code_send, sms_code_verify

Step = Agreement.Step
WINDOW_CLOSES_AT_HOUR = 18  # 18:00 Shenzhen time, as guide 001's window


# The QR code each stage shows on the desktop.


def _stage_required(lease: Lease, agreement: Agreement, wanted: str) -> None:
    stage = lease_stage(lease, agreement)
    if stage == wanted:
        return
    if stage in (LeaseStage.CLOSED, LeaseStage.APPROVED, LeaseStage.REVIEW):
        raise Conflict("lease_not_open", f"签约当前状态为「{LeaseStage(stage).label}」，不能办理")
    raise Conflict("step_out_of_order", f"请先完成「{LeaseStage(stage).label}」")


# ------------------------------------------------------------------------------ reads


def lease_for_applicant(*, applicant: Applicant, lease_id: int) -> Lease:
    """The applicant's own lease; another family's looks like none."""
    lease = (
        Lease.objects.select_related("agreement__family__main_applicant", "allocation__unit")
        .filter(pk=lease_id, agreement__family__main_applicant=applicant)
        .first()
    )
    if lease is None:
        raise DomainError("lease_not_found", "签约记录不存在", kind="not_found")
    return lease


def lease_list(*, applicant: Applicant) -> list[Lease]:
    return list(
        Lease.objects.select_related("agreement", "allocation__unit", "allocation__round")
        .filter(agreement__family__main_applicant=applicant)
        .order_by("-created_at")
    )


def card_photo_current(*, lease: Lease, side: str) -> CardPhoto | None:
    return CardPhoto.objects.filter(lease=lease, side=side).order_by("-uploaded_at", "-id").first()


# ------------------------------------------------------------------------------ start


def lease_window_end(allocation: Allocation) -> datetime:
    """When the lease of `allocation` must be signed by: 18:00 (Shenzhen) on the round's
    `lease_signing_days`-th day after the allocation; known before the lease is started."""
    local = timezone.localtime(allocation.at) + timedelta(days=allocation.round.lease_signing_days)
    return local.replace(hour=WINDOW_CLOSES_AT_HOUR, minute=0, second=0, microsecond=0)


def newest_allocation(family: Family) -> Allocation | None:
    """The allocation a lease is started for (`lease_start`): the family's newest."""
    return (
        Allocation.objects.select_related("unit", "round")
        .filter(family=family)
        .order_by("-at", "-pk")
        .first()
    )


def _yuan(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP)}"


def _fen(value: Decimal) -> int:
    return int((value * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))


# The contract's 租金托收 lines until the applicant confirms them (完善承租信息).
DEBIT_PENDING = {
    "debit_bank": "（待乙方完善承租信息时确认）",
    "debit_holder": "（待乙方完善承租信息时确认）",
    "debit_account_masked": "（待乙方完善承租信息时确认）",
}


def lease_start(*, applicant: Applicant, ctx: RequestContext, now: datetime) -> Lease:
    """「去签约」/「网上签约」: the family's lease for its newest allocation, created on first
    use from the newest lease template with the unit, the monthly rent, the deposit (the
    round's `deposit_months` × rent) and the lease years; the signing window runs from the
    allocation to 18:00 on the round's `lease_signing_days`-th day after it.

    Locks the family row (two taps create one lease). Raises `no_allocation`,
    `lease_template_missing`."""
    family = Family.objects.filter(main_applicant=applicant).first()
    if family is None:
        raise NotAllowed("no_allocation", "您还没有选定房源，暂不能签约")
    with transaction.atomic():
        lock_get(Family.objects.filter(pk=family.pk).values_list("pk"))
        allocation = newest_allocation(family)
        if allocation is None:
            raise NotAllowed("no_allocation", "您还没有选定房源，暂不能签约")
        existing = Lease.objects.filter(allocation=allocation).first()
        if existing is not None:
            return existing
        template = (
            AgreementTemplate.objects.filter(kind=TemplateKind.LEASE).order_by("-version").first()
        )
        if template is None:
            raise NotAllowed("lease_template_missing", "租赁合同模板未配置，请联系工作人员")
        from signing.lease.receipt import amount_capital

        unit, rules = allocation.unit, allocation.round
        deposit = unit.monthly_rent * rules.deposit_months
        # The property is named from the unit alone, never from the round (a selection
        # batch's name is no address). The rent direct-debit lines are filled in when the
        # applicant confirms them (`lease_bank_confirm`), before the contract is shown.
        unit_label = f"{unit.building}栋{unit.number}"
        agreement = agreement_create(
            family=family,
            template=template,
            window_starts_at=min(allocation.at, now),
            window_ends_at=lease_window_end(allocation),
            context={
                "unit_label": unit_label,
                "building": unit.building,
                "unit_number": unit.number,
                "floor": unit.floor,
                "layout": unit.get_layout_display(),
                "orientation": unit.get_orientation_display(),
                "area": str(unit.area),
                "monthly_rent": _yuan(unit.monthly_rent),
                "monthly_rent_capital": amount_capital(_fen(unit.monthly_rent)),
                "deposit": _yuan(deposit),
                "deposit_capital": amount_capital(_fen(deposit)),
                "deposit_months": rules.deposit_months,
                "lease_years": rules.lease_years,
                **DEBIT_PENDING,
            },
            actor=None,
            now=now,
        )
        lease = Lease.objects.create(
            agreement=agreement,
            allocation=allocation,
            unit_label=unit_label,
            monthly_rent=unit.monthly_rent,
            deposit_fen=_fen(deposit),
            created_at=now,
        )
        evidence_append(
            agreement=agreement,
            kind="lease_started",
            actor=applicant.user,
            ctx=ctx,
            now=now,
            data={
                "allocation": allocation.pk,
                "unit": unit.pk,
                "monthly_rent": _yuan(unit.monthly_rent),
                "deposit_fen": lease.deposit_fen,
            },
        )
    return lease


def _locked(lease_id: int) -> tuple[Lease, Agreement]:
    agreement = agreement_lock(
        Lease.objects.values_list("agreement_id", flat=True).get(pk=lease_id)
    )
    return lock_get(Lease.objects, pk=lease_id), agreement


# --------------------------------------------------------------------- rental information


def _phone_subject(applicant: Applicant, mobile: str) -> str:
    return f"{applicant.pk}:{mobile}"


def _new_mobile(applicant: Applicant, mobile: str) -> str:
    mobile = mobile_clean(mobile)  # the one mobile rule and code (`invalid_mobile`)
    if mobile == applicant.mobile:
        raise ValidationFailed(
            "mobile_unchanged", "新手机号码与当前号码相同", fields={"mobile": ["与当前号码相同"]}
        )
    return mobile


def lease_phone_code_send(
    *, lease: Lease, applicant: Applicant, mobile: str, ctx: RequestContext, now: datetime
) -> None:
    """The SMS code for a phone change, sent to the NEW number (proving the applicant holds
    it). Only before the contract is signed. Raises `invalid_mobile`, `mobile_unchanged`,
    `lease_not_open`, `signing_closed`, the SMS throttles."""
    mobile = _new_mobile(applicant, mobile)
    agreement = lease.agreement
    if agreement.status != Agreement.Status.PENDING:
        raise Conflict("lease_not_open", "合同已签署，不能再修改手机号码")
    signing_window_check(agreement, now)
    sms_code_send(
        purpose=Purpose.PHONE_CHANGE,
        subject=_phone_subject(applicant, mobile),
        phone=mobile,
        ip=ctx.ip,
        now=now,
    )


def lease_phone_change(
    *,
    lease: Lease,
    applicant: Applicant,
    mobile: str,
    code: str,
    ctx: RequestContext,
    now: datetime,
) -> Applicant:
    """Change the registered mobile once the code sent to the new number is given back. The
    change is in the agreement's evidence (old and new, masked) and the audit log. A code of
    any other purpose or number never matches (`sms_code_invalid`)."""
    mobile = _new_mobile(applicant, mobile)
    if lease.agreement.status != Agreement.Status.PENDING:
        raise Conflict("lease_not_open", "合同已签署，不能再修改手机号码")
    signing_window_check(lease.agreement, now)
    sms_code_verify(
        purpose=Purpose.PHONE_CHANGE,
        subject=_phone_subject(applicant, mobile),
        phone=mobile,
        code=code,
        now=now,
    )
    with transaction.atomic():
        lease, agreement = _locked(lease.pk)
        if agreement.status != Agreement.Status.PENDING:
            raise Conflict("lease_not_open", "合同已签署，不能再修改手机号码")
        applicant = lock_get(Applicant.objects, pk=applicant.pk)
        old_masked = applicant.mobile_masked
        applicant.mobile = mobile
        applicant.save(update_fields=["mobile"])
        data = {"old_mobile_masked": old_masked, "new_mobile_masked": applicant.mobile_masked}
        evidence_append(
            agreement=agreement,
            kind="mobile_changed",
            actor=applicant.user,
            ctx=ctx,
            now=now,
            data={**data, "sms_verified": True},
        )
        audit_record(
            actor=applicant.user,
            action="applicant.mobile_changed",
            target=f"applicant:{applicant.pk}",
            detail=data,
            ip=ctx.ip,
            now=now,
        )
    return applicant


def lease_card_photo_upload(
    *,
    lease: Lease,
    applicant: Applicant,
    side: str,
    data: bytes,
    filename: str,
    declared_type: str,
    ctx: RequestContext,
    now: datetime,
) -> CardPhoto:
    """One photo of the bank card (正面 / 反面), checked and re-encoded by signing/lease/card_photos.py
    before anything is stored (a refused upload stores nothing). Only at 完善承租信息.
    Raises `card_side_unknown`, `step_out_of_order`, and the upload codes of images.py."""
    if side not in CardPhoto.Side.values:
        raise ValidationFailed("card_side_unknown", "请选择银行卡正面或反面")
    clean = card_photo_clean(data=data, filename=filename, declared_type=declared_type)
    with transaction.atomic():
        lease, agreement = _locked(lease.pk)
        signing_window_check(agreement, now)
        _stage_required(lease, agreement, LeaseStage.INFO)
        photo = card_photo_create(lease=lease, side=side, clean=clean, now=now)
        evidence_append(
            agreement=agreement,
            kind="card_photo_uploaded",
            actor=applicant.user,
            ctx=ctx,
            now=now,
            data={
                "side": side,
                "sha256": clean.sha256,
                "source_sha256": clean.source_sha256,
                "source_format": clean.source_format,
            },
        )
    return photo


def card_photo_create(*, lease: Lease, side: str, clean: CleanImage, now: datetime) -> CardPhoto:
    """Store a checked, re-encoded photo (the caller holds the lease's locks)."""
    return CardPhoto.objects.create(
        lease=lease,
        side=side,
        image=clean.data,
        content_type=clean.content_type,
        width=clean.width,
        height=clean.height,
        sha256=clean.sha256,
        source_sha256=clean.source_sha256,
        source_format=clean.source_format,
        uploaded_at=now,
    )


def _account_number_invalid() -> ValidationFailed:
    return ValidationFailed(
        "account_number_invalid",
        "银行卡号不正确，请核对后重新输入",
        fields={"account_number": ["请输入16至19位银行卡号"]},
    )


def _account_number(raw: str) -> str:
    number = re.sub(r"[\s-]", "", raw or "")
    if not re.fullmatch(r"[0-9]{16,19}", number) or not luhn.is_valid(number):
        raise _account_number_invalid()
    return number


def _account_kept(raw: str) -> bool:
    """The masked number the page shows back (`Lease.account_masked`): the family keeps the
    account already stored, e.g. after a staff rejection that was about something else."""
    return "*" in (raw or "")


def _stored_account_number(lease: Lease, raw: str) -> str:
    """The stored account that `raw` (its masked form) names; `account_number_invalid` when
    none is stored or the masked digits are another account's."""
    if not lease.account_number or re.sub(r"[\s-]", "", raw) != re.sub(
        r"\s", "", lease.account_masked
    ):
        raise _account_number_invalid()
    return lease.account_number


def lease_bank_confirm(
    *,
    lease: Lease,
    applicant: Applicant,
    bank: str,
    account_number: str,
    account_holder: str,
    ctx: RequestContext,
    now: datetime,
) -> Lease:
    """租金托收: bank from the list, account number (16-19 digits with its Luhn check digit,
    as UnionPay cards carry), holder = the main applicant, both card photos uploaded. The
    stored account's masked form (what the page shows back after a staff rejection) keeps
    that account, so the family retypes nothing that was not the problem. Done for the
    current attempt, this opens the face check. Raises `bank_unknown`,
    `account_number_invalid`, `holder_not_main_applicant`, `card_photos_required`,
    `step_out_of_order`, `signing_closed`."""
    if bank not in Bank.values:
        raise ValidationFailed("bank_unknown", "请选择托收银行", fields={"bank": ["请选择"]})
    kept = _account_kept(account_number)
    number = "" if kept else _account_number(account_number)
    holder = re.sub(r"\s", "", account_holder or "")
    if holder != applicant.real_name:
        raise ValidationFailed(
            "holder_not_main_applicant",
            "托收账户须为主申请人本人的银行卡",
            fields={"account_holder": ["须与主申请人姓名一致"]},
        )
    with transaction.atomic():
        lease, agreement = _locked(lease.pk)
        signing_window_check(agreement, now)
        _stage_required(lease, agreement, LeaseStage.INFO)
        if kept:
            number = _stored_account_number(lease, account_number)
        found = {side: card_photo_current(lease=lease, side=side) for side in CardPhoto.Side}
        photos = {side: photo for side, photo in found.items() if photo is not None}
        if len(photos) != len(found):
            raise ValidationFailed("card_photos_required", "请上传银行卡正反面照片")
        lease.bank, lease.account_holder = bank, holder
        lease.account_number = number  # type: ignore[assignment]  # the field's value, encrypted at rest
        lease.bank_attempt = agreement.attempt
        lease.bank_confirmed_at = now
        lease.save(
            update_fields=[
                "bank",
                "account_number",
                "account_holder",
                "bank_attempt",
                "bank_confirmed_at",
            ]
        )
        agreement_text_rerender(
            agreement=agreement,
            context={
                "debit_bank": lease.get_bank_display(),
                "debit_holder": holder,
                "debit_account_masked": lease.account_masked,
            },
            actor=applicant.user,
            ctx=ctx,
            now=now,
        )
        evidence_append(
            agreement=agreement,
            kind="bank_details_confirmed",
            actor=applicant.user,
            ctx=ctx,
            now=now,
            data={
                "attempt": agreement.attempt,
                "bank": bank,
                "account_masked": lease.account_masked,
                "account_sha256": hashlib.sha256(number.encode()).hexdigest(),
                "holder": holder,
                "photos": {side: photo.sha256 for side, photo in photos.items()},
            },
        )
    return lease


def lease_qr_issue(*, lease: Lease, applicant: Applicant, session_key: str, now: datetime):
    """The desktop's QR code for the current stage: face (人脸识别), contract (签订合同) or
    deposit (押金缴纳). Raises `step_out_of_order`/`lease_not_open` when the stage has no
    code, `signing_closed`."""
    from signing.agreements.qr import qr_ticket_create

    agreement = lease.agreement
    stage = lease_stage(lease, agreement)
    if stage not in LEASE_QR_PURPOSE:
        if stage == LeaseStage.INFO:
            raise Conflict("step_out_of_order", f"请先完成「{LeaseStage.INFO.label}」")
        raise Conflict("lease_not_open", f"签约当前状态为「{LeaseStage(stage).label}」，无需扫码")
    signing_window_check(agreement, now)
    return qr_ticket_create(
        agreement=agreement, purpose=LEASE_QR_PURPOSE[stage], session_key=session_key, now=now
    )
