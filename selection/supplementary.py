"""Supplementary selection (补选): the family's application and the staff's scheduling."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max

from accounts.models import Family, User
from accounts.services import audit_record
from core.context import RequestContext
from core.errors import Conflict, NotAllowed, ValidationFailed
from selection.models import Seat, Session, SupplementaryApplication
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
        Family.objects.select_for_update().filter(pk=family.pk).first()
        application, _ = SupplementaryApplication.objects.get_or_create(
            round_id=round_id,
            family=family,
            defaults={"applied_at": now, "ip": ctx.ip, "user_agent": ctx.user_agent},
        )
    return application


def supplementary_session_schedule(
    *, round_id: int, starts_at: datetime, actor: User, ip: str = "", now: datetime
) -> Session:
    """Staff: a supplementary session at `starts_at` for every application not yet scheduled,
    in rank order, with the round's window length. Audited. Raises `invalid_start` (not in
    the future), `no_applications`."""
    if starts_at <= now:
        raise ValidationFailed("invalid_start", "补选场次开始时间须晚于当前时间")
    with transaction.atomic():
        applications = list(
            SupplementaryApplication.objects.select_for_update()
            .filter(round_id=round_id, session__isnull=True)
            .select_related("family", "round")
            .order_by("family__rank")
        )
        if not applications:
            raise ValidationFailed("no_applications", "没有待安排的补选申请")
        rnd = applications[0].round
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
            detail={
                "families": [a.family_id for a in applications],
                "starts_at": starts_at.isoformat(),
            },
            ip=ip,
            now=now,
        )
    return session
