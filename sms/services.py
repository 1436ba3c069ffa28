"""SMS verification codes and the outbox.

Codes: 6 digits, stored as a keyed hash, bound to purpose + subject + phone, live for
CODE_TTL_SECONDS, resend cooldown, dead after MAX_ATTEMPTS wrong tries, capped per phone per
(local) day and per IP per hour, compared in constant time. Messages are queued in the caller's
transaction and delivered after commit; failures are recorded and retried with backoff.
"""

from __future__ import annotations

import logging
import secrets
import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.errors import Throttled, ValidationFailed
from core.locking import lock_first
from core.loops import loop_every, start_in_process
from sms import crypto, texts
from sms.models import Purpose, SmsCode, SmsMessage
from sms.providers import SmsSendError, get_provider

logger = logging.getLogger("anju.sms")

# Delay before retry N (1-based); the last value repeats.
RETRY_BACKOFF_SECONDS = (5, 15, 60, 180, 600)
# A claim older than this is from a process that died mid-send; the sweeper takes it back.
STALE_CLAIM_SECONDS = 120
OUTBOX_INTERVAL = 1.0  # seconds between outbox passes (notices wait at most about this)


def _conf(name: str) -> int:
    return settings.SMS[name]


def _code_hash(*, salt: str, purpose: str, subject: str, phone: str, code: str) -> str:
    return crypto.keyed_hash(salt, purpose, subject, phone, code)


