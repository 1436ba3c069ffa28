"""Staff operations on selection day: each one a service, called by its admin page like every
other interface. Each checks its rule under the lock its write takes, writes the audit trail,
the ledger where it touches what the ledger explains (allocations, the units the close may
give), the events the open pages listen to, and the SMS through the outbox (sent after commit).
Nothing changes on a refusal.

- unit_withdraw / unit_restore: take a unit out of the pool (撤回) or put it back. Only a unit
  nobody holds; a withdrawn unit leaves every cart of a session that has not closed, and the
  families concerned are told live and by SMS.
- allocation_by_staff: allocate a unit to a family with a written reason (how = staff),
  ledgered as `staff_assign`, for a family whose selection session has closed without a unit.
- session_reschedule: move a session that has not opened yet; the window length is kept, no
  overlap, formal sessions keep their rank order, a supplementary session stays after the
  application deadline; the session's families are told by SMS.
- family_rank_change / family_layouts_change: refused once the family is seated, as the
  importer refuses.

Lock order is the selection services' (round → session → family → unit).
Field history (django-simple-history) records who and why on every save made here.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import Family, Layout, User
from accounts.services import audit_record
from accounts.validators import reason_clean
from core.errors import Conflict, NotAllowed, ValidationFailed
from core.locking import lock_first, lock_rows
from events.services import events_record
from events.streams import family_stream, round_stream, session_stream
from selection.allocation import record_allocations
from selection.carts import UnitNotFound
from selection.events import session_json, unit_json
from selection.ledger import LedgerWriter
from selection.models import (
    Allocation,
    CartItem,
    GiveUp,
    Round,
    Seat,
    Session,
    Unit,
)
from sms.services import sms_message_queue


def _save_with_history(obj, fields: list[str], *, actor: User | None, reason: str) -> None:
    """Save through the model so the field history records the change, who and why."""
    obj._history_user = actor
    obj._change_reason = reason
    obj.save(update_fields=fields)


def _local(value: datetime) -> str:
    local = timezone.localtime(value)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"


# ------------------------------------------------------------------------- withdraw, restore


def unit_withdraw(
    *, unit_id: int, reason: str, actor: User | None, ip: str = "", now: datetime
) -> Unit:
    """撤回房源: a unit nobody holds leaves the pool. It leaves the pre-selection and formal
    carts of every family whose session has not closed (carts of closed sessions are the
    record the ledger replays). Ledger `unit_withdraw` (the replay treats it as not
    available from then on); events to the round and to each family concerned; an SMS to each
    of them; audited. Refused: `unit_not_found`, `unit_taken` (allocated),
    `unit_withdrawn` (already withdrawn), `reason_required`."""
    reason = reason_clean(reason)
    unit = Unit.objects.filter(pk=unit_id).select_related("round").first()
    if unit is None:
        raise UnitNotFound()
    with transaction.atomic():
        # Families before the unit, as every selection service locks them.
        holders = _cart_holders(unit)
        lock_rows(Family.objects.values_list("pk"), holders)
        unit = lock_first(Unit.objects.filter(pk=unit_id).select_related("round"))
        if unit.status == Unit.Status.TAKEN:
            raise Conflict("unit_taken", f"房源{unit.label}已被选定，不能撤回")
        if unit.status == Unit.Status.WITHDRAWN:
            raise Conflict("unit_withdrawn", f"房源{unit.label}已撤回")
        # A cart add that committed after the first read is caught by this second one (no
        # family is locked after the unit: lock order). One still in flight may add the unit
        # after this commits: the close skips a withdrawn unit and the replay knows it from
        # this ledger entry.
        holders = sorted(set(holders) | set(_cart_holders(unit)))
        unit.status = Unit.Status.WITHDRAWN
        _save_with_history(unit, ["status"], actor=actor, reason=reason)
        removed = CartItem.objects.filter(unit=unit, family_id__in=holders).filter(
            _open_cart_filter(unit.round_id)
        )
        removed_count = removed.count()
        _renumber_after_delete(removed)
        ledger = LedgerWriter(now=now)
        ledger.append(
            round_id=unit.round_id,
            session_id=None,
            kind="unit_withdraw",
            payload={"unit": unit.pk, "unit_label": unit.label, "families": holders},
        )
        ledger.flush()
        data = {"unit": unit_json(unit), "reason": reason}
        events_record(
            events=[
                (
                    round_stream(unit.round_id),
                    "selection.unit_withdrawn",
                    {"unit": unit_json(unit)},
                ),
                *((family_stream(f), "selection.cart_unit_withdrawn", data) for f in holders),
            ],
            now=now,
        )
        phones = Family.objects.filter(pk__in=holders).values_list(
            "main_applicant__mobile", flat=True
        )
        for phone in phones:
            sms_message_queue(
                phone=phone,
                kind="unit_withdrawn",
                params=[f"「{unit.round.name}」", unit.name],
                now=now,
            )
        audit_record(
            actor=actor,
            action="selection.unit_withdraw",
            target=f"selection.Unit:{unit.pk} {unit.round.name} {unit.label}",
            detail={"reason": reason, "families": holders, "cart_items_removed": removed_count},
            ip=ip,
            now=now,
        )
    return unit


def _cart_holders(unit: Unit) -> list[int]:
    return sorted(
        set(
            CartItem.objects.filter(unit=unit)
            .filter(_open_cart_filter(unit.round_id))
            .values_list("family_id", flat=True)
        )
    )


def _open_cart_filter(round_id: int):
    """Cart items of families with no closed seat in the round: their choice still counts."""
    from django.db.models import Q

    closed = Seat.objects.filter(
        session__round_id=round_id, session__status=Session.Status.CLOSED
    ).values("family_id")
    return ~Q(family_id__in=closed)


def _renumber_after_delete(items) -> None:
    """Delete the items and close the gaps each leaves in its cart's 1..n positions."""
    touched = list(items.values_list("family_id", "round_id", "kind").distinct())
    items.delete()
    for family_id, round_id, kind in touched:
        rest = list(
            CartItem.objects.filter(family_id=family_id, round_id=round_id, kind=kind).order_by(
                "position", "id"
            )
        )
        for position, item in enumerate(rest, start=1):
            if item.position != position:
                CartItem.objects.filter(pk=item.pk).update(position=position)


