"""The lease deposit (押金缴纳): one payment order per lease with the payment provider, paid on
the phone, and the provider's notification applied exactly once.

The protocol (signing/lease/payments/base.py): `deposit_order_prepare` records the order and
commits; the interface layer then calls `provider.create_order` outside any transaction
(`deposit_begin`); the provider's page takes the money and posts a signed notification,
which the webhook verifies (`provider.parse_notification`) and `deposit_notice_apply`
applies under the agreement's row lock. A replay, a redelivery or a concurrent delivery of
the same payment finds the order PAID and changes nothing; a notice that does not match the
order (amount, currency, merchant, state) is refused, and every notice is recorded
(PaymentNotification) with what became of it.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.context import RequestContext
from core.errors import Conflict, DomainError
from core.locking import lock_get
from events.services import events_record
from events.streams import qr_stream
from signing.agreements.evidence import evidence_append
from signing.agreements.preview import ViewedPdf
from signing.agreements.services import agreement_lock
from signing.agreements.transitions import signing_window_check
from signing.lease.payments import get_provider
from signing.lease.payments.base import (
    PaymentNotice,
    PaymentProviderError,
    PaymentStart,
    RefundNotice,
)
from signing.models import (
    Agreement,
    DepositPayment,
    Lease,
    LeaseStage,
    PaymentNotification,
    QrTicket,
    lease_stage,
)

logger = logging.getLogger("anju.payments")


class PaymentRefused(DomainError):
    """A verified notice that does not match our order: recorded, then answered 400."""

    kind = "invalid"


class PaymentOrderUnknown(DomainError):
    code = "payment_order_unknown"
    message = "支付订单不存在"
    kind = "not_found"


def _out_trade_no(lease_id: int, attempt: int) -> str:
    """One number per lease and attempt: AJ, the lease, the attempt, 8 random hex digits
    (unique per merchant even across databases). WeChat Pay: 6-32 of [0-9A-Za-z_-|*]."""
    return f"AJ{lease_id:08d}N{attempt:02d}{secrets.token_hex(4).upper()}"


def _out_refund_no(payment: DepositPayment) -> str:
    """The refund's number: one refund per order, so the order's number marks it."""
    return f"RF{payment.out_trade_no}"


def deposit_order_prepare(*, lease_id: int, now: datetime) -> DepositPayment:
    """The lease's deposit order, created on first use (its amount fixed from the lease).
    Locks the agreement row. Raises `step_out_of_order` (deposit before the contract is
    signed, i.e. before the bank details, face check and signature), `deposit_paid`,
    `signing_closed`."""
    with transaction.atomic():
        agreement_id = Lease.objects.values_list("agreement_id", flat=True).get(pk=lease_id)
        agreement = agreement_lock(agreement_id)
        lease = lock_get(Lease.objects, pk=lease_id)
        stage = lease_stage(lease, agreement)
        if stage == LeaseStage.REVIEW or lease.deposit_paid_at:
            raise Conflict("deposit_paid", "押金已缴纳，无需重复支付")
        if stage != LeaseStage.DEPOSIT:
            raise Conflict("step_out_of_order", f"请先完成「{LeaseStage(stage).label}」")
        signing_window_check(agreement, now)
        payment = DepositPayment.objects.filter(lease=lease).first()
        if payment is None:
            payment = DepositPayment.objects.create(
                lease=lease,
                provider=get_provider().name,
                out_trade_no=_out_trade_no(lease.pk, 1),
                amount_fen=lease.deposit_fen,
                created_at=now,
            )
        elif payment.closed_at is not None:
            # The last attempt's order was closed at the provider (a closed order's number
            # can never be paid nor reused) and the window is open again: a new attempt.
            payment.attempt += 1
            payment.out_trade_no = _out_trade_no(lease.pk, payment.attempt)
            payment.prepay_id = ""
            payment.closed_at = None
            payment.created_at = now
            payment.save(
                update_fields=["attempt", "out_trade_no", "prepay_id", "closed_at", "created_at"]
            )
        return payment


def deposit_begin(
    *, lease_id: int, return_url: str, notify_url: str, now: datetime
) -> tuple[DepositPayment, PaymentStart]:
    """`deposit_order_prepare`, then the provider's order (outside any transaction; the same
    order number each time, so asking again never makes a second charge possible). Raises
    what `deposit_order_prepare` raises, `deposit_paid` when the provider says the order is
    paid already (its notification is then fetched), PaymentProviderError (answer 503)."""
    payment = deposit_order_prepare(lease_id=lease_id, now=now)
    lease = Lease.objects.select_related("agreement__family__main_applicant").get(pk=lease_id)
    try:
        start = get_provider().create_order(
            out_trade_no=payment.out_trade_no,
            description=f"公共租赁住房押金 {lease.unit_label}"[:127],
            amount_fen=payment.amount_fen,
            notify_url=notify_url,
            return_url=return_url,
            payer_hint=lease.agreement.family.main_applicant.real_name,
            # WeChat takes no money for the order after the signing window (time_expire).
            expires_at=lease.agreement.window_ends_at,
        )
    except PaymentProviderError as exc:
        if exc.reason != "ORDERPAID":
            raise
        # Paid at the provider, but its notification has not reached us: ask for it.
        deposit_refresh(lease=lease, now=now)
        raise Conflict("deposit_paid", "押金已缴纳，无需重复支付") from exc
    if payment.prepay_id != start.prepay_id:
        DepositPayment.objects.filter(pk=payment.pk).update(prepay_id=start.prepay_id)
    return payment, start


def _record(
    *,
    notice: PaymentNotice | RefundNotice | None,
    provider: str,
    outcome: str,
    code: str,
    body: bytes,
    ip: str,
) -> None:
    refund = isinstance(notice, RefundNotice)
    PaymentNotification.objects.create(
        provider=provider,
        kind=PaymentNotification.Kind.REFUND if refund else PaymentNotification.Kind.PAYMENT,
        received_at=timezone.now(),
        outcome=outcome,
        code=code,
        out_trade_no=(notice.out_trade_no if notice else "")[:64],
        transaction_id=(notice.transaction_id if notice else "")[:64],
        out_refund_no=notice.out_refund_no[:64] if isinstance(notice, RefundNotice) else "",
        amount_fen=(notice.refund_fen if isinstance(notice, RefundNotice) else notice.amount_fen)
        if notice
        else None,
        body_sha256=hashlib.sha256(body).hexdigest(),
        ip=ip,
    )


def payment_notice_refused_record(
    *, provider: str, error: DomainError, body: bytes, ip: str
) -> None:
    """A notice we could not believe at all (bad signature, stale, replayed nonce, garbage):
    recorded with its code for the staff's payment log."""
    _record(notice=None, provider=provider, outcome="refused", code=error.code, body=body, ip=ip)


