"""SMS notices of the selection (through the outbox: queued in the caller's transaction,
delivered after commit)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from accounts.models import Family
from selection.models import Session
from sms.services import sms_message_queue


def _local(value: datetime, fmt: str) -> str:
    return timezone.localtime(value).strftime(fmt)


def supplementary_scheduled_params(*, session: Session) -> list[str]:
    """Parameters of the `supplementary_scheduled` SMS: round, start, end (Shenzhen time)."""
    return [
        f"「{session.round.name}」",
        _local(session.starts_at, "%Y年%m月%d日 %H:%M"),
        _local(session.ends_at, "%H:%M"),
    ]


def supplementary_scheduled_sms(*, session: Session, families: list[Family], now: datetime) -> int:
    """Tell each family the time and place of its supplementary session. Returns the count."""
    params = supplementary_scheduled_params(session=session)
    sent = 0
    for family in families:
        phone = family.main_applicant.mobile
        if phone:
            sms_message_queue(phone=phone, kind="supplementary_scheduled", params=params, now=now)
            sent += 1
    return sent
