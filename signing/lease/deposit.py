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
from datetime import datetime

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
from signing.lease.payments.base import PaymentNotice, PaymentProviderError, PaymentStart
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


def _out_trade_no(now: datetime) -> str:
    # WeChat Pay: 6-32 characters of [0-9A-Za-z_-*], unique per merchant.
    return f"AJ{timezone.localtime(now):%Y%m%d%H%M%S}{secrets.token_hex(6).upper()}"


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
                out_trade_no=_out_trade_no(now),
                amount_fen=lease.deposit_fen,
                created_at=now,
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
    *, notice: PaymentNotice | None, provider: str, outcome: str, code: str, body: bytes, ip: str
) -> None:
    PaymentNotification.objects.create(
        provider=provider,
        received_at=timezone.now(),
        outcome=outcome,
        code=code,
        out_trade_no=(notice.out_trade_no if notice else "")[:64],
        transaction_id=(notice.transaction_id if notice else "")[:64],
        amount_fen=notice.amount_fen if notice else None,
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