def _mismatch(payment: DepositPayment, notice: PaymentNotice) -> str:
    conf = settings.PAYMENT
    if notice.trade_state != "SUCCESS":
        return "payment_not_success"
    if notice.mchid != conf["MCHID"] or notice.appid != conf["APPID"]:
        return "payment_merchant_mismatch"
    if notice.currency != payment.currency:
        return "payment_currency_mismatch"
    if notice.amount_fen != payment.amount_fen:
        return "payment_amount_mismatch"
    if not notice.transaction_id:
        return "payment_transaction_missing"
    return ""


MISMATCH_MESSAGES = {
    "payment_not_success": "支付未成功",
    "payment_merchant_mismatch": "支付商户不一致",
    "payment_currency_mismatch": "支付币种不一致",
    "payment_amount_mismatch": "支付金额与订单不一致",
    "payment_transaction_missing": "缺少支付流水号",
    "payment_conflict": "该订单已由另一笔支付入账",
}


def _receipt_no(payment: DepositPayment, now: datetime) -> str:
    return f"YJ{timezone.localtime(now):%Y%m%d}{payment.pk:08d}"


def deposit_notice_apply(
    *, notice: PaymentNotice, body: bytes = b"", ip: str = "", now: datetime
) -> DepositPayment:
    """Apply a verified notice (or query answer) to its order, exactly once.

    Locks the agreement row (the order every signing service locks in, which serialises
    concurrent deliveries and the evidence chain), then the order. The first matching
    SUCCESS marks the order PAID with the provider's transaction id, issues the receipt
    number, marks the lease's deposit paid (the application is submitted for review),
    writes `deposit_paid` evidence and tells the desktop (`qr.done`). The same payment again
    is a duplicate: recorded, nothing changed. The database refuses a second applied notice
    for an order (PaymentNotification `payment_applied_once`) should this logic ever fail.

    Raises `payment_order_unknown`; PaymentRefused (`payment_amount_mismatch`,
    `payment_currency_mismatch`, `payment_merchant_mismatch`, `payment_not_success`,
    `payment_conflict`: another transaction id for a paid order) after recording it with
    `deposit_notice_refused` evidence."""
    refused: PaymentRefused | PaymentOrderUnknown | None = None
    with transaction.atomic():
        found = (
            DepositPayment.objects.filter(
                out_trade_no=notice.out_trade_no, provider=notice.provider
            )
            .values_list("pk", "lease__agreement_id")
            .first()
        )
        if found is None:
            _record(
                notice=notice,
                provider=notice.provider,
                outcome="refused",
                code=PaymentOrderUnknown.code,
                body=body,
                ip=ip,
            )
            refused = PaymentOrderUnknown()
        else:
            payment_id, agreement_id = found
            agreement = agreement_lock(agreement_id)
            payment = lock_get(DepositPayment.objects, pk=payment_id)
            code = _mismatch(payment, notice)
            if not code and payment.status == DepositPayment.Status.PAID:
                if payment.transaction_id == notice.transaction_id:
                    _record(
                        notice=notice,
                        provider=notice.provider,
                        outcome="duplicate",
                        code="",
                        body=body,
                        ip=ip,
                    )
                    return payment
                code = "payment_conflict"
            if code:
                _record(
                    notice=notice,
                    provider=notice.provider,
                    outcome="refused",
                    code=code,
                    body=body,
                    ip=ip,
                )
                evidence_append(
                    agreement=agreement,
                    kind="deposit_notice_refused",
                    now=now,
                    ctx=RequestContext(ip=ip),
                    data={
                        "code": code,
                        "out_trade_no": notice.out_trade_no,
                        "transaction_id": notice.transaction_id,
                        "amount_fen": notice.amount_fen,
                        "currency": notice.currency,
                    },
                )
                refused = PaymentRefused(code, MISMATCH_MESSAGES[code])
            else:
                return _paid(agreement, payment, notice, body=body, ip=ip, now=now)
    raise refused


