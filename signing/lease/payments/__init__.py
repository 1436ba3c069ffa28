"""Payment providers behind one interface; `get_provider()` returns the configured one
(settings.PAYMENT["PROVIDER"]): "wechatpay" (WeChat Pay API v3 on the wechatpayv3 SDK,
wechatpay.py) or "dev" (the same adapter against a local fake WeChat Pay server whose cashier
page is served by this app under /dev/ when DEBUG, dev.py)."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from signing.lease.payments.base import (
    PaymentNotice,
    PaymentNotificationInvalid,
    PaymentNotificationMalformed,
    PaymentNotificationReplayed,
    PaymentNotificationStale,
    PaymentProvider,
    PaymentProviderError,
    PaymentSignatureInvalid,
    PaymentStart,
    RefundNotice,
)

PROVIDERS = {
    "dev": "signing.lease.payments.dev.DevPayProvider",
    "wechatpay": "signing.lease.payments.wechatpay.WechatPayProvider",
}
LABELS = {"dev": "开发环境收银台", "wechatpay": "微信支付"}


def provider_label(name: str) -> str:
    return LABELS.get(name, name)


def provider_name() -> str:
    return getattr(settings, "PAYMENT", {}).get("PROVIDER", "dev")


def get_provider() -> PaymentProvider:
    name = provider_name()
    return import_string(PROVIDERS.get(name, name))()


__all__ = [
    "PaymentNotice",
    "PaymentNotificationInvalid",
    "PaymentNotificationMalformed",
    "PaymentNotificationReplayed",
    "PaymentNotificationStale",
    "PaymentProvider",
    "PaymentProviderError",
    "PaymentSignatureInvalid",
    "PaymentStart",
    "RefundNotice",
    "get_provider",
    "provider_name",
]
