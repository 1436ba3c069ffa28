"""SMS notices of the selection (through the outbox: queued in the caller's transaction,
delivered after commit)."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from accounts.models import Applicant, Family
from selection.models import Allocation, Round, Session
from sms.services import sms_message_queue, sms_messages_queue


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
        allocation.unit.name,
        _local(allocation.at, "{md} %H:%M:%S"),
        allocation.ledger_entry.code,
    ]


def selection_result_sms(allocations: list[Allocation]) -> int:
    """Queue each family's result SMS (confirmed, auto-assigned or staff, with the unit) in the
    transaction that made the allocation; three queries (names, phones, one INSERT) however
    many allocations. The outbox worker delivers them (within about a second), so neither a
    confirm's answer nor the clock's close of a thousand families waits on the SMS provider."""
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
    return sms_messages_queue(
        kind="selection_result",
        messages=[
            (
                phones.get(allocation.family_id, ""),
                selection_result_params(
                    allocation=allocation, round_name=names[allocation.round_id]
                ),
            )
            for allocation in allocations
        ],
        now=allocations[0].at,
    )


# What happened to a family whose formal session ended without a unit for it: entered and
# got none; never entered though it had pre-selected (its pre-selection is void); never
# entered and had pre-selected nothing (nothing was voided).
MISSED_HOW = {
    "no_unit": "结束时未选定房源",
    "absent_voided": "未进入选房，预选结果已作废",
    "absent": "未进入选房",
}


def selection_missed_sms(
    *, session: Session, missed: dict[int, str], deadline: datetime, now: datetime
) -> int:
    """Tell each family whose formal session ended without a unit (`missed`: family id →
    "no_unit" / "absent_voided" / "absent", keys of MISSED_HOW) that it may apply for 补选,
    and until when, in the close's transaction (the outbox worker sends it): a family that
    lost a race and closed the page, or never came, learns it before the application window
    ends (minutes later, guide 000 item 9). Only a family that had pre-selected is told its
    pre-selection is void. A family that gave up is not among them (it may not apply)."""
    if not missed:
        return 0
    phones = dict(
        Applicant.objects.filter(family__pk__in=list(missed)).values_list("family__pk", "mobile")
    )
    until = _local(deadline, "{md} %H:%M")
    return sms_messages_queue(
        kind="selection_missed",
        messages=[
            (
                phones.get(family_id, ""),
                [f"「{session.round.name}」", str(session.order), MISSED_HOW[how], until],
            )
            for family_id, how in sorted(missed.items())
        ],
        now=now,
    )


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
