"""Face-recognition providers behind one interface; `get_provider()` returns the configured
one (settings.FACE["PROVIDER"]): "dev" (a simulated provider served by this app under /dev/
when DEBUG) or "tencent" (Tencent Cloud FaceID, API 3.0)."""

from __future__ import annotations

from django.conf import settings
from django.utils.module_loading import import_string

from signing.face.base import (
    CALLBACK_MAX_BYTES,
    FaceCallbackInvalid,
    FaceCallbackJunk,
    FaceOrderUnknown,
    FaceProvider,
    FaceProviderError,
    FaceResult,
    FaceResultPending,
    FaceStart,
)

PROVIDERS = {
    "dev": "signing.face.dev.DevFaceProvider",
    "tencent": "signing.face.tencent.TencentFaceProvider",
}


def provider_name() -> str:
    return settings.FACE["PROVIDER"]


def get_provider() -> FaceProvider:
    name = settings.FACE["PROVIDER"]
    return import_string(PROVIDERS.get(name, name))()


__all__ = [
    "CALLBACK_MAX_BYTES",
    "FaceCallbackInvalid",
    "FaceCallbackJunk",
    "FaceOrderUnknown",
    "FaceProvider",
    "FaceProviderError",
    "FaceResult",
    "FaceResultPending",
    "FaceStart",
    "get_provider",
    "provider_name",
]