def unit_restore(
    *, unit_id: int, reason: str, actor: User | None, ip: str = "", now: datetime
) -> Unit:
    """恢复房源: a withdrawn unit is 可选 again (in no cart: families add it again if they
    want it). Ledger `unit_restore`, a round event, audited. Refused: `unit_not_found`,
    `unit_not_withdrawn`, `reason_required`."""
    reason = reason_clean(reason)
    with transaction.atomic():
        unit = lock_first(Unit.objects.filter(pk=unit_id).select_related("round"))
        if unit is None:
            raise UnitNotFound()
        if unit.status != Unit.Status.WITHDRAWN:
            raise Conflict("unit_not_withdrawn", f"房源{unit.label}未撤回，无需恢复")
        unit.status = Unit.Status.AVAILABLE
        _save_with_history(unit, ["status"], actor=actor, reason=reason)
        ledger = LedgerWriter(now=now)
        ledger.append(
            round_id=unit.round_id,
            session_id=None,
            kind="unit_restore",
            payload={"unit": unit.pk, "unit_label": unit.label},
        )
        ledger.flush()
        events_record(
            events=[
                (round_stream(unit.round_id), "selection.unit_restored", {"unit": unit_json(unit)})
            ],
            now=now,
        )
        audit_record(
            actor=actor,
            action="selection.unit_restore",
            target=f"selection.Unit:{unit.pk} {unit.round.name} {unit.label}",
            detail={"reason": reason},
            ip=ip,
            now=now,
        )
    return unit


