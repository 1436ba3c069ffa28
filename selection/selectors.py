"""Reads for the pages, the API and the broadcast board."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet

from accounts.models import Family, Layout
from selection.models import (
    Allocation,
    CartItem,
    Round,
    Seat,
    Session,
    SupplementaryApplication,
    Unit,
)
from selection.phases import FamilyState, family_state, formal_day_deadline


def round_list_public(*, limit: int = 20) -> list[Round]:
    return list(Round.objects.order_by("-preselect_starts_at")[:limit])


def round_get(*, round_id: int) -> Round | None:
    return Round.objects.filter(pk=round_id).first()


def family_rounds(*, family: Family) -> QuerySet[Round]:
    return (
        Round.objects.filter(sessions__seats__family=family)
        .distinct()
        .order_by("-preselect_starts_at")
    )


def unit_list(
    *,
    round_id: int,
    building: str = "",
    layout: str = "",
    orientation: str = "",
    available_only: bool = False,
) -> QuerySet[Unit]:
    units = Unit.objects.filter(round_id=round_id).order_by("building", "floor", "number")
    if building:
        units = units.filter(building=building)
    if layout:
        units = units.filter(layout=layout)
    if orientation:
        units = units.filter(orientation=orientation)
    if available_only:
        units = units.filter(status=Unit.Status.AVAILABLE)
    return units


def unit_filters(*, round_id: int) -> dict[str, list]:
    units = Unit.objects.filter(round_id=round_id)
    return {
        "buildings": sorted(set(units.values_list("building", flat=True)), key=_natural),
        "layouts": sorted(set(units.values_list("layout", flat=True))),
        "orientations": sorted(set(units.values_list("orientation", flat=True))),
    }


def _natural(value: str):
    return (len(value), value)


def taken_unit_ids(*, round_id: int) -> list[int]:
    """Units of the round no family can choose any more (for a live page's snapshot)."""
    return list(
        Unit.objects.filter(round_id=round_id)
        .exclude(status=Unit.Status.AVAILABLE)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def cart_list(*, family: Family, round_id: int, kind: str) -> list[CartItem]:
    return list(
        CartItem.objects.filter(family=family, round_id=round_id, kind=kind)
        .select_related("unit")
        .order_by("position")
    )


@dataclass(frozen=True)
class MyResult:
    state: FamilyState
    allocation: Allocation | None
    seats: list[Seat]
    application: SupplementaryApplication | None
    supplementary_session: Session | None  # shown only once the day's selection has ended
    can_apply_supplementary: bool
    supplementary_deadline: datetime | None


def my_result(*, family: Family, round_id: int, now: datetime) -> MyResult:
    state = family_state(family=family, round_id=round_id, now=now)
    application = (
        SupplementaryApplication.objects.filter(round_id=round_id, family=family)
        .select_related("session")
        .first()
    )
    formal = next((s for s in state.seats if s.session.kind == Session.Kind.FORMAL), None)
    deadline = (
        formal_day_deadline(
            session=formal.session, grace_seconds=state.round.supplementary_grace_seconds
        )
        if formal
        else None
    )
    visible = application and application.session and deadline and now >= deadline
    can_apply = bool(
        formal
        and application is None
        and state.allocation is None
        and not state.gave_up
        and formal.session.ends_at <= now < deadline
    )
    return MyResult(
        state=state,
        allocation=state.allocation,
        seats=state.seats,
        application=application,
        supplementary_session=application.session if visible else None,
        can_apply_supplementary=can_apply,
        supplementary_deadline=deadline,
    )


def broadcast_snapshot(*, round_id: int, feed_size: int = 30) -> dict:
    """房源信息播报: every unit's status, counts by building and by layout, and the latest
    takes. Never family identities or ranks."""
    rnd = Round.objects.filter(pk=round_id).first()
    if rnd is None:
        return {}
    units = list(
        Unit.objects.filter(round_id=round_id)
        .order_by("building", "floor", "number")
        .values("id", "building", "number", "floor", "layout", "orientation", "area", "status")
    )
    by_building: dict[str, dict[str, int]] = defaultdict(lambda: {"total": 0, "taken": 0})
    by_layout: dict[str, dict[str, int]] = defaultdict(lambda: {"total": 0, "taken": 0})
    for unit in units:
        taken = unit["status"] != Unit.Status.AVAILABLE
        for bucket in (by_building[unit["building"]], by_layout[unit["layout"]]):
            bucket["total"] += 1
            bucket["taken"] += taken
    feed = list(
        Allocation.objects.filter(round_id=round_id)
        .order_by("-ledger_seq")
        .values("unit__building", "unit__number", "unit__layout", "how", "at", "ledger_seq")[
            :feed_size
        ]
    )
    return {
        "round": rnd,
        "units": units,
        "by_building": [
            {"building": b, **c, "available": c["total"] - c["taken"]}
            for b, c in sorted(by_building.items(), key=lambda kv: _natural(kv[0]))
        ],
        "by_layout": [
            {"layout": code, "label": Layout(code).label, **c, "available": c["total"] - c["taken"]}
            for code, c in sorted(by_layout.items())
        ],
        "feed": feed,
        "total": len(units),
        "taken": sum(1 for u in units if u["status"] != Unit.Status.AVAILABLE),
    }


def session_live(*, session_id: int) -> dict:
    """Staff live view: entered / confirmed / remaining families, units left."""
    session = Session.objects.select_related("round").get(pk=session_id)
    seats = Seat.objects.filter(session=session)
    counts = seats.aggregate(
        total=Count("pk"),
        entered=Count("pk", filter=Q(entered_at__isnull=False)),
        confirmed=Count("pk", filter=Q(outcome=Seat.Outcome.CONFIRMED)),
        auto=Count("pk", filter=Q(outcome=Seat.Outcome.AUTO_ASSIGNED)),
        no_unit=Count("pk", filter=Q(outcome=Seat.Outcome.NO_UNIT)),
        absent=Count("pk", filter=Q(outcome=Seat.Outcome.ABSENT)),
        gave_up=Count("pk", filter=Q(outcome=Seat.Outcome.GAVE_UP)),
    )
    counts["remaining"] = seats.filter(outcome=Seat.Outcome.PENDING).count()
    counts["units_left"] = Unit.objects.filter(
        round=session.round, status=Unit.Status.AVAILABLE
    ).count()
    return {"session": session, **counts}