def _paid(
    agreement: Agreement,
    payment: DepositPayment,
    notice: PaymentNotice,
    *,
    body: bytes,
    ip: str,
    now: datetime,
) -> DepositPayment:
    payment.status = DepositPayment.Status.PAID
    payment.transaction_id = notice.transaction_id[:64]
    payment.paid_at = notice.success_time or now
    payment.receipt_no = _receipt_no(payment, now)
    payment.save(update_fields=["status", "transaction_id", "paid_at", "receipt_no"])
    Lease.objects.filter(pk=payment.lease_id).update(deposit_paid_at=now)
    # The database refuses a second applied notice for one order, should the lock fail.
    _record(notice=notice, provider=notice.provider, outcome="applied", code="", body=body, ip=ip)
    evidence_append(
        agreement=agreement,
        kind="deposit_paid",
        now=now,
        ctx=RequestContext(ip=ip),
        data={
            "out_trade_no": payment.out_trade_no,
            "transaction_id": payment.transaction_id,
            "amount_fen": payment.amount_fen,
            "currency": payment.currency,
            "receipt_no": payment.receipt_no,
            "agreement_status": agreement.status,
        },
    )
    if agreement.status != Agreement.Status.SIGNED:
        # Paid after the window closed (or the agreement was abandoned) while the phone was
        # on the cashier page: the money is recorded and staff refund it.
        logger.warning("deposit %s paid on a %s agreement", payment.out_trade_no, agreement.status)
    tickets = QrTicket.objects.filter(agreement=agreement, expires_at__gt=now).values_list(
        "pk", flat=True
    )
    events_record(
        events=[
            (qr_stream(str(pk)), "qr.done", {"label": "押金缴纳成功，签约申请已提交"})
            for pk in tickets
        ],
        now=now,
    )
    return payment