# ------------------------------------------------------------------------- staff allocation


def allocation_by_staff(
    *,
    family_id: int,
    unit_id: int,
    reason: str,
    actor: User | None,
    ip: str = "",
    now: datetime,
) -> Allocation:
    """工作人员分配: allocate `unit_id` to a family whose latest selection session of the
    unit's round has closed without a unit (how = staff, ledger `staff_assign` with the
    reason, the family's result SMS and event, audited). The family's eligible layouts hold.

    Refused: `family_not_found`, `unit_not_found`, `reason_required`, `no_seat` (the family has
    no session in the round), `session_not_closed` (its session has not ended: the family
    selects itself), `gave_up`, `already_allocated`, `unit_taken`, `unit_withdrawn`,
    `layout_not_eligible`."""
    reason = reason_clean(reason)
    family = Family.objects.filter(pk=family_id).select_related("main_applicant").first()
    if family is None:
        raise ValidationFailed("family_not_found", "家庭不存在")
    unit = Unit.objects.filter(pk=unit_id).first()
    if unit is None:
        raise UnitNotFound()
    round_id = unit.round_id
    with transaction.atomic():
        lock_first(Family.objects.filter(pk=family.pk))
        seat = (
            Seat.objects.filter(family=family, session__round_id=round_id)
            .select_related("session")
            .order_by("-session__ends_at")
            .first()
        )
        if seat is None:
            raise NotAllowed("no_seat", "该家庭未安排本批次的选房场次，不能分配房源")
        if seat.session.status != Session.Status.CLOSED:
            raise NotAllowed(
                "session_not_closed", "该家庭的选房场次尚未结束，请由家庭在场次内自行选房"
            )
        if GiveUp.objects.filter(round_id=round_id, family=family).exists():
            raise NotAllowed("gave_up", "该家庭已主动放弃选房，不能分配房源")
        if Allocation.objects.filter(round_id=round_id, family=family).exists():
            raise Conflict("already_allocated", "该家庭已有选房结果，不能再分配")
        unit = lock_first(Unit.objects.filter(pk=unit_id))
        if unit.status == Unit.Status.TAKEN:
            raise Conflict("unit_taken", f"房源{unit.label}已被选定")
        if unit.status == Unit.Status.WITHDRAWN:
            raise Conflict("unit_withdrawn", f"房源{unit.label}已撤回，不能分配")
        if not family.may_choose(unit.layout):
            allowed = "、".join(family.eligible_layout_labels) or "无"
            raise NotAllowed(
                "layout_not_eligible",
                f"该家庭可选户型为{allowed}，房源{unit.label}为{unit.get_layout_display()}",
            )
        ledger = LedgerWriter(now=now)
        entry = ledger.append(
            round_id=round_id,
            session_id=seat.session_id,
            kind="staff_assign",
            payload={
                "family": family.pk,
                "rank": family.rank,
                "unit": unit.pk,
                "unit_label": unit.label,
                "how": Allocation.How.STAFF,
                "reason": reason,
                "staff": actor.get_username() if actor else "",
            },
        )
        ledger.flush()
        allocation = Allocation.objects.create(
            round_id=round_id,
            unit=unit,
            family=family,
            session=seat.session,
            how=Allocation.How.STAFF,
            at=now,
            ledger_entry=entry,
        )
        unit.status = Unit.Status.TAKEN
        _save_with_history(unit, ["status"], actor=actor, reason=reason)
        record_allocations([allocation], now=now)
        audit_record(
            actor=actor,
            action="selection.allocation_by_staff",
            target=f"accounts.Family:{family.pk} {family}",
            detail={
                "unit": unit.pk,
                "unit_label": unit.label,
                "reason": reason,
                "leaf": entry.code,
            },
            ip=ip,
            now=now,
        )
    return allocation


# ------------------------------------------------------------------------------ reschedule


