"""The face-recognition provider interface.

A face check is an order with an external provider. The protocol every provider follows:

1. `face_check_start` records the intent (a FaceCheck STARTED with our fresh `order_id`) and
   commits; only then does the interface layer call `provider.start(...)`, outside any
   transaction. `start` may be repeated for the same order (each call opens a new session with
   the provider; the result still names our `order_id`), so a lost answer costs nothing.
2. The phone goes to `FaceStart.redirect_url`, the provider's page, and comes back to our
   `return_url` with `token=<provider_order_id>` appended (Tencent's scheme, which the
   development provider copies). The return is only a hint: nothing is believed from it.
3. The result reaches us as a callback that `parse_callback` verifies (a signature, or for
   providers without a signed callback, a signed fetch of the result from the provider by its
   token), or by polling `fetch_result`. `face_check_apply` applies it exactly once.

We keep the provider's result id and score, never the face image.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from core.errors import DomainError, Kind, Unavailable


@dataclass(frozen=True)
class FaceStart:
    redirect_url: str  # where the phone goes: the provider's face-recognition page
    provider_order_id: str  # the provider's id of the session (Tencent: the BizToken)


@dataclass(frozen=True)
class FaceResult:
    order_id: str  # ours (FaceCheck.order_id), carried through the provider
    passed: bool  # the provider's verdict; face_check_apply also requires PASS_SCORE
    score: float | None  # similarity 0-100 as the provider reports it
    result_id: str  # the provider's id of the result, kept as evidence
    provider: str = ""  # the name of the provider that vouched for this result


class FaceCallbackInvalid(DomainError):
    """A callback we cannot believe: missing or bad signature, stale, replayed, malformed."""

    code = "face_callback_invalid"
    message = "人脸识别结果通知无效"
    kind: Kind = "invalid"


class FaceCallbackJunk(FaceCallbackInvalid):
    """Not even shaped like a callback: the signature headers missing or malformed (the
    development provider), no well-formed token (Tencent), a body larger than any callback.
    Refused before a signature is checked or the provider is asked, and, unlike the other
    refusals, not logged as a refused callback: anyone can send it (the callback is
    throttled per address too). Same code and answer as any other unbelievable callback."""


# A callback is a small body (the development provider's JSON result, Tencent's token):
# anything larger is junk, refused unread.
CALLBACK_MAX_BYTES = 16 * 1024


class FaceOrderUnknown(FaceCallbackInvalid):
    code = "face_order_unknown"
    message = "人脸识别订单不存在"
    kind = "not_found"


class FaceResultPending(DomainError):
    code = "face_result_pending"
    message = "人脸识别尚未完成，请完成后再试"
    kind = "conflict"


class FaceProviderError(Unavailable):
    """The provider could not be reached or refused the request (not the applicant's fault).
    `retryable` is False for errors a retry cannot fix (bad credentials, bad configuration).
    An Unavailable: the API answers 503 `face_provider_unavailable` with Retry-After."""

    code = "face_provider_unavailable"
    message = "人脸识别服务暂时不可用，请稍后再试"

    def __init__(self, detail: str, *, retryable: bool = True) -> None:
        super().__init__(detail=detail)
        self.retryable = retryable


class FaceProvider(Protocol):
    name: str

    def start(
        self, *, order_id: str, real_name: str, id_number: str, return_url: str, callback_url: str
    ) -> FaceStart:
        """Open a session with the provider for our `order_id`. Called outside any
        transaction; raises FaceProviderError."""
        ...

    def parse_callback(self, *, body: bytes, headers: Mapping[str, str]) -> FaceResult:
        """Verify a callback and return its result; raises FaceCallbackInvalid (or a subclass)
        for anything not proven to come from the provider, FaceResultPending when the
        provider has no final result yet, FaceProviderError when it cannot be asked."""
        ...

    def fetch_result(self, *, provider_order_id: str) -> FaceResult | None:
        """Ask the provider for the result of a session; None while it is not finished."""
        ...
