"""Supplementary selection (补选): the family's application and the staff's scheduling."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max

from accounts.models import Family, User
from accounts.services import audit_record
from core.context import RequestContext
from core.errors import Conflict, NotAllowed, ValidationFailed
from core.locking import lock_first, lock_rows
from selection.models import Allocation, GiveUp, Round, Seat, Session, SupplementaryApplication
from selection.phases import family_state, formal_day_deadline


def supplementary_window(*, family: Family, round_id: int, now: datetime):
    """(opens, closes, seat): from the end of the family's own formal session until the end
    of the day's last formal session plus the round's grace (3 minutes by default)."""
    state = family_state(family=family, round_id=round_id, now=now)
    formal = [s for s in state.seats if s.session.kind == Session.Kind.FORMAL]
    seat = formal[0] if formal else None
    if seat is None:
        return state, None, None, None
    closes = formal_day_deadline(
        session=seat.session, grace_seconds=state.round.supplementary_grace_seconds
    )
    return state, seat.session.ends_at, closes, seat


def supplementary_apply(
    *, family: Family, round_id: int, ctx: RequestContext, now: datetime
) -> SupplementaryApplication:
    """补选申请. Allowed from the end of the family's own session until 3 minutes after the
    day's last formal session ends, for a family that missed its window or ended without a
    unit and did not give up. Idempotent. Raises `supplementary_not_open`,
    `supplementary_closed`, `session_closing`, `gave_up`, `already_allocated`."""
    state, opens, closes, seat = supplementary_window(family=family, round_id=round_id, now=now)
    existing = SupplementaryApplication.objects.filter(round_id=round_id, family=family).first()
    if existing is not None:
        return existing
    if state.gave_up:
        raise NotAllowed("gave_up", "主动放弃选房的家庭不能申请补选")
    if state.allocation is not None:
        raise Conflict("already_allocated", "您已选定房源，无需补选")
    if seat is None or now < opens:
        raise NotAllowed("supplementary_not_open", "本家庭选房场次结束后方可申请补选")
    if now >= closes:
        raise NotAllowed("supplementary_closed", "补选申请时间已过")
    if seat.session.status != Session.Status.CLOSED:
        # The clock closes a session within a second of its end; its outcome decides this.
        raise Conflict("session_closing", "正在确定选房结果，请稍后再试")
    with transaction.atomic():
        lock_first(Family.objects.filter(pk=family.pk))
        application, _ = SupplementaryApplication.objects.get_or_create(
            round_id=round_id,
            family=family,
            defaults={"applied_at": now, "ip": ctx.ip, "user_agent": ctx.user_agent},
        )
    return application


def supplementary_applications_deadline(*, round_id: int) -> datetime | None:
    """When the supplementary-application window of the round's sessions ends: the latest
    `formal_day_deadline` over every day of the round that has a formal session (the day's
    last formal session end plus the round's grace, guide 000 item 9). None without any
    formal session."""
    from django.utils import timezone

    rnd = Round.objects.filter(pk=round_id).first()
    if rnd is None:
        return None
    latest: dict = {}
    for session in Session.objects.filter(round=rnd, kind=Session.Kind.FORMAL):
        day = timezone.localtime(session.starts_at).date()
        if day not in latest or session.ends_at > latest[day].ends_at:
            latest[day] = session
    if not latest:
        return None
    return max(
        formal_day_deadline(session=s, grace_seconds=rnd.supplementary_grace_seconds)
        for s in latest.values()
    )


def application_deadlines(*, round_id: int, family_ids) -> dict[int, datetime]:
    """Each family's own supplementary-application deadline (what its result page and SMS
    say): the end of the last formal session of the day of the family's formal session, plus
    the round's grace. A round over several days has one deadline per day, so the 补选 of
    one day's families is scheduled once that day's applications have closed."""
    rnd = Round.objects.get(pk=round_id)
    seats = Seat.objects.filter(
        session__round_id=round_id, session__kind=Session.Kind.FORMAL, family_id__in=family_ids
    ).select_related("session")
    by_session: dict = {}
    out: dict[int, datetime] = {}
    for seat in seats:
        key = seat.session_id
        if key not in by_session:
            by_session[key] = formal_day_deadline(
                session=seat.session, grace_seconds=rnd.supplementary_grace_seconds
            )
        out[seat.family_id] = by_session[key]
    return out


def pending_applications_overview(*, round_id: int, now: datetime) -> dict:
    """For the scheduling page, before staff try: how many unscheduled applications can be
    scheduled now, how many wait for their day's applications to close (the same test as
    `supplementary_session_schedule`), and the first of those days' deadlines."""
    pending = list(
        SupplementaryApplication.objects.filter(
            round_id=round_id, session__isnull=True
        ).values_list("family_id", flat=True)
    )
    still_open = _still_open(round_id=round_id, family_ids=pending, now=now)
    return {
        "ready": len(pending) - len(still_open),
        "waiting": len(still_open),
        "first_deadline": min(still_open.values(), default=None),
    }


def _still_open(*, round_id: int, family_ids: list[int], now: datetime) -> dict[int, datetime]:
    """The families among `family_ids` whose day still takes applications at `now`, with
    that day's deadline (a family without a formal seat has no day to wait for)."""
    deadlines = application_deadlines(round_id=round_id, family_ids=family_ids)
    return {family: deadline for family, deadline in deadlines.items() if now < deadline}