def deposit_refresh(*, lease: Lease, now: datetime) -> DepositPayment | None:
    """The phone came back from the cashier before the notification arrived: ask the
    provider (its order query), and apply a SUCCESS. None when there is no order yet."""
    payment = DepositPayment.objects.filter(lease=lease).first()
    if payment is None or payment.status == DepositPayment.Status.PAID:
        return payment
    notice = get_provider().query_order(out_trade_no=payment.out_trade_no)
    if notice is not None and notice.trade_state == "SUCCESS":
        try:
            return deposit_notice_apply(notice=notice, now=now)
        except PaymentRefused:
            pass
    payment.refresh_from_db()
    return payment


# ------------------------------------------------- the window's end: close unpaid orders


def deposit_orders_close_due(*, now: datetime) -> list[int]:
    """At the window's end (a clock task, run before the void): close every unpaid order of
    a lease whose window has ended at the provider, so it can no longer be paid, and note
    `closed_at`. An order the provider reports paid meanwhile (its notification lost or on
    its way) is queried and applied instead. A provider that cannot be reached is tried
    again on the next tick. Returns the ids of the orders closed."""
    provider = get_provider()
    due = list(
        DepositPayment.objects.filter(
            status=DepositPayment.Status.CREATED,
            closed_at__isnull=True,
            provider=provider.name,
            lease__agreement__window_ends_at__lte=now,
        ).values_list("pk", "out_trade_no", "lease_id")
    )
    closed = []
    for payment_id, out_trade_no, lease_id in due:
        try:
            provider.close_order(out_trade_no=out_trade_no)
        except PaymentProviderError as exc:
            if exc.reason == "ORDERPAID":
                deposit_refresh(lease=Lease.objects.get(pk=lease_id), now=now)
            else:
                logger.warning("closing deposit order %s failed: %s", out_trade_no, exc.detail)
            continue
        updated = DepositPayment.objects.filter(
            pk=payment_id, status=DepositPayment.Status.CREATED, out_trade_no=out_trade_no
        ).update(closed_at=now)
        if updated:
            closed.append(payment_id)
    return closed


# ------------------------------------------------------------------------------ refunds

REFUND_REASON = "公共租赁住房签约未完成，退还押金"
# A refund the provider has not reported on after this long is asked about (its
# notification may be lost), as deposit_refresh asks about a payment.
REFUND_QUERY_AFTER_SECONDS = 5 * 60


class RefundRefused(DomainError):
    kind = "invalid"


REFUND_MISMATCH_MESSAGES = {
    "payment_refund_mismatch": "退款与订单不一致",
    "payment_refund_amount_mismatch": "退款金额与押金不一致",
    "payment_merchant_mismatch": "支付商户不一致",
    "payment_refund_conflict": "该退款已由另一笔退款入账",
}


