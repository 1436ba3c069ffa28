"""The development face provider: a stand-in that speaks the same protocol as a real one.

Provider side (what a real provider runs on its own servers):

- `DevFaceProvider.start` opens a session and returns the URL of the provider's page,
  `/dev/face/<provider_order_id>/` (DEBUG-only, h5/dev_views.py): a camera preview (or the
  phone's selfie picker) and the buttons 「模拟通过」/「模拟不通过」. The picture stays on
  the phone: the page never uploads it and nothing here could keep it.
- `dev_face_decide` is what the buttons post to. The first decision of a session sticks (a
  session is one attempt, like a BizToken). It makes the signed server-to-server callback to
  our callback URL and sends the phone back to `return_url?token=<provider_order_id>`, also
  when the callback failed: the return page can then poll `fetch_result`, as with a real
  provider whose notification is late or lost.

Callback signature (our side verifies it in `parse_callback`):

    X-Face-Timestamp: unix seconds when signed
    X-Face-Nonce:     16-64 characters [A-Za-z0-9_-], new for every delivery
    X-Face-Signature: hex HMAC-SHA256(DEV_SECRET, f"{timestamp}\\n{nonce}\\n".encode() + body)

Refused: a missing or malformed header, a timestamp more than CALLBACK_MAX_AGE_SECONDS
(300) away from our clock either way, a signature that does not match, a nonce already seen
(remembered in the cache for longer than a timestamp stays acceptable), a body that is not
the expected JSON. A redelivery must be signed afresh with a new nonce; `face_check_apply`
then makes it a no-op.

Why the Django cache holds the simulated provider's sessions rather than a model: they are
the provider's data, not ours (a real provider keeps them on its servers and forgets them
after a while), so they should not sit in our schema or need a migration; they expire by
themselves like a BizToken; and the cache is the one store every process shares (Redis when
REDIS_URL is set; the local-memory cache of the single-process quick start otherwise). The
nonce memory must be shared across processes for the same reason.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.validators import mask_id_number
from core import jsonsafe
from core.urls import absolute_url
from core.webhooks import header_value, webhook_post
from signing.face.base import FaceCallbackInvalid, FaceCallbackJunk, FaceResult, FaceStart

logger = logging.getLogger("anju.face")

NAME = "dev"
HEADER_TIMESTAMP = "X-Face-Timestamp"
HEADER_NONCE = "X-Face-Nonce"
HEADER_SIGNATURE = "X-Face-Signature"
SESSION_TTL_SECONDS = 30 * 60
CALLBACK_TIMEOUT_SECONDS = 5
PASS_SCORE_SIMULATED = 96.5
FAIL_SCORE_SIMULATED = 28.4

_SESSION_RE = re.compile(r"^devface_[A-Za-z0-9_-]{20,60}$")
_NONCE_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SIGNATURE_RE = re.compile(r"^[0-9a-f]{64}$")

# Tests route the provider's outgoing callback through the Django test client; None is the
# network (httpx's default transport).
callback_transport: httpx.BaseTransport | None = None


def dev_secret() -> str:
    """FACE["DEV_SECRET"], or one derived from SECRET_KEY (stable across restarts, distinct
    from every other use of the key)."""
    configured = settings.FACE.get("DEV_SECRET", "")
    if configured:
        return configured
    return salted_hmac("anju.face.dev", "callback-signing", algorithm="sha256").hexdigest()


def dev_signature(*, secret: str, timestamp: str, nonce: str, body: bytes) -> str:
    message = f"{timestamp}\n{nonce}\n".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def dev_signed_headers(
    *, body: bytes, timestamp: int, nonce: str | None = None, secret: str | None = None
) -> dict[str, str]:
    """The headers the provider sends with `body`, signed at `timestamp`."""
    nonce = nonce or secrets.token_urlsafe(18)
    stamp = str(timestamp)
    return {
        HEADER_TIMESTAMP: stamp,
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: dev_signature(
            secret=secret or dev_secret(), timestamp=stamp, nonce=nonce, body=body
        ),
    }


def _max_age() -> int:
    return int(settings.FACE.get("CALLBACK_MAX_AGE_SECONDS", 300))


def _session_key(provider_order_id: str) -> str:
    return f"face:dev:session:{provider_order_id}"


def _decision_key(provider_order_id: str) -> str:
    return f"face:dev:decision:{provider_order_id}"


def _delivery_key(provider_order_id: str) -> str:
    return f"face:dev:delivery:{provider_order_id}"


def _nonce_key(nonce: str) -> str:
    return f"face:dev:nonce:{nonce}"


def _mask_name(name: str) -> str:
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


def _with_token(url: str, token: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "token"]
    query.append(("token", token))
    return urlunsplit(parts._replace(query=urlencode(query)))


# ------------------------------------------------------------------ the provider's side


@dataclass(frozen=True)
class DevFaceSession:
    provider_order_id: str
    name_masked: str
    id_number_masked: str
    return_url: str
    decision: dict | None  # {"passed", "score", "result_id", "decided_at"} once decided
    delivered: bool | None  # None until a callback was attempted

    @property
    def return_url_with_token(self) -> str:
        return _with_token(self.return_url, self.provider_order_id)


def dev_face_session(provider_order_id: str) -> DevFaceSession | None:
    """The session behind the provider's page, or None if unknown or expired. It holds the
    masked name and ID number only, for display."""
    if not _SESSION_RE.match(provider_order_id or ""):
        return None
    state = cache.get(_session_key(provider_order_id))
    if state is None:
        return None
    return DevFaceSession(
        provider_order_id=provider_order_id,
        name_masked=state["name_masked"],
        id_number_masked=state["id_number_masked"],
        return_url=state["return_url"],
        decision=cache.get(_decision_key(provider_order_id)),
        delivered=cache.get(_delivery_key(provider_order_id)),
    )


@dataclass(frozen=True)
class DevFaceOutcome:
    return_url: str  # where the phone goes next: return_url?token=<provider_order_id>
    passed: bool  # the decision that stuck (the first one)
    delivered: bool  # whether our callback endpoint accepted the notification


def dev_face_decide(
    *, provider_order_id: str, passed: bool, now: datetime | None = None
) -> DevFaceOutcome | None:
    """「模拟通过」/「模拟不通过」: record the decision (the first one sticks), notify our
    callback URL server to server, signed, and say where the phone goes. None if the session
    is unknown or expired. Never receives or keeps a picture."""
    now = now or timezone.now()
    if not _SESSION_RE.match(provider_order_id or ""):
        return None
    state = cache.get(_session_key(provider_order_id))
    if state is None:
        return None
    decision = {
        "passed": bool(passed),
        "score": PASS_SCORE_SIMULATED if passed else FAIL_SCORE_SIMULATED,
        "result_id": f"devres_{secrets.token_hex(12)}",
        "decided_at": int(now.timestamp()),
    }
    if not cache.add(_decision_key(provider_order_id), decision, SESSION_TTL_SECONDS):
        decision = cache.get(_decision_key(provider_order_id)) or decision
    payload = {
        "order_id": state["order_id"],
        "provider_order_id": provider_order_id,
        "passed": decision["passed"],
        "score": decision["score"],
        "result_id": decision["result_id"],
    }
    delivered = _deliver(state["callback_url"], payload, now)
    cache.set(_delivery_key(provider_order_id), delivered, SESSION_TTL_SECONDS)
    return DevFaceOutcome(
        return_url=_with_token(state["return_url"], provider_order_id),
        passed=bool(decision["passed"]),
        delivered=delivered,
    )


def _deliver(callback_url: str, payload: dict, now: datetime) -> bool:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    headers = dev_signed_headers(body=body, timestamp=int(now.timestamp()))
    return webhook_post(
        url=callback_url,
        body=body,
        headers=headers,
        transport=callback_transport,
        timeout=CALLBACK_TIMEOUT_SECONDS,
        what="dev face callback",
    )


# ---------------------------------------------------------------------------- our side


class DevFaceProvider:
    """The development provider (settings.FACE["PROVIDER"] == "dev"). `clock` gives the
    time the callback's timestamp is checked against; tests pin it."""

    name = NAME

    def __init__(self, *, clock: Callable[[], datetime] = timezone.now) -> None:
        self.clock = clock

    def start(
        self, *, order_id: str, real_name: str, id_number: str, return_url: str, callback_url: str
    ) -> FaceStart:
        if not order_id or len(order_id) > 64:
            raise ValueError("order_id must be 1-64 characters")
        if urlsplit(callback_url).scheme not in ("http", "https"):
            raise ValueError("callback_url must be an absolute http(s) URL")
        provider_order_id = f"devface_{secrets.token_urlsafe(24)}"
        cache.set(
            _session_key(provider_order_id),
            {
                "order_id": order_id,
                "return_url": return_url,
                "callback_url": callback_url,
                # The provider's page shows who is being checked; the full ID number is not
                # needed by a simulation, so it is not kept.
                "name_masked": _mask_name(real_name),
                "id_number_masked": mask_id_number(id_number),
            },
            SESSION_TTL_SECONDS,
        )
        return FaceStart(
            redirect_url=absolute_url(f"/dev/face/{provider_order_id}/"),
            provider_order_id=provider_order_id,
        )

    def parse_callback(self, *, body: bytes, headers: Mapping[str, str]) -> FaceResult:
        timestamp = header_value(headers, HEADER_TIMESTAMP)
        nonce = header_value(headers, HEADER_NONCE)
        signature = header_value(headers, HEADER_SIGNATURE).lower()
        if not (timestamp and nonce and signature):
            raise FaceCallbackJunk(message="人脸识别结果通知缺少签名")
        if not (
            timestamp.isascii()
            and timestamp.isdigit()
            and len(timestamp) <= 12
            and _NONCE_RE.match(nonce)
            and _SIGNATURE_RE.match(signature)
        ):
            raise FaceCallbackJunk(message="人脸识别结果通知签名格式不正确")
        if abs(int(self.clock().timestamp()) - int(timestamp)) > _max_age():
            raise FaceCallbackInvalid("face_callback_stale", "人脸识别结果通知已过期")
        expected = dev_signature(secret=dev_secret(), timestamp=timestamp, nonce=nonce, body=body)
        if not hmac.compare_digest(expected, signature):
            raise FaceCallbackInvalid(message="人脸识别结果通知签名不正确")
        # Remembered only once the signature holds, so that forgeries cannot use up nonces;
        # kept for longer than the timestamp stays acceptable in either direction.
        if not cache.add(_nonce_key(nonce), 1, 2 * _max_age() + 60):
            raise FaceCallbackInvalid("face_callback_replayed", "人脸识别结果通知重复")
        return self._result(body)

    def _result(self, body: bytes) -> FaceResult:
        try:
            data = jsonsafe.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise FaceCallbackInvalid(message="人脸识别结果通知格式不正确") from exc
        if not isinstance(data, dict):
            raise FaceCallbackInvalid(message="人脸识别结果通知格式不正确")
        order_id, passed = data.get("order_id"), data.get("passed")
        score, result_id = data.get("score"), data.get("result_id")
        valid = (
            isinstance(order_id, str)
            and 0 < len(order_id) <= 64
            and isinstance(passed, bool)
            and (
                score is None
                or (
                    isinstance(score, int | float)
                    and not isinstance(score, bool)
                    and 0 <= score <= 100
                )
            )
            and isinstance(result_id, str)
            and 0 < len(result_id) <= 100
        )
        if not valid:
            raise FaceCallbackInvalid(message="人脸识别结果通知内容不正确")
        assert isinstance(order_id, str) and isinstance(passed, bool)  # checked just above
        assert isinstance(result_id, str)
        return FaceResult(
            order_id=order_id,
            passed=passed,
            score=None if score is None else float(score),
            result_id=result_id,
            provider=self.name,
        )

    def fetch_result(self, *, provider_order_id: str) -> FaceResult | None:
        """The provider's own record of the session (its query API); None until decided."""
        if not _SESSION_RE.match(provider_order_id or ""):
            raise FaceCallbackInvalid(message="人脸识别会话不存在或已过期")
        state = cache.get(_session_key(provider_order_id))
        if state is None:
            raise FaceCallbackInvalid(message="人脸识别会话不存在或已过期")
        decision = cache.get(_decision_key(provider_order_id))
        if decision is None:
            return None
        return FaceResult(
            order_id=state["order_id"],
            passed=decision["passed"],
            score=decision["score"],
            result_id=decision["result_id"],
            provider=self.name,
        )
