"""SMS notices of the selection (through the outbox: queued in the caller's transaction,
delivered after commit)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from accounts.models import Applicant, Family
from selection.models import Allocation, Round, Session
from sms.services import sms_message_queue


def _local(value: datetime, fmt: str) -> str:
    """Shenzhen time; 「{md}」 is 「12月5日」 (no leading zeros, as people write dates)."""
    local = timezone.localtime(value)
    return local.strftime(fmt.replace("{md}", f"{local.month}月{local.day}日"))


def supplementary_scheduled_params(*, session: Session) -> list[str]:
    """Parameters of the `supplementary_scheduled` SMS: round, start, end (Shenzhen time)."""
    return [
        f"「{session.round.name}」",
        _local(session.starts_at, "%Y年{md} %H:%M"),
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


RESULT_HOW: dict[str, str] = {
    Allocation.How.CONFIRMED: "您已确认选定",
    Allocation.How.AUTO: "系统已为您自动选定",
    Allocation.How.STAFF: "工作人员已为您分配",
}


def selection_result_params(*, allocation: Allocation, round_name: str) -> list[str]:
    """Parameters of the `selection_result` SMS: round, how, unit, time (Shenzhen) and the
    核验码 that finds the result's receipt in the public allocation log."""
    return [
        f"「{round_name}」",
        RESULT_HOW.get(allocation.how, "已为您确定"),
        allocation.unit.label,
        _local(allocation.at, "{md} %H:%M:%S"),
        allocation.ledger_entry.code,
    ]


def selection_result_sms(allocations: list[Allocation]) -> int:
    """Queue each family's result SMS (confirmed, auto-assigned or staff, with the unit) in the
    transaction that made the allocation; two queries however many allocations. The outbox
    worker delivers them (within about a second), so neither a confirm's answer nor the
    clock's close of a thousand families waits on the SMS provider."""
    if not allocations:
        return 0
    names = dict(
        Round.objects.filter(pk__in={a.round_id for a in allocations}).values_list("pk", "name")
    )
    phones = dict(
        Applicant.objects.filter(family__pk__in=[a.family_id for a in allocations]).values_list(
            "family__pk", "mobile"
        )
    )
    sent = 0
    for allocation in allocations:
        phone = phones.get(allocation.family_id)
        if not phone:
            continue
        sms_message_queue(
            phone=phone,
            kind="selection_result",
            params=selection_result_params(
                allocation=allocation, round_name=names[allocation.round_id]
            ),
            now=allocation.at,
            after_commit=False,  # the outbox worker sends it: no request waits on the provider
        )
        sent += 1
    return sent


def session_scheduled_params(*, session: Session) -> list[str]:
    """Parameters of the `session_scheduled` SMS: round, order, start, end (Shenzhen)."""
    return [
        f"「{session.round.name}」",
        str(session.order),
        _local(session.starts_at, "%Y年{md} %H:%M"),
        _local(session.ends_at, "%H:%M"),
    ]


def sessions_scheduled_sms(*, sessions: list[Session], now: datetime) -> int:
    """Tell each seated family its formal session's time (one query for the numbers)."""
    seated = Applicant.objects.filter(family__sessions__in=sessions).values_list(
        "family__sessions", "mobile"
    )
    by_session: dict[int, list[str]] = {}
    for session_id, phone in seated:
        by_session.setdefault(session_id, []).append(phone)
    sent = 0
    for session in sessions:
        params = session_scheduled_params(session=session)
        for phone in by_session.get(session.pk, []):
            if phone:
                sms_message_queue(phone=phone, kind="session_scheduled", params=params, now=now)
                sent += 1
    return sent
