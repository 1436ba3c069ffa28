"""Applicant login (development provider: ID number + SMS code; OIDC in accounts.identity),
device sessions (one active device per family) and the staff audit trail."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import Applicant, AuditEntry, DeviceSession, Family, Layout, User
from accounts.signals import device_session_ended
from accounts.validators import id_number_clean, mobile_clean
from core.context import RequestContext
from core.errors import DomainError, ValidationFailed
from core.locking import lock_first, lock_get
from sms import crypto
from sms.models import Purpose
from sms.services import sms_code_send, sms_code_verify

logger = logging.getLogger("anju.accounts")


class LoginFailed(DomainError):
    kind = "unauthenticated"
    code = "login_failed"
    message = "身份证号码或验证码不正确"


def _login_subject(id_number: str) -> str:
    # A keyed hash: the code table never holds ID numbers, registered or not.
    return "id:" + crypto.keyed_hash("login", id_number)


def applicant_get_by_id_number(*, id_number: str) -> Applicant | None:
    return Applicant.objects.filter(id_number=id_number).select_related("family").first()


def login_code_send(*, id_number: str, ctx: RequestContext, now: datetime | None = None) -> None:
    """Send a login code to the registered mobile of the applicant with this ID number.

    Behaves the same whether or not the ID number is registered (an unknown one gets a code
    row and an outbox row with no phone, which the worker retires unsent), and never waits on
    the SMS provider, so neither the answer nor its time reveals registration.
    Raises `invalid_id_number`, and the throttles of `sms_code_send`.
    """
    number = id_number_clean(id_number)
    applicant = applicant_get_by_id_number(id_number=number)
    sms_code_send(
        purpose=Purpose.LOGIN,
        subject=_login_subject(number),
        phone=applicant.mobile if applicant else "",
        ip=ctx.ip,
        now=now,
        conceal=True,  # the same work and time either way; delivery is the worker's
    )


def applicant_authenticate(*, id_number: str, code: str, now: datetime | None = None) -> Applicant:
    """Check the login code and return the applicant, creating its user on first login.

    Raises `invalid_id_number` and the `sms_code_*` errors; an unknown ID number fails exactly
    like a wrong code.
    """
    number = id_number_clean(id_number)
    applicant = applicant_get_by_id_number(id_number=number)
    sms_code_verify(
        purpose=Purpose.LOGIN,
        subject=_login_subject(number),
        phone=applicant.mobile if applicant else "",
        code=code,
        now=now,
    )
    assert applicant is not None  # an unknown subject never verifies
    return applicant_user_ensure(applicant=applicant)


def applicant_user_ensure(*, applicant: Applicant) -> Applicant:
    if applicant.user_id is None:
        with transaction.atomic():
            locked = lock_get(Applicant.objects, pk=applicant.pk)
            if locked.user_id is None:
                user = User.objects.create(username=f"applicant-{locked.pk}")
                user.set_unusable_password()
                user.save(update_fields=["password"])
                locked.user = user
                locked.save(update_fields=["user"])
            applicant.user = locked.user
    return applicant


class DeviceActive(DomainError):
    kind = "conflict"
    code = "device_active"
    message = "该账号已在其他设备登录。在此设备继续登录，另一设备将退出"


class LoginPendingMissing(DomainError):
    kind = "unauthenticated"
    code = "login_pending_missing"
    message = "没有待确认的登录，请重新登录"


class LoginPendingExpired(DomainError):
    kind = "unauthenticated"
    code = "login_pending_expired"
    message = "登录确认已超时，请重新获取验证码登录"


# A login that passed its check (SMS code, identity platform) but waits for the applicant to
# confirm ending the other device: kept in this browser's session only, for a short time.
PENDING_LOGIN_KEY = "anju_pending_login"
PENDING_LOGIN_SECONDS = 180


def device_session_check(*, user: User, session_key: str | None) -> None:
    """Raise `device_active` when another session than `session_key` (this browser's, if it
    has one) is the user's active device: logging in here would end it, so the applicant is
    asked first. A login that is not the applicant's (a phone's signing session) never
    comes here."""
    others = DeviceSession.objects.filter(user=user, ended_at__isnull=True)
    if session_key:
        others = others.exclude(session_key=session_key)
    if others.exists():
        raise DeviceActive()


def login_pending_hold(
    *,
    store: MutableMapping[str, Any],
    applicant: Applicant,
    provider: str,
    now: datetime | None = None,
) -> None:
    """Remember in `store` (this browser's session) that `applicant` passed the login check
    and may finish logging in here by confirming, without a new code, until it expires.
    Replaces any login held before."""
    now = now or timezone.now()
    store[PENDING_LOGIN_KEY] = {
        "applicant": applicant.pk,
        "provider": provider,
        "expires": int(now.timestamp()) + PENDING_LOGIN_SECONDS,
    }


def login_pending_take(
    *, store: MutableMapping[str, Any], now: datetime | None = None
) -> tuple[Applicant, str]:
    """(applicant, provider) of the login held in `store`, which is consumed: a confirmation
    is used once, expired or not. Raises `login_pending_missing` (none held in this browser)
    and `login_pending_expired`."""
    held = store.pop(PENDING_LOGIN_KEY, None)
    if not isinstance(held, dict) or not isinstance(held.get("applicant"), int):
        raise LoginPendingMissing()
    now = now or timezone.now()
    if not isinstance(held.get("expires"), int) or now.timestamp() >= held["expires"]:
        raise LoginPendingExpired()
    applicant = Applicant.objects.select_related("user").filter(pk=held["applicant"]).first()
    if applicant is None or applicant.user is None or not applicant.user.is_active:
        raise LoginPendingMissing()
    return applicant, str(held.get("provider") or "")


def login_pending_drop(*, store: MutableMapping[str, Any]) -> None:
    """The applicant chose not to end the other device: forget the held login."""
    store.pop(PENDING_LOGIN_KEY, None)


def _device_sessions_ended_announce(ended: list[tuple[str, str]]) -> None:
    """After the commit: tell the layers around (realtime closes the sockets) which sessions
    ended and why. A receiver that fails is logged; the caller's work stands."""

    def send() -> None:
        for session_key, reason in ended:
            for receiver, result in device_session_ended.send_robust(
                sender=DeviceSession, session_key=session_key, reason=reason
            ):
                if isinstance(result, Exception):
                    logger.warning("device_session_ended receiver %r failed: %r", receiver, result)

    if ended:
        transaction.on_commit(send, robust=True)


def device_session_start(
    *,
    user: User,
    session_key: str,
    provider: str,
    ctx: RequestContext,
    now: datetime | None = None,
) -> DeviceSession:
    """Make this session the user's only active device. Locks the user row so that two
    simultaneous logins end with exactly one active device; the one replaced is marked
    `replaced`, and once committed `device_session_ended` tells its open pages at once.
    A session that already is the active device (the same browser logging in again keeps
    its session) stays as it is."""
    now = now or timezone.now()
    with transaction.atomic():
        lock_first(User.objects.filter(pk=user.pk))
        active = DeviceSession.objects.filter(user=user, ended_at__isnull=True)
        current = active.filter(session_key=session_key).first()
        if current is not None:
            return current
        ended = [(key, "replaced") for key in active.values_list("session_key", flat=True)]
        active.update(ended_at=now, end_reason=DeviceSession.EndReason.REPLACED)
        device = DeviceSession.objects.create(
            user=user,
            session_key=session_key,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            provider=provider,
            created_at=now,
        )
        _device_sessions_ended_announce(ended)
        return device


def device_session_end(*, session_key: str, now: datetime | None = None) -> None:
    """Log this session's device out; once committed, its open pages are told at once."""
    with transaction.atomic():
        ended = DeviceSession.objects.filter(session_key=session_key, ended_at__isnull=True).update(
            ended_at=now or timezone.now(), end_reason=DeviceSession.EndReason.LOGOUT
        )
        if ended:
            _device_sessions_ended_announce([(session_key, "logout")])


def device_session_status(*, session_key: str) -> str | None:
    """None when the session is this user's active device, else why it is not
    ('replaced', 'logout', or 'unknown')."""
    row = DeviceSession.objects.filter(session_key=session_key).values("ended_at", "end_reason")
    found = row.first()
    if found is None:
        return "unknown"
    if found["ended_at"] is None:
        return None
    return found["end_reason"] or "unknown"


def audit_record(
    *,
    actor: User | None,
    action: str,
    target: str = "",
    detail: dict | None = None,
    ip: str = "",
    now: datetime | None = None,
) -> AuditEntry:
    return AuditEntry.objects.create(
        actor=actor,
        action=action,
        target=target[:200],
        detail=detail or {},
        ip=ip,
        at=now or timezone.now(),
    )


def family_upsert(
    *,
    rank: int,
    household_size: int,
    eligible_layouts: list[str],
    real_name: str,
    id_number: str,
    mobile: str,
) -> tuple[Family, bool]:
    """Create or update a family and its main applicant, keyed by the ID number.

    Validates the ID number and mobile (`invalid_id_number`, `invalid_mobile`) and the
    layouts (`invalid_layout`). Returns (family, created)."""
    number = id_number_clean(id_number)
    phone = mobile_clean(mobile)
    unknown = [code for code in eligible_layouts if code not in Layout.values]
    if unknown:
        raise ValidationFailed(
            "invalid_layout", "户型不正确", fields={"eligible_layouts": [", ".join(unknown)]}
        )
    with transaction.atomic():
        applicant, _ = Applicant.objects.update_or_create(
            id_number=number, defaults={"real_name": real_name.strip(), "mobile": phone}
        )
        family, created = Family.objects.update_or_create(
            main_applicant=applicant,
            defaults={
                "rank": rank,
                "household_size": household_size,
                "eligible_layouts": list(eligible_layouts),
            },
        )
    return family, created


def applicant_mobile_change_by_staff(
    *, applicant_id: int, mobile: str, reason: str, actor: User, ip: str = "", now: datetime
) -> Applicant:
    """Staff change an applicant's registered mobile (e.g. the old number is lost), with a
    written reason. The same mobile rule as everywhere (`mobile_clean`); audited with both
    numbers masked; the field history keeps who and why; an SMS goes to the old number (so a
    change the applicant did not ask for is noticed) and to the new one. Refused:
    `applicant_not_found`, `invalid_mobile`, `reason_required`, `mobile_unchanged`."""
    from accounts.validators import mask_mobile, reason_clean
    from sms.services import sms_message_queue

    reason = reason_clean(reason)
    new = mobile_clean(mobile)
    with transaction.atomic():
        applicant = lock_first(Applicant.objects.filter(pk=applicant_id))
        if applicant is None:
            raise ValidationFailed("applicant_not_found", "申请人不存在")
        old = applicant.mobile
        if old == new:
            raise ValidationFailed(
                "mobile_unchanged",
                "新手机号码与原号码相同",
                fields={"mobile": ["新手机号码与原号码相同"]},
            )
        applicant.mobile = new
        applicant._history_user = actor
        applicant._change_reason = reason
        applicant.save(update_fields=["mobile"])
        params = [mask_mobile(new), mask_mobile(old)]
        for phone in (old, new):
            sms_message_queue(phone=phone, kind="mobile_changed_by_staff", params=params, now=now)
        audit_record(
            actor=actor,
            action="applicant.mobile_changed_by_staff",
            target=f"applicant:{applicant.pk}",
            detail={
                "old_mobile_masked": mask_mobile(old),
                "new_mobile_masked": mask_mobile(new),
                "reason": reason,
            },
            ip=ip,
            now=now,
        )
    return applicant