def deposit_refund_request(*, lease_id: int, now: datetime) -> DepositPayment:
    """Record the refund of the lease's paid deposit (its lease voided or abandoned), with
    `deposit_refund_requested` evidence; the provider is asked afterwards, outside the
    transaction (`deposit_refund_submit`). Idempotent: a refund already recorded is returned.
    Raises `refund_not_paid` (nothing was paid: nothing to refund), `refund_not_due` (the
    lease is still going on)."""
    with transaction.atomic():
        agreement_id = Lease.objects.values_list("agreement_id", flat=True).get(pk=lease_id)
        agreement = agreement_lock(agreement_id)
        found = DepositPayment.objects.filter(lease_id=lease_id).values_list("pk", flat=True)
        payment = lock_get(DepositPayment.objects, pk=found[0]) if found else None
        if payment is None or payment.status != DepositPayment.Status.PAID:
            raise Conflict("refund_not_paid", "押金未缴纳，无需退款")
        if agreement.status not in (Agreement.Status.VOID, Agreement.Status.ABANDONED):
            raise Conflict("refund_not_due", "签约未终止，押金不予退还")
        if payment.refund_status:
            return payment
        payment.refund_status = DepositPayment.RefundStatus.REQUESTED
        payment.out_refund_no = _out_refund_no(payment)
        payment.refund_requested_at = now
        payment.save(update_fields=["refund_status", "out_refund_no", "refund_requested_at"])
        evidence_append(
            agreement=agreement,
            kind="deposit_refund_requested",
            now=now,
            data={
                "out_trade_no": payment.out_trade_no,
                "out_refund_no": payment.out_refund_no,
                "amount_fen": payment.amount_fen,
                "agreement_status": agreement.status,
            },
        )
        return payment


def deposit_refund_submit(*, payment_id: int, notify_url: str, now: datetime) -> DepositPayment:
    """Ask the provider for a recorded refund (outside any transaction; idempotent per
    out_refund_no, so asking again after a lost answer refunds once). PROCESSING is noted;
    an answer already final is applied like its notification. A provider error that a retry
    may fix leaves the refund REQUESTED (the clock asks again); any other marks it FAILED
    for staff."""
    payment = DepositPayment.objects.get(pk=payment_id)
    if payment.refund_status != DepositPayment.RefundStatus.REQUESTED:
        return payment
    try:
        answer = get_provider().refund_create(
            out_trade_no=payment.out_trade_no,
            out_refund_no=payment.out_refund_no,
            refund_fen=payment.amount_fen,
            total_fen=payment.amount_fen,
            reason=REFUND_REASON,
            notify_url=notify_url,
        )
    except PaymentProviderError as exc:
        logger.warning("refund %s: %s", payment.out_refund_no, exc.detail)
        if not exc.retryable:
            DepositPayment.objects.filter(
                pk=payment.pk, refund_status=DepositPayment.RefundStatus.REQUESTED
            ).update(refund_status=DepositPayment.RefundStatus.FAILED)
        payment.refresh_from_db()
        return payment
    if answer.refund_status == "PROCESSING":
        DepositPayment.objects.filter(
            pk=payment.pk, refund_status=DepositPayment.RefundStatus.REQUESTED
        ).update(refund_status=DepositPayment.RefundStatus.PROCESSING, refund_id=answer.refund_id)
    else:
        try:
            refund_notice_apply(notice=answer, now=now)
        except (RefundRefused, DomainError) as exc:
            logger.warning("refund %s answer refused: %s", payment.out_refund_no, exc)
    payment.refresh_from_db()
    return payment


