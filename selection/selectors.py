"""Reads for the pages, the API and the broadcast board."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet

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


def family_allocated_units(*, family: Family) -> dict[int, Unit]:
    """The unit allocated to the family in each round that has one (round id → unit)."""
    allocations = Allocation.objects.filter(family=family).select_related("unit")
    return {allocation.round_id: allocation.unit for allocation in allocations}


def family_unit_list(
    *,
    family: Family,
    round_id: int,
    available_only: bool,
    building: str = "",
    layout: str = "",
    orientation: str = "",
) -> QuerySet[Unit]:
    """unit_list, each unit annotated `eligible`: whether the family may choose it (its
    layout among the family's 可选户型, the rule Family.may_choose and the cart apply)."""
    return unit_list(
        round_id=round_id,
        building=building,
        layout=layout,
        orientation=orientation,
        available_only=available_only,
    ).annotate(
        eligible=ExpressionWrapper(
            Q(layout__in=family.eligible_layouts), output_field=BooleanField()
        )
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
    supplementary_session: Session | None  # shown as soon as staff scheduled it
    can_apply_supplementary: bool
    # the window closed with no application from a family that could have made one
    supplementary_closed: bool
    supplementary_deadline: datetime | None
    # per session id: why the family got (or did not get) a unit there, in Chinese
    explanations: dict[int, str]


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
    # Staff can schedule only once the application window closed (supplementary.py), so a
    # scheduled session is shown at once.
    scheduled = application.session if application and application.session else None
    could_apply = bool(
        formal
        and application is None
        and state.allocation is None
        and not state.gave_up
        and deadline is not None
    )
    can_apply = bool(
        could_apply and formal and deadline and formal.session.ends_at <= now < deadline
    )
    closed = bool(could_apply and deadline and now >= deadline)
    return MyResult(
        state=state,
        allocation=state.allocation,
        seats=state.seats,
        application=application,
        supplementary_session=scheduled,
        can_apply_supplementary=can_apply,
        supplementary_closed=closed,
        supplementary_deadline=deadline,
        explanations=seat_explanations(family=family, round_id=round_id, seats=state.seats),
    )


def _hms(value: datetime) -> str:
    from django.utils import timezone

    return timezone.localtime(value).strftime("%H:%M:%S")


def seat_explanations(*, family: Family, round_id: int, seats: list[Seat]) -> dict[int, str]:
    """For each closed seat of the family, the explanation it is shown, built from the ledger
    entry the close wrote (its cart, the unit it got) and the allocations of the units ahead:
    「您购物车第1套 3-1202 已于10:02:03被其他家庭选定；第2套 3-1203 已为您自动选定」. A family
    that never entered is told its pre-selection is void only when it had one (the `absent`
    entry's `voided_pre_cart`)."""
    from selection.models import LedgerEntry

    out: dict[int, str] = {}
    closing = {
        entry.session_id: entry
        for entry in LedgerEntry.objects.filter(
            round_id=round_id,
            kind__in=("auto_assign", "no_unit", "absent"),
            payload__family=family.pk,
        ).order_by("id")
    }
    for seat in seats:
        kind = seat.session.word
        entry = closing.get(seat.session_id)
        if seat.outcome == Seat.Outcome.ABSENT:
            voided = entry is not None and bool(entry.payload.get("voided_pre_cart"))
            out[seat.session_id] = (
                f"您未在{kind}时间内进入选房，预选结果作废。"
                if voided
                else f"您未在{kind}时间内进入选房。"
            )
            continue
        if entry is None or seat.outcome not in (
            Seat.Outcome.AUTO_ASSIGNED,
            Seat.Outcome.NO_UNIT,
        ):
            continue
        cart = list(entry.payload.get("cart") or [])
        if not cart:
            out[seat.session_id] = f"{kind}时间结束时您的购物车为空，未能自动选定房源。"
            continue
        chosen = entry.payload.get("unit")
        units = {u.pk: u for u in Unit.objects.filter(pk__in=cart)}
        held = {
            a.unit_id: a
            for a in Allocation.objects.filter(unit_id__in=cart).exclude(family_id=family.pk)
        }
        steps = []
        for index, unit_id in enumerate(cart, start=1):
            unit = units.get(unit_id)
            label = unit.name if unit else str(unit_id)
            if unit_id == chosen:
                steps.append(f"第{index}套 {label} 已为您自动选定")
                break
            other = held.get(unit_id)
            if other is not None and other.ledger_entry_id < entry.pk:
                steps.append(f"第{index}套 {label} 已于{_hms(other.at)}被其他家庭选定")
            else:
                steps.append(f"第{index}套 {label} 已不可选")
        text = "您购物车" + "；".join(steps)
        if chosen is None:
            text += "；购物车中已没有可选房源，未能自动选定房源"
        out[seat.session_id] = text + "。"
    return out


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

    # Counted by status (available / taken / withdrawn): a withdrawn unit (撤回) is neither
    # taken nor available, nobody chose it.
    def counts() -> dict[str, int]:
        return {"total": 0, **{status: 0 for status in Unit.Status.values}}

    everything = counts()
    by_building: dict[str, dict[str, int]] = defaultdict(counts)
    by_layout: dict[str, dict[str, int]] = defaultdict(counts)
    for unit in units:
        for bucket in (everything, by_building[unit["building"]], by_layout[unit["layout"]]):
            bucket["total"] += 1
            bucket[unit["status"]] += 1
    feed = list(
        Allocation.objects.filter(round_id=round_id)
        .order_by("-ledger_entry_id")
        .values("unit__building", "unit__number", "unit__layout", "how", "at", "ledger_entry_id")[
            :feed_size
        ]
    )
    return {
        "round": rnd,
        "units": units,
        "by_building": [
            {"building": b, **c}
            for b, c in sorted(by_building.items(), key=lambda kv: _natural(kv[0]))
        ],
        "by_layout": [
            {"layout": code, "label": Layout(code).label, **c}
            for code, c in sorted(by_layout.items())
        ],
        "feed": feed,
        **everything,
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
