"""Applicant login (development provider: ID number + SMS code; OIDC in accounts.identity),
device sessions (one active device per family) and the staff audit trail."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Applicant, AuditEntry, DeviceSession, Family, Layout, User
from accounts.validators import id_number_clean, mobile_clean
from core.context import RequestContext
from core.errors import DomainError, ValidationFailed
from sms import crypto
from sms.models import Purpose
from sms.services import sms_code_send, sms_code_verify


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
    row with no phone and no message), so the answer never reveals registration.
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
            locked = Applicant.objects.select_for_update().get(pk=applicant.pk)
            if locked.user_id is None:
                user = User.objects.create(username=f"applicant-{locked.pk}")
                user.set_unusable_password()
                user.save(update_fields=["password"])
                locked.user = user
                locked.save(update_fields=["user"])
            applicant.user = locked.user
    return applicant


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
    `replaced` and its device is told so on its next request."""
    now = now or timezone.now()
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        DeviceSession.objects.filter(user=user, ended_at__isnull=True).update(
            ended_at=now, end_reason=DeviceSession.EndReason.REPLACED
        )
        return DeviceSession.objects.create(
            user=user,
            session_key=session_key,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
            provider=provider,
            created_at=now,
        )


def device_session_end(*, session_key: str, now: datetime | None = None) -> None:
    DeviceSession.objects.filter(session_key=session_key, ended_at__isnull=True).update(
        ended_at=now or timezone.now(), end_reason=DeviceSession.EndReason.LOGOUT
    )


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