def deposit_refunds_due(*, now: datetime) -> list[int]:
    """A clock task: every paid deposit of a voided or abandoned lease is refunded (recorded,
    then asked of the provider), a refund the provider did not take yet is asked again, and
    one it has not reported on for REFUND_QUERY_AFTER_SECONDS is queried (its notification
    may be lost). Returns the ids of the payments it acted on."""
    from core.urls import absolute_url

    provider = get_provider()
    notify_url = absolute_url(f"/api/v1/payments/notify/{provider.name}/")
    acted = []
    for lease_id in DepositPayment.objects.filter(
        status=DepositPayment.Status.PAID,
        refund_status="",
        provider=provider.name,
        lease__agreement__status__in=[Agreement.Status.VOID, Agreement.Status.ABANDONED],
    ).values_list("lease_id", flat=True):
        deposit_refund_request(lease_id=lease_id, now=now)
    for payment_id in DepositPayment.objects.filter(
        refund_status=DepositPayment.RefundStatus.REQUESTED, provider=provider.name
    ).values_list("pk", flat=True):
        deposit_refund_submit(payment_id=payment_id, notify_url=notify_url, now=now)
        acted.append(payment_id)
    stale = now - timedelta(seconds=REFUND_QUERY_AFTER_SECONDS)
    for payment_id, out_refund_no in DepositPayment.objects.filter(
        refund_status=DepositPayment.RefundStatus.PROCESSING,
        provider=provider.name,
        refund_requested_at__lte=stale,
    ).values_list("pk", "out_refund_no"):
        try:
            answer = provider.refund_query(out_refund_no=out_refund_no)
        except PaymentProviderError as exc:
            logger.warning("refund query %s: %s", out_refund_no, exc.detail)
            continue
        if answer is not None and answer.refund_status != "PROCESSING":
            try:
                refund_notice_apply(notice=answer, now=now)
            except DomainError as exc:
                logger.warning("refund %s answer refused: %s", out_refund_no, exc)
            acted.append(payment_id)
    return acted


def _refund_mismatch(payment: DepositPayment, notice: RefundNotice) -> str:
    if notice.mchid and notice.mchid != settings.PAYMENT["MCHID"]:
        return "payment_merchant_mismatch"
    if (
        notice.out_trade_no != payment.out_trade_no
        or notice.transaction_id != payment.transaction_id
    ):
        return "payment_refund_mismatch"
    if notice.refund_fen != payment.amount_fen or notice.total_fen != payment.amount_fen:
        return "payment_refund_amount_mismatch"
    if payment.refund_id and notice.refund_id != payment.refund_id:
        return "payment_refund_conflict"
    return ""


def refund_notice_apply(
    *, notice: RefundNotice, body: bytes = b"", ip: str = "", now: datetime
) -> DepositPayment:
    """Apply a verified refund notice (or query answer) to its order, exactly once, under
    the agreement's row lock as for payments. SUCCESS marks the deposit REFUNDED with
    `deposit_refunded` evidence; the same refund again is a duplicate (recorded, nothing
    changed; the database refuses a second applied refund notice for one refund). ABNORMAL
    or CLOSED marks it FAILED for staff (recorded as refused with its code, evidence
    `deposit_refund_failed`). Raises `payment_refund_unknown`; RefundRefused
    (`payment_refund_mismatch`, `payment_refund_amount_mismatch`,
    `payment_merchant_mismatch`, `payment_refund_conflict`) after recording it."""

    def record(outcome: str, code: str = "") -> None:
        _record(
            notice=notice, provider=notice.provider, outcome=outcome, code=code, body=body, ip=ip
        )

    refused: DomainError | None = None
    with transaction.atomic():
        found = (
            DepositPayment.objects.filter(
                out_refund_no=notice.out_refund_no, provider=notice.provider
            )
            .exclude(out_refund_no="")
            .values_list("pk", "lease__agreement_id")
            .first()
        )
        if found is None:
            record("refused", "payment_refund_unknown")
            refused = DomainError("payment_refund_unknown", "退款单不存在", kind="not_found")
        else:
            payment_id, agreement_id = found
            agreement = agreement_lock(agreement_id)
            payment = lock_get(DepositPayment.objects, pk=payment_id)
            code = _refund_mismatch(payment, notice)
            if not code and payment.refund_status == DepositPayment.RefundStatus.REFUNDED:
                record("duplicate")
                return payment
            if code:
                record("refused", code)
                evidence_append(
                    agreement=agreement,
                    kind="deposit_notice_refused",
                    now=now,
                    ctx=RequestContext(ip=ip),
                    data={
                        "code": code,
                        "out_trade_no": notice.out_trade_no,
                        "out_refund_no": notice.out_refund_no,
                        "refund_id": notice.refund_id,
                        "amount_fen": notice.refund_fen,
                    },
                )
                refused = RefundRefused(code, REFUND_MISMATCH_MESSAGES[code])
            elif notice.refund_status == "SUCCESS":
                payment.refund_status = DepositPayment.RefundStatus.REFUNDED
                payment.refund_id = notice.refund_id[:64]
                payment.refunded_at = notice.success_time or now
                payment.save(update_fields=["refund_status", "refund_id", "refunded_at"])
                record("applied")
                evidence_append(
                    agreement=agreement,
                    kind="deposit_refunded",
                    now=now,
                    ctx=RequestContext(ip=ip),
                    data={
                        "out_trade_no": payment.out_trade_no,
                        "out_refund_no": payment.out_refund_no,
                        "refund_id": payment.refund_id,
                        "amount_fen": payment.amount_fen,
                    },
                )
                return payment
            elif notice.refund_status in ("ABNORMAL", "CLOSED"):
                if payment.refund_status != DepositPayment.RefundStatus.FAILED:
                    payment.refund_status = DepositPayment.RefundStatus.FAILED
                    payment.refund_id = notice.refund_id[:64]
                    payment.save(update_fields=["refund_status", "refund_id"])
                    evidence_append(
                        agreement=agreement,
                        kind="deposit_refund_failed",
                        now=now,
                        ctx=RequestContext(ip=ip),
                        data={
                            "out_refund_no": payment.out_refund_no,
                            "state": notice.refund_status,
                        },
                    )
                    logger.warning("refund %s %s", payment.out_refund_no, notice.refund_status)
                record("refused", f"payment_refund_{notice.refund_status.lower()}")
                return payment
            else:  # PROCESSING: nothing to apply yet
                return payment
    assert refused is not None
    raise refused


