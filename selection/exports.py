"""The result table that staff export (选房结果): a read, one row per family."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from accounts.models import Family
from selection.models import Allocation, Seat, Session

RESULT_HEADERS = [
    "排位号",
    "姓名",
    "身份证号码",
    "场次",
    "房源",
    "户型",
    "面积",
    "月租金",
    "方式",
    "时间",
    "核验码",
]


def _session_label(session: Session) -> str:
    """「第3场（正选场次）」; a supplementary session by its kind and start, never by its order
    alone (「补选场次（3月3日 14:00）」), so staff never read it as a formal session."""
    if session.kind == Session.Kind.SUPPLEMENTARY:
        start = timezone.localtime(session.starts_at)
        return f"补选场次（{start.month}月{start.day}日 {start:%H:%M}）"
    return f"第{session.order}场（{session.get_kind_display()}）"


def results_table(*, round_id: int) -> list[list[Any]]:
    """选房结果: one row per family seated in (or allocated a unit of) the round, in rank
    order, with RESULT_HEADERS' columns. ID numbers masked; times in local time, naive (a
    spreadsheet has no time zones); a family without a unit shows how its session ended."""
    allocations = {
        a.family_id: a
        for a in Allocation.objects.filter(round_id=round_id).select_related(
            "unit", "session", "ledger_entry"
        )
    }
    last_seat: dict[int, Seat] = {}
    for seat in Seat.objects.filter(session__round_id=round_id).select_related("session"):
        current = last_seat.get(seat.family_id)
        if current is None or seat.session.starts_at >= current.session.starts_at:
            last_seat[seat.family_id] = seat
    families = Family.objects.filter(pk__in=set(allocations) | set(last_seat)).select_related(
        "main_applicant"
    )
    rows = []
    for family in families.order_by("rank"):
        applicant = family.main_applicant
        head = [family.rank, applicant.real_name, applicant.id_number_masked]
        allocation = allocations.get(family.pk)
        if allocation is not None:
            unit = allocation.unit
            at = timezone.localtime(allocation.at).replace(tzinfo=None, microsecond=0)
            rows.append(
                head
                + [_session_label(allocation.session), str(unit), unit.get_layout_display()]
                + [unit.area, unit.monthly_rent, allocation.how_label, at]
                + [allocation.ledger_entry.code]
            )
        else:
            seat = last_seat[family.pk]
            rows.append(
                head
                + [_session_label(seat.session), "", "", None, None, seat.outcome_label]
                + [None, None]
            )
    return rows