def session_reschedule(
    *,
    session_id: int,
    starts_at: datetime,
    reason: str,
    actor: User | None,
    ip: str = "",
    now: datetime,
) -> Session:
    """改期: move a session that has not opened to `starts_at`, keeping its length.

    Checked under the round lock (the scheduling services take it too) and the session row
    (the clock opens a session with a conditional update on status and start, so a session is
    either opened at its old time or moved, never both). Refused: `session_not_found`,
    `reason_required`, `session_started` (open, closed, or its start has passed),
    `invalid_start` (not in the future, before pre-selection opens), `session_overlap`,
    `rank_order` (a formal session moved past the previous or next formal session: earlier
    ranks select first), `applications_open` (a supplementary session before its
    families' application deadline), `supplementary_too_early` (a formal session moved so
    late that a scheduled supplementary session would start before its families' applications
    close).
    The session's families get an SMS with the new time; its pages get an event."""
    from selection.supplementary import supplementary_earliest_start

    reason = reason_clean(reason)
    round_id = Session.objects.filter(pk=session_id).values_list("round_id", flat=True).first()
    if round_id is None:
        raise ValidationFailed("session_not_found", "场次不存在")
    with transaction.atomic():
        rnd = lock_first(Round.objects.filter(pk=round_id))
        session = lock_first(Session.objects.filter(pk=session_id))
        if session.status != Session.Status.SCHEDULED or session.starts_at <= now:
            raise NotAllowed("session_started", "场次已开始或已结束，不能改期")
        if starts_at <= now:
            raise ValidationFailed("invalid_start", "新的开始时间须晚于当前时间")
        if starts_at < rnd.preselect_starts_at:
            raise ValidationFailed("invalid_start", "新的开始时间不能早于预选开始时间")
        old_start, old_end = session.starts_at, session.ends_at
        ends_at = starts_at + (old_end - old_start)
        others = list(Session.objects.filter(round=rnd).exclude(pk=session.pk))
        clash = next((s for s in others if s.starts_at < ends_at and starts_at < s.ends_at), None)
        if clash is not None:
            raise ValidationFailed("session_overlap", f"新时间与第{clash.order}场时间重叠")
        if session.kind == Session.Kind.FORMAL:
            formal = [s for s in others if s.kind == Session.Kind.FORMAL]
            before = [s for s in formal if s.order < session.order]
            after = [s for s in formal if s.order > session.order]
            if (before and starts_at < max(s.ends_at for s in before)) or (
                after and ends_at > min(s.starts_at for s in after)
            ):
                raise ValidationFailed(
                    "rank_order",
                    "正选场次须按排位顺序进行：新时间不能早于前一场结束，也不能晚于后一场开始",
                )
        session.starts_at, session.ends_at = starts_at, ends_at
        _save_with_history(session, ["starts_at", "ends_at"], actor=actor, reason=reason)
        if session.kind == Session.Kind.SUPPLEMENTARY:
            deadline = supplementary_earliest_start(session)
            if deadline is not None and starts_at < deadline:
                raise NotAllowed(
                    "applications_open",
                    f"补选场次须在补选申请截止（{_local(deadline)}）之后开始",
                )
        elif any(
            s.kind == Session.Kind.SUPPLEMENTARY
            and (earliest := supplementary_earliest_start(s)) is not None
            and s.starts_at < earliest
            for s in others
        ):
            raise NotAllowed(
                "supplementary_too_early",
                "改期后补选申请截止时间将晚于已安排的补选场次，请先调整补选场次",
            )
        moved = {"session": session_json(session)}  # as every session event carries it
        events_record(
            events=[
                (session_stream(session.pk), "selection.session_rescheduled", moved),
                (round_stream(round_id), "selection.session_rescheduled", moved),
            ],
            now=now,
        )
        label = f"第{session.order}场正选" if session.kind == Session.Kind.FORMAL else "补选场次"
        params = [
            f"「{rnd.name}」",
            label,
            _local(starts_at),
            f"{timezone.localtime(ends_at):%H:%M}",
            _local(old_start),
        ]
        phones = Seat.objects.filter(session=session).values_list(
            "family__main_applicant__mobile", flat=True
        )
        for phone in phones:
            sms_message_queue(phone=phone, kind="session_rescheduled", params=params, now=now)
        audit_record(
            actor=actor,
            action="selection.session_reschedule",
            target=f"selection.Session:{session.pk} {session}",
            detail={
                "reason": reason,
                "from": [old_start.isoformat(), old_end.isoformat()],
                "to": [starts_at.isoformat(), ends_at.isoformat()],
            },
            ip=ip,
            now=now,
        )
    return session


