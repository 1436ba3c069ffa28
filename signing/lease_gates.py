"""The lease's stage and the gates other signing services ask (imports models only, so that
signing/services.py and signing/flow.py can use it without an import cycle)."""

from __future__ import annotations

from django.db import models

from core.errors import Conflict
from signing.models import Agreement, Lease

Step = Agreement.Step


class Stage(models.TextChoices):
    INFO = "info", "完善承租信息"
    FACE = "face", "人脸识别"
    CONTRACT = "contract", "签订合同"
    DEPOSIT = "deposit", "押金缴纳"
    REVIEW = "review", "待审核"
    APPROVED = "approved", "审核通过"
    CLOSED = "closed", "已结束"


def lease_stage(lease: Lease, agreement: Agreement | None = None) -> str:
    """Where the lease stands, from the agreement's status and step and the lease's facts."""
    agreement = agreement or lease.agreement
    status = agreement.status
    if status == Agreement.Status.SEALED:
        return Stage.APPROVED
    if status in (Agreement.Status.VOID, Agreement.Status.ABANDONED):
        return Stage.CLOSED
    if status == Agreement.Status.SIGNED:
        return Stage.REVIEW if lease.deposit_paid_at else Stage.DEPOSIT
    if lease.bank_attempt != agreement.attempt:
        return Stage.INFO
    return Stage.FACE if agreement.step < Step.FACE_VERIFIED else Stage.CONTRACT


def lease_flow_gate(agreement: Agreement) -> None:
    """signing/flow.py asks this before every phone step: a lease's face check and contract
    come only after the rental information (租金托收) of the current attempt."""
    lease = Lease.objects.filter(agreement=agreement).first()
    if lease is not None and lease.bank_attempt != agreement.attempt:
        raise Conflict("step_out_of_order", f"请先完成「{Stage.INFO.label}」")


def lease_review_gate(agreement: Agreement) -> None:
    """Staff review a lease only once its deposit is paid (the application is submitted)."""
    lease = Lease.objects.filter(agreement=agreement).first()
    if lease is not None and lease.deposit_paid_at is None:
        raise Conflict("deposit_not_paid", "押金尚未缴纳，签约申请未提交，不能审核")


def lease_void_due(agreement: Agreement) -> bool:
    """At the window's end (locked agreement): void a pending agreement, or a lease signed
    whose deposit is still unpaid; never a paid lease (it waits for review)."""
    if agreement.status == Agreement.Status.PENDING:
        return True
    if agreement.status != Agreement.Status.SIGNED:
        return False
    lease = Lease.objects.filter(agreement=agreement).first()
    return lease is not None and lease.deposit_paid_at is None