def deposit_receipt_pdf_for(*, lease: Lease, now: datetime) -> bytes:
    """The deposit receipt (押金收据), once the lease is approved, issued by the lease's 甲方
    and sealed with that organisation's seal (time-stamped `now`, when this copy is issued).
    Raises `receipt_not_ready`, `seal_missing`."""
    from signing.agreements.services import agreement_organisation
    from signing.lease.receipt import deposit_receipt_issue

    payment = DepositPayment.objects.filter(lease=lease, status="paid").first()
    if payment is None or lease_stage(lease) != LeaseStage.APPROVED:
        raise DomainError("receipt_not_ready", "审核通过后可下载押金收据", kind="not_found")
    applicant = lease.agreement.family.main_applicant
    org_name = agreement_organisation(lease.agreement)
    return deposit_receipt_issue(
        now=now,
        receipt_no=payment.receipt_no,
        payer_name=applicant.real_name,
        id_number_masked=applicant.id_number_masked,
        unit_label=lease.unit_label,  # from the unit, never the round's name
        amount_fen=payment.amount_fen,
        paid_at=payment.paid_at,
        transaction_id=payment.transaction_id,
        out_trade_no=payment.out_trade_no,
        org_name=org_name,
        verification_code=lease.agreement.verification_code,
    )


def receipt_pdf_for_view(*, lease: Lease) -> ViewedPdf:
    """The lease's deposit receipt (押金收据); making it raises `receipt_not_ready` (from
    signing/lease/deposit.py) until the lease is approved. Each copy is sealed when issued, so its
    bytes differ from copy to copy while what it shows does not: the version is the receipt
    number and the approval."""
    agreement = lease.agreement
    receipt_no = (
        DepositPayment.objects.filter(lease=lease, status=DepositPayment.Status.PAID)
        .values_list("receipt_no", flat=True)
        .first()
    )
    # Lazily: a cached page or page list was drawn from a copy issued for this very
    # version, which includes the approval, so it never shows a receipt not yet due.
    return ViewedPdf(
        title="押金收据",
        filename=f"deposit-receipt-{lease.pk}.pdf",
        version=hashlib.sha256(
            f"receipt:{lease.pk}:{receipt_no}:{agreement.status}:{agreement.sealed_at}".encode()
        ).hexdigest(),
        make=lambda: deposit_receipt_pdf_for(lease=lease, now=timezone.now()),
    )
