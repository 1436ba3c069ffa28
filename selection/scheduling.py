"""Staff scheduling of a round's formal sessions: families without a formal seat, in rank
order, put into blocks of sessions; and the counts the scheduling pages show."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from accounts.models import Family, User
from accounts.services import audit_record
from core.errors import ValidationFailed
from core.locking import lock_first
from selection.models import Allocation, Round, Seat, Session, SupplementaryApplication
from selection.phases import RoundNotFound


def _unscheduled_families(round_id: int, rank_from: int | None, rank_to: int | None):
    formal = Seat.objects.filter(session__round_id=round_id, session__kind=Session.Kind.FORMAL)
    families = (
        Family.objects.exclude(pk__in=formal.values("family_id"))
        .exclude(pk__in=Allocation.objects.values("family_id"))
        .order_by("rank")
    )
    if rank_from is not None:
        families = families.filter(rank__gte=rank_from)
    if rank_to is not None:
        families = families.filter(rank__lte=rank_to)
    return families


def schedule_overview(*, round_id: int) -> dict:
    """For the scheduling pages: how many families wait for a formal session, how many
    supplementary applications wait for a session, and the round's sessions."""
    return {
        "unscheduled": _unscheduled_families(round_id, None, None).count(),
        "applications": SupplementaryApplication.objects.filter(
            round_id=round_id, session__isnull=True
        ).count(),
        "sessions": list(Session.objects.filter(round_id=round_id).order_by("starts_at")),
    }


def sessions_schedule_from_ranks(
    *,
    round_id: int,
    first_start: datetime,
    block_size: int,
    gap_minutes: int,
    actor: User | None,
    rank_from: int | None = None,
    rank_to: int | None = None,
    ip: str = "",
    now: datetime | None = None,
) -> list[Session]:
    """Put the families that have no formal seat in the round yet (optionally only ranks
    `rank_from`..`rank_to`), in rank order, into formal sessions of `block_size` families.
    Session k (from 0) starts at `first_start + k * gap_minutes` and lasts the round's window.

    Families holding a unit (in any round) are left out: a family holds at most one unit.
    Locks the round row, so two staff scheduling at once cannot seat a family twice. Audited
    (`selection.sessions_schedule`); each seated family is sent its session's time by SMS. Raises `round_not_found`, `invalid_block_size`,
    `invalid_gap` (shorter than the window, so the new sessions would overlap each other),
    `invalid_start` (not in the future, or before pre-selection opens), `no_families`,
    `session_overlap` (an existing session of the round overlaps a new one)."""
    now = now or timezone.now()
    if not 1 <= block_size <= 1000:
        raise ValidationFailed("invalid_block_size", "每场家庭数须在1至1000之间")
    if first_start <= now:
        raise ValidationFailed("invalid_start", "首场开始时间须晚于当前时间")
    with transaction.atomic():
        rnd = lock_first(Round.objects.filter(pk=round_id))
        if rnd is None:
            raise RoundNotFound()
        window = timedelta(seconds=rnd.window_seconds)
        gap = timedelta(minutes=gap_minutes)
        if gap < window:
            raise ValidationFailed(
                "invalid_gap", f"场次间隔不能短于正选时长（{rnd.window_seconds}秒）"
            )
        if first_start < rnd.preselect_starts_at:
            raise ValidationFailed("invalid_start", "首场开始时间不能早于预选开始时间")
        families = list(_unscheduled_families(round_id, rank_from, rank_to))
        if not families:
            raise ValidationFailed("no_families", "没有待安排正选场次的家庭")
        blocks = [families[i : i + block_size] for i in range(0, len(families), block_size)]
        starts = [first_start + k * gap for k in range(len(blocks))]
        existing = list(Session.objects.filter(round=rnd).order_by("starts_at"))
        for start in starts:
            clash = next(
                (s for s in existing if s.starts_at < start + window and start < s.ends_at), None
            )
            if clash is not None:
                local = timezone.localtime(start).strftime("%Y-%m-%d %H:%M")
                raise ValidationFailed(
                    "session_overlap", f"新场次（{local} 开始）与已有的第{clash.order}场时间重叠"
                )
        order = (Session.objects.filter(round=rnd).aggregate(m=Max("order"))["m"] or 0) + 1
        sessions = []
        for k, (start, block) in enumerate(zip(starts, blocks, strict=True)):
            session = Session.objects.create(
                round=rnd,
                order=order + k,
                kind=Session.Kind.FORMAL,
                starts_at=start,
                ends_at=start + window,
            )
            Seat.objects.bulk_create(Seat(session=session, family=f) for f in block)
            sessions.append(session)
        audit_record(
            actor=actor,
            action="selection.sessions_schedule",
            target=f"selection.Round:{rnd.pk} {rnd}",
            detail={
                "sessions": [s.pk for s in sessions],
                "orders": [s.order for s in sessions],
                "families": len(families),
                "ranks": [families[0].rank, families[-1].rank],
                "first_start": first_start.isoformat(),
                "block_size": block_size,
                "gap_minutes": gap_minutes,
                "rank_from": rank_from,
                "rank_to": rank_to,
            },
            ip=ip,
            now=now,
        )
        from selection.notices import sessions_scheduled_sms

        sessions_scheduled_sms(sessions=sessions, now=now)  # outbox: sent after commit
    return sessions