def supplementary_earliest_start(session: Session) -> datetime | None:
    """The earliest a supplementary session may start: when the last of its families' days
    closes its applications (the round's last day for a session whose families have no
    formal session)."""
    families = list(session.seats.values_list("family_id", flat=True))
    deadlines = application_deadlines(round_id=session.round_id, family_ids=families)
    if not deadlines:  # no family, or none seated in a formal session (seated by hand)
        return supplementary_applications_deadline(round_id=session.round_id)
    return max(deadlines.values())


def _open_refusal(deadline: datetime) -> NotAllowed:
    from django.utils import timezone

    local = timezone.localtime(deadline).strftime("%Y-%m-%d %H:%M:%S")
    return NotAllowed(
        "applications_open", f"补选申请尚未截止（截止时间 {local}），截止后方可安排补选场次"
    )


def supplementary_session_schedule(
    *,
    round_id: int,
    starts_at: datetime,
    actor: User,
    ip: str = "",
    now: datetime,
    family_ids: list[int] | None = None,
    family_ranks: list[int] | None = None,
) -> Session:
    """Staff: a supplementary session at `starts_at` for every application not yet scheduled
    whose day's application window has closed (or only for `family_ids` / the families of
    `family_ranks`), in rank order, with the round's window length. Audited; each family is
    sent an SMS with the session's time and place after commit.

    Refused (nothing changed) with `applications_open` while the families' day can still
    apply (`application_deadlines`: a named family's, or every pending one's when none is
    named), `invalid_start` (not in the future), `no_applications`, `not_applied` (a family in
    `family_ids` with no unscheduled application), `gave_up` (a family that gave up) and
    `already_allocated` (a family that holds a unit)."""
    if family_ranks is not None:
        by_rank = dict(Family.objects.filter(rank__in=family_ranks).values_list("rank", "pk"))
        unknown = [r for r in family_ranks if r not in by_rank]
        if unknown:
            listed = "、".join(map(str, unknown))
            raise ValidationFailed("family_not_found", f"没有以下排位号的家庭：{listed}")
        family_ids = [*(family_ids or []), *by_rank.values()]
    if starts_at <= now:
        raise ValidationFailed("invalid_start", "补选场次开始时间须晚于当前时间")
    with transaction.atomic():
        rnd = lock_first(Round.objects.filter(pk=round_id))
        if rnd is None:
            raise ValidationFailed("no_applications", "没有待安排的补选申请")
        # the round row serialises two staff scheduling at once; the applications are
        # locked too so a concurrent apply cannot slip between the read and the update
        lock_rows(SupplementaryApplication.objects.filter(round_id=round_id, session__isnull=True))
        pending = SupplementaryApplication.objects.filter(round_id=round_id, session__isnull=True)
        if family_ids is not None:
            wanted = set(family_ids)
            found = set(pending.filter(family_id__in=wanted).values_list("family_id", flat=True))
            missing = sorted(wanted - found)
            if missing:
                ranks = Family.objects.filter(pk__in=missing).order_by("rank")
                listed = "、".join(str(f.rank) for f in ranks) or "、".join(map(str, missing))
                raise ValidationFailed(
                    "not_applied", f"以下家庭未申请补选或已安排补选场次（排位号）：{listed}"
                )
            pending = pending.filter(family_id__in=wanted)
        applications = list(
            pending.select_related("family__main_applicant", "round").order_by("family__rank")
        )
        # Under the round lock: a formal session rescheduled at the same moment (which takes
        # this lock too) moves a deadline either before this read or after this commit.
        still_open = _still_open(
            round_id=round_id, family_ids=[a.family_id for a in applications], now=now
        )
        if still_open and family_ids is not None:
            raise _open_refusal(max(still_open.values()))
        applications = [a for a in applications if a.family_id not in still_open]
        if still_open and not applications:
            raise _open_refusal(min(still_open.values()))
        if not applications:
            raise ValidationFailed("no_applications", "没有待安排的补选申请")
        ids = [a.family_id for a in applications]
        gave_up = Family.objects.filter(
            pk__in=GiveUp.objects.filter(round_id=round_id, family_id__in=ids).values("family_id")
        ).order_by("rank")
        if gave_up:
            listed = "、".join(str(f.rank) for f in gave_up)
            raise NotAllowed("gave_up", f"以下家庭已主动放弃选房，不能安排补选（排位号）：{listed}")
        holding = Family.objects.filter(
            pk__in=Allocation.objects.filter(family_id__in=ids).values("family_id")
        ).order_by("rank")
        if holding:
            listed = "、".join(str(f.rank) for f in holding)
            raise Conflict(
                "already_allocated", f"以下家庭已选定房源，不能安排补选（排位号）：{listed}"
            )
        order = (Session.objects.filter(round_id=round_id).aggregate(m=Max("order"))["m"] or 0) + 1
        session = Session.objects.create(
            round=rnd,
            order=order,
            kind=Session.Kind.SUPPLEMENTARY,
            starts_at=starts_at,
            ends_at=starts_at + timedelta(seconds=rnd.window_seconds),
        )
        Seat.objects.bulk_create(Seat(session=session, family=a.family) for a in applications)
        SupplementaryApplication.objects.filter(pk__in=[a.pk for a in applications]).update(
            session=session
        )
        audit_record(
            actor=actor,
            action="selection.supplementary_schedule",
            target=str(session),
            detail={"families": ids, "starts_at": starts_at.isoformat()},
            ip=ip,
            now=now,
        )
        _notify_scheduled(session=session, families=[a.family for a in applications], now=now)
    return session


def _notify_scheduled(*, session: Session, families: list[Family], now: datetime) -> None:
    """Queue the 补选场次 SMS for each family (the outbox sends after commit)."""
    from selection.notices import supplementary_scheduled_sms

    supplementary_scheduled_sms(session=session, families=families, now=now)
