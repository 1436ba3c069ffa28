"""The payment provider interface (lease deposits, paid by scanning a QR code with the phone).

A payment is an order with an external provider (WeChat Pay API v3 is the model). The
protocol every provider follows:

1. Our side records the intent (an order with our fresh `out_trade_no` and the amount) and
   commits; only then does the interface layer call `provider.create_order(...)`, outside any
   transaction. `create_order` is idempotent per `out_trade_no`: the same parameters give the
   same payment session, so a lost answer costs nothing; a changed amount (or description)
   for a known `out_trade_no` is refused (`PaymentProviderError`, not retryable), as WeChat
   refuses a reused order number with different parameters.
2. The phone goes to `PaymentStart.pay_url`, the provider's cashier page (our page shows it as
   a QR code), and comes back to our `return_url` with `out_trade_no=<ours>` appended. The
   return is only a hint: nothing is believed from it.
3. The outcome reaches us as a signed notification that `parse_notification` verifies
   (signature by the provider's platform key, freshness, a nonce never seen before, then the
   encrypted resource decrypted with the APIv3 key), or by asking the provider with
   `query_order`. Our apply step must be idempotent: the provider redelivers a notification
   (signed afresh, with a new nonce) until we answer 2xx, and the same payment may also be
   learnt by a query. The apply step, not the provider, compares the amount, currency and
   order number with our own record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from core.errors import DomainError, Unavailable


@dataclass(frozen=True)
class PaymentStart:
    pay_url: str  # where the phone goes: the provider's cashier page
    prepay_id: str  # the provider's id of this payment session
    # WeChat Pay Native: the `code_url` a desktop shows as a QR code for WeChat to scan
    # (weixin://wxpay/bizpayurl?pr=...; the development provider's is its cashier page).
    code_url: str = ""


@dataclass(frozen=True)
class RefundNotice:
    """A verified statement from the provider about one refund (a REFUND.* notification,
    or the answer to our refund query)."""

    provider: str
    notification_id: str  # "" for a query result
    out_trade_no: str
    transaction_id: str
    out_refund_no: str  # ours
    refund_id: str  # the provider's
    refund_status: str  # "SUCCESS", "PROCESSING", "CLOSED", "ABNORMAL"
    refund_fen: int  # amount.refund
    total_fen: int  # amount.total (the order's)
    mchid: str
    success_time: datetime | None

    @property
    def refunded(self) -> bool:
        return self.refund_status == "SUCCESS"


@dataclass(frozen=True)
class PaymentNotice:
    """A verified statement from the provider about one order (a notification we verified,
    or the provider's answer to our query)."""

    provider: str  # the name of the provider that vouched for this notice
    notification_id: str  # the provider's event id ("" for a query result)
    out_trade_no: str  # ours
    transaction_id: str  # the provider's ("" while unpaid)
    trade_state: str  # "SUCCESS", "NOTPAY", "CLOSED", ...
    amount_fen: int  # amount.total
    currency: str  # amount.currency, "CNY"
    mchid: str
    appid: str
    success_time: datetime | None  # aware; None while unpaid

    @property
    def paid(self) -> bool:
        return self.trade_state == "SUCCESS"


class PaymentNotificationInvalid(DomainError):
    """A notification we cannot believe: missing or malformed headers, an unknown platform
    certificate, a notification for another merchant. Subclasses name the usual causes."""

    code = "payment_notification_invalid"
    message = "支付结果通知无效"
    kind = "invalid"


class PaymentNotificationJunk(PaymentNotificationInvalid):
    """Not even shaped like a notification: signature headers missing or malformed, a body
    larger than any notice. Refused before the signature is checked and, unlike the other
    refusals, not recorded: anyone can send it, and a row per anonymous POST would let them
    fill the payment log (the webhook is throttled per address too)."""


# A notification is a small JSON envelope (WeChat Pay: well under 10 KB; the encrypted
# resource is bounded at 64 KB by the provider check). Anything larger is junk.
NOTIFY_MAX_BYTES = 128 * 1024


class PaymentNotificationStale(PaymentNotificationInvalid):
    """Signed too long ago (or too far ahead) of our clock."""

    code = "payment_notification_stale"
    message = "支付结果通知已过期"


class PaymentNotificationReplayed(PaymentNotificationInvalid):
    """A nonce already seen: the same signed notification sent again. (A redelivery by the
    provider is signed afresh with a new nonce and is not this.)"""

    code = "payment_notification_replayed"
    message = "支付结果通知重复"


class PaymentSignatureInvalid(PaymentNotificationInvalid):
    """The signature does not verify with the platform public key (forged or tampered)."""

    code = "payment_signature_invalid"
    message = "支付结果通知签名不正确"


class PaymentNotificationMalformed(PaymentNotificationInvalid):
    """Signed, but the body is not what the provider sends: not the expected JSON, the
    resource does not decrypt (wrong APIv3 key, tampered ciphertext), wrong field types, an
    event we do not handle."""

    code = "payment_notification_malformed"
    message = "支付结果通知格式不正确"


class PaymentProviderError(Unavailable):
    """The provider could not be reached or refused the request (not the applicant's fault).
    `retryable` is False for errors a retry cannot fix (bad configuration, an order number
    reused with different parameters, an order already paid). `reason` is the provider's
    error code when it gave one (WeChat's "OUT_TRADE_NO_USED", "ORDERPAID", ...), else "".
    An Unavailable: the API answers 503 `payment_provider_unavailable` with Retry-After."""

    code = "payment_provider_unavailable"
    message = "支付服务暂时不可用，请稍后再试"

    def __init__(self, detail: str, *, retryable: bool = True, reason: str = "") -> None:
        super().__init__(detail=detail)
        self.retryable = retryable
        self.reason = reason


class PaymentProvider(Protocol):
    name: str

    def create_order(
        self,
        *,
        out_trade_no: str,
        description: str,
        amount_fen: int,
        notify_url: str,
        return_url: str,
        payer_hint: str,
        expires_at: datetime | None = None,
    ) -> PaymentStart:
        """Open (or find again) the provider's payment session for our `out_trade_no`.
        Called outside any transaction. Idempotent per `out_trade_no`; raises
        PaymentProviderError (retryable=False) when the parameters differ from the first
        call's or the order is already paid, and ValueError for arguments no provider
        accepts (a programming error). After `expires_at` the provider takes no money for
        the order (WeChat Pay: time_expire)."""
        ...

    def parse_notification(
        self, *, body: bytes, headers: Mapping[str, str]
    ) -> PaymentNotice | RefundNotice:
        """Verify a notification (a payment's or a refund's) and return what it states; raises PaymentNotificationInvalid
        (or a subclass) for anything not proven to come from the provider."""
        ...

    def query_order(self, *, out_trade_no: str) -> PaymentNotice | None:
        """The provider's own record of our order; None when it has no such order. Raises
        PaymentProviderError when the provider cannot be asked."""
        ...

    def close_order(self, *, out_trade_no: str) -> None:
        """Close an unpaid order so that it can no longer be paid (the window's end, or
        before a new attempt). Raises PaymentProviderError; reason "ORDERPAID" when it was
        paid meanwhile (then query it and apply the payment)."""
        ...

    def refund_create(
        self,
        *,
        out_trade_no: str,
        out_refund_no: str,
        refund_fen: int,
        total_fen: int,
        reason: str,
        notify_url: str,
    ) -> RefundNotice:
        """Ask for a refund (idempotent per `out_refund_no`); the provider's answer (usually
        PROCESSING; the outcome arrives as a REFUND.* notification or by `refund_query`)."""
        ...

    def refund_query(self, *, out_refund_no: str) -> RefundNotice | None:
        """The provider's record of our refund; None when it has none."""
        ...