def _local_day_start(now: datetime) -> datetime:
    local = timezone.localtime(now)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def sms_code_send(
    *,
    purpose: str,
    subject: str,
    phone: str,
    ip: str,
    now: datetime | None = None,
    conceal: bool = False,
) -> SmsCode:
    """Issue a new code for (purpose, subject) and queue its SMS to `phone`.

    `phone` may be empty (an unknown subject): the code row is written, so cooldown, caps and
    attempts behave identically, but no message is sent. Locks the subject's latest code.

    `conceal`: the answer must not tell whether the subject is known (login by ID number).
    Then the request does the same work either way and never waits on the provider: the
    outbox row is written for an unknown subject too (no phone: the worker retires it
    unsent), and every row is left to the outbox worker, woken at commit, instead of being
    delivered after commit inside the request.

    Raises Throttled: `sms_resend_too_soon` (with retry_after), `sms_daily_cap`,
    `sms_ip_throttled`.
    """
    now = now or timezone.now()
    with transaction.atomic():
        latest = lock_first(
            SmsCode.objects.filter(purpose=purpose, subject=subject).order_by("-created_at", "-id")
        )
        cooldown = timedelta(seconds=_conf("RESEND_COOLDOWN_SECONDS"))
        if latest and now < latest.created_at + cooldown:
            wait = int((latest.created_at + cooldown - now).total_seconds() + 0.999)
            raise Throttled(
                "sms_resend_too_soon", f"验证码已发送，请{wait}秒后再试", retry_after=wait
            )
        day_start = _local_day_start(now)
        same_target = Q(subject=subject) | (Q(phone=phone) if phone else Q(pk__in=[]))
        if SmsCode.objects.filter(
            same_target, created_at__gte=day_start, created_at__lte=now
        ).count() >= _conf("DAILY_CAP_PER_PHONE"):
            raise Throttled("sms_daily_cap", "该手机号码今日获取验证码次数已达上限，请明日再试")
        if ip and SmsCode.objects.filter(
            ip=ip, created_at__gt=now - timedelta(hours=1), created_at__lte=now
        ).count() >= _conf("HOURLY_CAP_PER_IP"):
            raise Throttled("sms_ip_throttled", "当前网络获取验证码过于频繁，请稍后再试")

        code = f"{secrets.randbelow(10**6):06d}"
        salt = secrets.token_hex(16)
        ttl = _conf("CODE_TTL_SECONDS")
        message = None
        if phone or conceal:
            message = sms_message_queue(
                phone=phone,
                kind="verify_code",
                params=[code, str(ttl // 60), Purpose(purpose).label],
                expires_at=now + timedelta(seconds=ttl),
                now=now,
                after_commit=not conceal,
            )
        return SmsCode.objects.create(
            purpose=purpose,
            subject=subject,
            phone=phone,
            salt=salt,
            code_hash=_code_hash(
                salt=salt, purpose=purpose, subject=subject, phone=phone, code=code
            ),
            created_at=now,
            expires_at=now + timedelta(seconds=ttl),
            ip=ip,
            message=message,
        )


def sms_code_verify(
    *, purpose: str, subject: str, phone: str, code: str, now: datetime | None = None
) -> None:
    """Check `code` against the live code of (purpose, subject) sent to `phone`; use it up.

    Locks that code row, so parallel guesses count one by one. A wrong guess is committed
    (the attempt counts) before the error is raised. Raises ValidationFailed:
    `sms_code_invalid`, `sms_code_expired`, `sms_code_used`, `sms_code_locked`.
    """
    now = now or timezone.now()
    code = (code or "").strip()
    error: ValidationFailed | None = None
    with transaction.atomic():
        latest = lock_first(
            SmsCode.objects.filter(purpose=purpose, subject=subject).order_by("-created_at", "-id")
        )
        if latest is None:  # no code was ever sent for this purpose and person
            raise ValidationFailed(
                "sms_code_invalid", "请先获取验证码", fields={"code": ["请先获取验证码"]}
            )
        if latest.used_at is not None:
            raise ValidationFailed("sms_code_used", "验证码已使用，请重新获取", fields=_field())
        if latest.attempts >= _conf("MAX_ATTEMPTS"):
            raise ValidationFailed(
                "sms_code_locked", "验证码错误次数过多，请重新获取", fields=_field()
            )
        if now >= latest.expires_at:
            raise ValidationFailed("sms_code_expired", "验证码已过期，请重新获取", fields=_field())
        expected = _code_hash(
            salt=latest.salt, purpose=purpose, subject=subject, phone=phone, code=code
        )
        # The phone is part of the hash: a code sent to another number never matches.
        if latest.phone and phone and crypto.hashes_equal(expected, latest.code_hash):
            latest.used_at = now
            latest.save(update_fields=["used_at"])
            return
        latest.attempts += 1
        latest.save(update_fields=["attempts"])
        left = _conf("MAX_ATTEMPTS") - latest.attempts
        error = (
            _invalid(f"验证码错误，还可尝试{left}次")
            if left > 0
            else ValidationFailed(
                "sms_code_locked", "验证码错误次数过多，请重新获取", fields=_field()
            )
        )
    raise error


def _field() -> dict[str, list[str]]:
    return {"code": ["验证码不正确"]}


def _invalid(message: str) -> ValidationFailed:
    return ValidationFailed("sms_code_invalid", message, fields=_field())


# ---------------------------------------------------------------------------------- outbox


def sms_message_queue(
    *,
    phone: str,
    kind: str,
    params: list[str],
    expires_at: datetime | None = None,
    now: datetime | None = None,
    after_commit: bool = True,
) -> SmsMessage:
    """Write an outbox row in the current transaction; deliver it after commit (a code the
    person is waiting for), or, with `after_commit=False`, leave it to the outbox worker
    (`manage.py sms_outbox --loop`, a thread of the quick start), woken at commit when it
    runs in this process: a notice that must not make the request or the clock's tick wait
    on the provider (the selection result: a confirm's answer, a close of a thousand
    families), a login code whose delivery time must not tell that the ID number is known.

    An empty `phone` writes a row the worker retires unsent (a concealed unknown subject).
    Never calls the provider itself, so it is safe inside a transaction that holds locks.
    """
    message = _outbox_row(phone, kind, params, now or timezone.now(), expires_at)
    message.save(force_insert=True)
    # robust: a provider failure must never turn the committed request into an error; the
    # outbox row stays due and the sweeper retries it.
    if after_commit:
        transaction.on_commit(lambda: sms_message_deliver(message_id=message.pk), robust=True)
    else:
        transaction.on_commit(sms_outbox_wake)
    return message


def sms_messages_queue(*, kind: str, messages: list[tuple[str, list[str]]], now: datetime) -> int:
    """Many notices of one kind, (phone, params) each, written in one INSERT in the current
    transaction and left to the outbox worker (as `sms_message_queue(after_commit=False)`):
    a close of a thousand families queues its notices without a query per family. Rows
    without a phone are not written. Returns the count."""
    rows = [_outbox_row(phone, kind, params, now) for phone, params in messages if phone]
    if rows:
        SmsMessage.objects.bulk_create(rows)
        transaction.on_commit(sms_outbox_wake)
    return len(rows)


def _outbox_row(
    phone: str, kind: str, params: list, now: datetime, expires_at: datetime | None = None
) -> SmsMessage:
    """An unsaved outbox row, due now."""
    if kind not in texts.TEXTS:
        raise ValueError(f"unknown SMS kind {kind!r}")
    return SmsMessage(
        phone=phone,
        kind=kind,
        payload=sms_payload(params),
        next_attempt_at=now,
        created_at=now,
        expires_at=expires_at,
    )


def sms_payload(params: list) -> str:
    """An outbox row's payload: its parameters, sealed (sms.crypto) until sent."""
    return crypto.seal({"params": [str(p) for p in params]})


# Set at the commit of a row left to the worker: an outbox loop in this process (the quick
# start's thread) starts its next pass at once instead of at the end of its interval. A
# worker in another process polls every `interval`.
_outbox_wake = threading.Event()


def sms_outbox_wake() -> None:
    _outbox_wake.set()


def sms_outbox_loop(*, stop: threading.Event, interval: float = OUTBOX_INTERVAL) -> None:
    """Deliver due messages until `stop` is set, a pass every `interval` seconds or as soon
    as a row is committed in this process; a failing pass is logged and retried."""

    def step() -> None:
        sms_outbox_run_due()
        # Cleared before the wait ends the pass: a commit during the pass sets it again, so
        # its row is taken by the next pass at once (the commit precedes the set).
        _outbox_wake.wait(interval)
        _outbox_wake.clear()

    loop_every(stop=stop, tick=0, step=step, logger=logger, what="SMS outbox pass")


def sms_outbox_start_in_process() -> None:
    """The embedded quick start's outbox worker: a daemon thread inside the server."""
    start_in_process("sms-outbox", sms_outbox_loop)


def _claim(message_id: int, now: datetime) -> tuple[SmsMessage, list[str]] | None:
    """Take a due message for sending. Returns None when another worker has it, it is
    final, or it just expired (then it is marked so)."""
    stale = now - timedelta(seconds=STALE_CLAIM_SECONDS)
    with transaction.atomic():
        message = lock_first(
            SmsMessage.objects.filter(pk=message_id, next_attempt_at__lte=now).filter(
                Q(status__in=[SmsMessage.Status.QUEUED, SmsMessage.Status.RETRY])
                | Q(status=SmsMessage.Status.SENDING, claimed_at__lt=stale)
            ),
            skip_locked=True,
        )
        if message is None:
            return None
        data = crypto.unseal(message.payload)
        if (message.expires_at and now >= message.expires_at) or data is None or not message.phone:
            message.status = SmsMessage.Status.EXPIRED
            message.payload = ""
            message.last_error = (
                "payload unreadable (key changed)"
                if data is None
                else ""
                if message.phone
                else "no recipient: a code for an unknown subject, never sent"
            )
            message.save(update_fields=["status", "payload", "last_error"])
            return None
        message.status = SmsMessage.Status.SENDING
        message.claimed_at = now
        message.attempts += 1
        message.save(update_fields=["status", "claimed_at", "attempts"])
        return message, data["params"]


def sms_message_deliver(*, message_id: int, now: datetime | None = None) -> SmsMessage | None:
    """Send one outbox message if it is due: claim it, call the provider outside any
    transaction, record the outcome. Safe to call twice (the claim is exclusive)."""
    now = now or timezone.now()
    claimed = _claim(message_id, now)
    if claimed is None:
        return None
    message, params = claimed
    provider = get_provider()
    message.provider = provider.name
    try:
        message.provider_message_id = provider.send(
            phone=message.phone,
            kind=message.kind,
            params=params,
            text=texts.render(message.kind, params),
        )
    except Exception as exc:  # a provider bug is a failed attempt, recorded and retried
        retryable = exc.retryable if isinstance(exc, SmsSendError) else True
        message.last_error = f"{exc.__class__.__name__}: {exc}"[:500]
        if retryable and message.attempts < _conf("MAX_SEND_ATTEMPTS"):
            delay = RETRY_BACKOFF_SECONDS[min(message.attempts, len(RETRY_BACKOFF_SECONDS)) - 1]
            message.status = SmsMessage.Status.RETRY
            message.next_attempt_at = now + timedelta(seconds=delay)
        else:
            message.status = SmsMessage.Status.DEAD
            message.payload = ""
        logger.warning(
            "SMS %s to %s failed (%s): %s", message.pk, message.phone, message.status, exc
        )
        message.save(
            update_fields=["provider", "last_error", "status", "next_attempt_at", "payload"]
        )
        return message
    message.status = SmsMessage.Status.SENT
    message.sent_at = now
    message.payload = ""
    message.last_error = ""
    message.save(
        update_fields=[
            "provider",
            "provider_message_id",
            "status",
            "sent_at",
            "payload",
            "last_error",
        ]
    )
    return message


def sms_outbox_run_due(*, now: datetime | None = None, limit: int = 100) -> int:
    """Deliver every message that is due (new ones whose after-commit send was lost, retries,
    stale claims). Returns how many were attempted."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=STALE_CLAIM_SECONDS)
    ids = list(
        SmsMessage.objects.filter(next_attempt_at__lte=now)
        .filter(
            Q(status__in=[SmsMessage.Status.QUEUED, SmsMessage.Status.RETRY])
            | Q(status=SmsMessage.Status.SENDING, claimed_at__lt=stale)
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for message_id in ids:
        sms_message_deliver(message_id=message_id, now=now)
    return len(ids)
