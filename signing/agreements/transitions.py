"""The agreement status table, enforced in one place."""

from __future__ import annotations

from datetime import datetime

from core.errors import Conflict, NotAllowed
from signing.models import Agreement, Lease, LeaseStage

S = Agreement.Status

ALLOWED: dict[str, frozenset[str]] = {
    S.PENDING: frozenset({S.SIGNED, S.VOID, S.ABANDONED}),
    # PENDING = staff rejection; VOID = a lease whose deposit was still unpaid at the window's
    # end (signing/agreements/services.py `agreements_void_due`).
    S.SIGNED: frozenset({S.SEALED, S.PENDING, S.ABANDONED, S.VOID}),
    S.SEALED: frozenset(),
    S.VOID: frozenset(),
    S.ABANDONED: frozenset(),
}

MESSAGES: dict[str, str] = {
    S.SIGNED: "协议已签字，等待工作人员审核",
    S.SEALED: "协议已盖章生效",
    S.VOID: "协议已作废（签约期限已过）",
    S.ABANDONED: "已提交放弃签约声明",
}


def signing_window_check(agreement: Agreement, now: datetime) -> None:
    """Raise `signing_not_open` before the agreement's window, `signing_closed` from its end."""
    if now < agreement.window_starts_at:
        raise NotAllowed("signing_not_open", "签约尚未开始")
    if now >= agreement.window_ends_at:
        raise NotAllowed("signing_closed", "签约期限已过")


def agreement_signable_check(agreement: Agreement, *, signed_too: bool = False) -> None:
    """The one "agreement is signable" rule: 409 `agreement_not_pending` unless the agreement
    is 待签署 (or, with `signed_too`, already signed and in a lease's later stages). Every path
    that signs, scans or checks a face asks this, so the answer is the same everywhere."""
    allowed = (
        (Agreement.Status.PENDING, Agreement.Status.SIGNED)
        if signed_too
        else (Agreement.Status.PENDING,)
    )
    if agreement.status not in allowed:
        raise Conflict(
            "agreement_not_pending",
            f"协议当前状态为「{agreement.get_status_display()}」，不能签署",
        )


def transition_check(agreement: Agreement, target: str) -> None:
    """Raise `invalid_transition` unless `agreement` may move to `target`."""
    if target not in ALLOWED[agreement.status]:
        raise Conflict(
            "invalid_transition",
            MESSAGES.get(agreement.status, "当前状态不允许该操作"),
        )


def transition_apply(agreement: Agreement, target: str) -> list[str]:
    """Check and set the status; returns the fields to save."""
    transition_check(agreement, target)
    agreement.status = target
    return ["status"]


# An agreement that is a lease's contract (guide 000) follows the lease's order. These read the
# Lease model only: the lease package builds on agreements, never the other way round.


def lease_order_check(agreement: Agreement) -> None:
    """Before every phone step: a lease's face check and contract come only after the rental
    information (租金托收) of the current attempt."""
    lease = Lease.objects.filter(agreement=agreement).first()
    if lease is not None and lease.bank_attempt != agreement.attempt:
        raise Conflict("step_out_of_order", f"请先完成「{LeaseStage.INFO.label}」")


def lease_review_check(agreement: Agreement) -> None:
    """Staff review a lease only once its deposit is paid (the application is submitted)."""
    lease = Lease.objects.filter(agreement=agreement).first()
    if lease is not None and lease.deposit_paid_at is None:
        raise Conflict("deposit_not_paid", "押金尚未缴纳，签约申请未提交，不能审核")


def void_due(agreement: Agreement) -> bool:
    """At the window's end (locked agreement): void a pending agreement, or a lease signed
    whose deposit is still unpaid; never a paid lease (it waits for review)."""
    if agreement.status == Agreement.Status.PENDING:
        return True
    if agreement.status != Agreement.Status.SIGNED:
        return False
    lease = Lease.objects.filter(agreement=agreement).first()
    return lease is not None and lease.deposit_paid_at is None
