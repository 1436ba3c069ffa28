"""Where a family stands in a round at a given moment. Server time is the only clock: every
rule takes `now`, so tests pin it and boundaries are exact ([start, end) windows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Exists, Max, Subquery

from accounts.models import Family
from core.errors import Conflict, DomainError, NotAllowed
from selection.models import Allocation, GiveUp, Round, Seat, Session


class RoundNotFound(DomainError):
    kind = "not_found"
    code = "round_not_found"
    message = "未找到该选房批次"


@dataclass(frozen=True)
class FamilyState:
    round: Round
    family: Family
    seats: list[Seat]  # ordered by session start
    current: Seat | None  # the seat whose window contains now
    upcoming: Seat | None  # the next seat that has not started
    allocation: Allocation | None
    gave_up: bool
    now: datetime

    @property
    def preselect_open(self) -> bool:
        return (
            self.now >= self.round.preselect_starts_at
            and self.current is None
            and self.upcoming is not None
            and self.allocation is None
            and not self.gave_up
        )

    @property
    def formal_open(self) -> bool:
        return self.current is not None and self.allocation is None and not self.gave_up

    @property
    def phase(self) -> str:
        if self.allocation is not None:
            return "allocated"
        if self.gave_up:
            return "gave_up"
        if self.current is not None:
            return "formal"
        if self.upcoming is not None:
            return "pre" if self.now >= self.round.preselect_starts_at else "not_started"
        return "ended"


def family_seats(*, family_id: int, round_id: int):
    """The family's seats in the round, with their sessions and the round, the id of the
    family's allocation and whether it gave up riding on each (annotations): family_state's
    one query, also compiled for the confirm's route ahead of Django (selection.allocation)."""
    allocated = Allocation.objects.filter(round_id=round_id, family_id=family_id).values("pk")[:1]
    return (
        Seat.objects.filter(family_id=family_id, session__round_id=round_id)
        .select_related("session", "session__round")
        .annotate(
            allocation_pk=Subquery(allocated),
            family_gave_up=Exists(GiveUp.objects.filter(round_id=round_id, family_id=family_id)),
        )
        .order_by("session__starts_at", "session__order")
    )


def state_from_seats(
    *, family: Family, seats: list[Seat], allocation: Allocation | None, now: datetime
) -> FamilyState:
    """The family's state from its loaded seats (family_seats). Raises `round_not_found` when
    the family has no seat in the round (another family's round looks the same as none)."""
    if not seats:
        raise RoundNotFound()
    current = next(
        (
            s
            for s in seats
            if s.session.starts_at <= now < s.session.ends_at
            and s.session.status != Session.Status.CLOSED
        ),
        None,
    )
    return FamilyState(
        round=seats[0].session.round,
        family=family,
        seats=seats,
        current=current,
        upcoming=next((s for s in seats if s.session.starts_at > now), None),
        allocation=allocation,
        gave_up=bool(getattr(seats[0], "family_gave_up", False)),
        now=now,
    )


def family_state(*, family: Family, round_id: int, now: datetime) -> FamilyState:
    """The family's seats, allocation and give-up in the round. Raises `round_not_found`
    when the family has no seat in it. One query (family_seats), a second only when the
    family has an allocation: every family request and every confirm starts here."""
    seats: list[Seat] = list(family_seats(family_id=family.pk, round_id=round_id))
    allocation_pk = getattr(seats[0], "allocation_pk", None) if seats else None
    return state_from_seats(
        family=family,
        seats=seats,
        allocation=Allocation.objects.select_related("unit", "session", "ledger_entry").get(
            pk=allocation_pk
        )
        if allocation_pk
        else None,
        now=now,
    )


def require_preselect(state: FamilyState) -> None:
    if state.allocation is not None:
        raise Conflict("already_allocated", "您已选定房源")
    if state.gave_up:
        raise NotAllowed("gave_up", "您已主动放弃本次选房")
    if state.now < state.round.preselect_starts_at:
        raise NotAllowed("preselect_not_started", "预选尚未开始")
    if not state.preselect_open:
        raise NotAllowed("preselect_closed", "预选已结束")


def require_formal(state: FamilyState) -> Seat:
    if state.allocation is not None:
        raise Conflict("already_allocated", "您已选定房源")
    if state.gave_up:
        raise NotAllowed("gave_up", "您已主动放弃本次选房")
    if state.current is None:
        if state.upcoming is not None:
            raise NotAllowed("window_not_open", f"您的{state.upcoming.session.word}时间尚未开始")
        word = state.seats[-1].session.word if state.seats else "正选"
        raise NotAllowed("window_closed", f"您的{word}时间已结束")
    return state.current


def formal_day_deadline(*, session: Session, grace_seconds: int) -> datetime:
    """The end of the supplementary-application window for families of `session`: the end
    of the last formal session of the same round on the same (Shenzhen) day, plus the grace."""
    from django.utils import timezone

    day = timezone.localtime(session.starts_at).date()
    tz = timezone.get_current_timezone()
    start = datetime.combine(day, datetime.min.time(), tz)
    last_end = Session.objects.filter(
        round_id=session.round_id,
        kind=Session.Kind.FORMAL,
        starts_at__gte=start,
        starts_at__lt=start + timedelta(days=1),
    ).aggregate(last=Max("ends_at"))["last"]
    return (last_end or session.ends_at) + timedelta(seconds=grace_seconds)
