"""SMS providers behind one interface; `get_provider()` returns the configured one."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from sms.providers.base import SmsProvider, SmsSendError

PROVIDERS = {
    "console": "sms.providers.console.ConsoleProvider",
    "tencent": "sms.providers.tencent.TencentSmsProvider",
}
LABELS = {"console": "控制台（开发环境）", "tencent": "腾讯云短信"}


def provider_label(name: str) -> str:
    return LABELS.get(name, name)


def get_provider() -> SmsProvider:
    name = settings.SMS["PROVIDER"]
    return import_string(PROVIDERS.get(name, name))()


__all__ = ["SmsProvider", "SmsSendError", "get_provider", "provider_label"]