# ------------------------------------------------------------------------- rank and layouts


def _refuse_if_seated(family: Family) -> None:
    if Seat.objects.filter(family=family).exists():
        raise NotAllowed("family_seated", "该家庭已安排选房场次，不能修改排位号或可选户型")


def family_rank_change(
    *, family_id: int, rank: int, reason: str, actor: User | None, ip: str = "", now: datetime
) -> Family:
    """Change a family's rank (排位号) before it is seated. Refused: `family_not_found`,
    `reason_required`, `invalid_rank`, `family_seated`, `rank_taken` (another family holds
    it), `rank_unchanged`. Audited; the field history keeps before and after."""
    reason = reason_clean(reason)
    if not isinstance(rank, int) or not 1 <= rank <= 2_000_000_000:
        raise ValidationFailed(
            "invalid_rank", "排位号须为正整数", fields={"rank": ["排位号须为正整数"]}
        )
    with transaction.atomic():
        family = lock_first(Family.objects.filter(pk=family_id))
        if family is None:
            raise ValidationFailed("family_not_found", "家庭不存在")
        _refuse_if_seated(family)
        if family.rank == rank:
            raise ValidationFailed("rank_unchanged", "新排位号与原排位号相同")
        holder = Family.objects.filter(rank=rank).exclude(pk=family.pk).first()
        if holder is not None:
            raise Conflict("rank_taken", f"排位号{rank}已属于其他家庭（{holder}）")
        old = family.rank
        family.rank = rank
        _save_with_history(family, ["rank"], actor=actor, reason=reason)
        audit_record(
            actor=actor,
            action="accounts.family_rank_change",
            target=f"accounts.Family:{family.pk} {family}",
            detail={"from": old, "to": rank, "reason": reason},
            ip=ip,
            now=now,
        )
    return family


def family_layouts_change(
    *,
    family_id: int,
    layouts: list[str],
    reason: str,
    actor: User | None,
    ip: str = "",
    now: datetime,
) -> Family:
    """Change the layouts a family may choose, before it is seated. Refused:
    `family_not_found`, `reason_required`, `invalid_layouts` (none, or unknown),
    `family_seated`. Audited; the field history keeps before and after."""
    reason = reason_clean(reason)
    wanted = [code for code in Layout.values if code in set(layouts or [])]
    if not wanted or len(set(layouts)) != len(wanted):
        raise ValidationFailed(
            "invalid_layouts",
            "请至少选择一种可选户型",
            fields={"layouts": ["请至少选择一种可选户型"]},
        )
    with transaction.atomic():
        family = lock_first(Family.objects.filter(pk=family_id))
        if family is None:
            raise ValidationFailed("family_not_found", "家庭不存在")
        _refuse_if_seated(family)
        old = list(family.eligible_layouts)
        family.eligible_layouts = wanted
        _save_with_history(family, ["eligible_layouts"], actor=actor, reason=reason)
        audit_record(
            actor=actor,
            action="accounts.family_layouts_change",
            target=f"accounts.Family:{family.pk} {family}",
            detail={"from": old, "to": wanted, "reason": reason},
            ip=ip,
            now=now,
        )
    return family
