"""Allocation: confirm (确认正选), session open/close with auto-assign, give up (主动放弃).

Lock order, everywhere: session row (close only) → family rows (ascending id) → unit rows
(ascending id) → event stream counters (by name, in one call). No one takes a family after a
unit, so these services cannot deadlock one another. The allocation log's entries are
inserted with no lock at all (selection.ledger); the sequencer orders them after commit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.db import OperationalError, connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from psycopg.errors import LockNotAvailable

from accounts.models import Family
from core.adb import Compiled
from core.context import RequestContext
from core.errors import Conflict, DomainError, NotAllowed, ValidationFailed
from core.hashchain import canonical_json
from core.locking import Busy, is_lock_timeout, lock_first, lock_rows, lock_timeout_ms
from events.services import event_record
from events.streams import family_stream, round_stream
from selection.carts import UnitNotFound, not_entered, session_open_recheck
from selection.events import (
    LAST_CALL_SECONDS,
    allocation_events,
    record_allocations,
    record_session_phase,
    result_event,
)
from selection.ledger import LedgerWriter
from selection.models import Allocation, CartItem, GiveUp, Round, Seat, Session, Unit
from selection.notices import selection_missed_sms, selection_result_params
from selection.phases import (
    family_seats,
    family_state,
    formal_day_deadline,
    require_formal,
    state_from_seats,
)
from sms.services import sms_payload

GIVE_UP_SALT = "anju.selection.give_up"
GIVE_UP_TOKEN_SECONDS = 120


def _clock(at: datetime, tz) -> str:
    return at.astimezone(tz).strftime("%H:%M:%S")


@dataclass(frozen=True)
class ConfirmResult:
    allocation: Allocation
    created: bool


def _unit_taken(unit: Unit) -> Conflict:
    return Conflict("unit_taken", f"房源{unit.name}已被其他家庭选定，请从购物车中选择其他房源")


def selection_confirm(
    *, family: Family, round_id: int, unit_id: int, idempotency_key: str, now: datetime
) -> ConfirmResult:
    """确认正选: allocate `unit_id` from the family's formal cart to the family, atomically and
    irreversibly. The first valid confirmation of a unit wins.

    Locks the family row, then the unit row. A repeat (same key or the
    same unit) returns the existing allocation with created=False. Raises the phase errors,
    `not_entered`, `unit_not_in_cart`, `unit_not_found`, `unit_taken` (409: someone was
    first), `already_allocated` (409: this family confirmed another unit).
    """
    state = family_state(family=family, round_id=round_id, now=now)
    if state.allocation is not None:
        return _repeat(state.allocation, unit_id, idempotency_key)
    seat = require_formal(state)
    if seat.entered_at is None:
        raise not_entered(seat)
    earlier_sessions_close_due(session=seat.session, now=now)
    in_cart = _cart_line(family_id=family.pk, round_id=round_id, unit_id=unit_id).first()
    if in_cart is None:
        raise NotAllowed("unit_not_in_cart", f"只能从{seat.session.word}购物车中选择房源")
    if in_cart.unit.status != Unit.Status.AVAILABLE:
        # Most losers arrive after the winner committed: answer them without a transaction.
        # The locked re-check in the claim still decides every race.
        raise _unit_taken(in_cart.unit)
    claim = _claim_sql if _claim_in_sql() else _claim_orm
    return claim(
        family=family,
        round_name=state.round.name,
        seat=seat,
        unit=in_cart.unit,
        idempotency_key=idempotency_key,
        now=now,
    )


def _cart_line(*, family_id: int, round_id: int, unit_id: int):
    """The unit's line in the family's formal cart, with the unit: only cart units are
    confirmed."""
    return CartItem.objects.filter(
        family_id=family_id, round_id=round_id, kind=CartItem.Kind.FORMAL, unit_id=unit_id
    ).select_related("unit")


def _confirm_entry(*, family: Family, seat: Seat, unit: Unit, key: str, now: datetime):
    """The confirm's log entry (unsaved, with its leaf hash)."""
    return LedgerWriter.entry(
        round_id=unit.round_id,
        session_id=seat.session_id,
        kind="confirm",
        payload={
            "family": family.pk,
            "rank": family.rank,
            "unit": unit.pk,
            "unit_label": unit.label,
            "how": Allocation.How.CONFIRMED,
            "idempotency_key": key,
        },
        now=now,
    )


def _confirmed(*, family: Family, seat: Seat, unit: Unit, idempotency_key: str, now) -> Allocation:
    """The allocation a confirm makes, with its log entry, both unsaved."""
    return Allocation(
        round_id=unit.round_id,
        unit=unit,
        family=family,
        session=seat.session,
        how=Allocation.How.CONFIRMED,
        at=now,
        ledger_entry=_confirm_entry(
            family=family, seat=seat, unit=unit, key=idempotency_key, now=now
        ),
        idempotency_key=idempotency_key,
    )


def _claim_in_sql() -> bool:
    return connection.vendor == "postgresql" and settings.SELECTION_CLAIM_SQL


def _claim_orm(
    *, family: Family, round_name: str, seat: Seat, unit: Unit, idempotency_key: str, now
) -> ConfirmResult:
    """The claim as ORM statements in one transaction (SQLite, and the reference the SQL
    version is tested against): lock the family, then the unit, re-check, write."""
    round_id = unit.round_id
    with transaction.atomic():
        lock_first(Family.objects.filter(pk=family.pk))
        existing = Allocation.objects.filter(round_id=round_id, family=family).first()
        if existing is not None:
            return _repeat(existing, unit.pk, idempotency_key)
        locked = lock_first(Unit.objects.filter(pk=unit.pk, round_id=round_id))
        if locked is None:
            raise UnitNotFound()
        if locked.status != Unit.Status.AVAILABLE:
            raise _unit_taken(locked)
        if Session.objects.filter(pk=seat.session_id, status=Session.Status.CLOSED).exists():
            raise _window_closed(seat.session)
        allocation = _confirmed(
            family=family, seat=seat, unit=locked, idempotency_key=idempotency_key, now=now
        )
        allocation.ledger_entry.save()
        allocation.save()
        Unit.objects.filter(pk=locked.pk).update(status=Unit.Status.TAKEN)
        locked.status = Unit.Status.TAKEN
        Seat.objects.filter(pk=seat.pk).update(outcome=Seat.Outcome.CONFIRMED)
        record_allocations([allocation], now=now)
    return ConfirmResult(allocation, True)


# `selection_claim` (migration 0009): one statement, the same for both callers below.
_CLAIM = (
    "SELECT * FROM selection_claim(%s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, "
    "%s, %s, %s, %s::jsonb)"
)


def _claim_call(
    *, family: Family, phone: str, round_name: str, seat: Seat, unit: Unit, key: str, now
) -> tuple[Allocation, list]:
    """The allocation a claim writes (unsaved) and `selection_claim`'s arguments. Everything
    it writes is prepared here, so the database does no more than the ORM version."""
    allocation = _confirmed(family=family, seat=seat, unit=unit, idempotency_key=key, now=now)
    entry = allocation.ledger_entry
    stream, kind, event_data = result_event(allocation)
    if settings.EVENTS_CHECK_PAYLOADS:  # as events_record does for the ORM version
        from events.schemas import payload_check

        payload_check(kind, event_data)
    sms = (
        sms_payload(selection_result_params(allocation=allocation, round_name=round_name))
        if phone
        else ""
    )
    return allocation, [
        f"{lock_timeout_ms():d}ms",
        family.pk,
        unit.round_id,
        unit.pk,
        seat.session_id,
        seat.pk,
        now,
        key,
        canonical_json(entry.payload),
        entry.leaf_hash,
        phone,
        sms,
        stream,
        canonical_json(event_data),
    ]


def _claimed(allocation: Allocation, row: tuple) -> ConfirmResult | int:
    """`selection_claim`'s answer: the result, or the id of the family's existing allocation
    (outcome `exists`: a repeat or a conflict, which the caller loads and judges)."""
    outcome, allocation_id, entry_id, _unit, _key = row
    if outcome == "exists":
        return allocation_id
    if outcome == "unit_not_found":
        raise UnitNotFound()
    if outcome == "unit_taken":
        raise _unit_taken(allocation.unit)
    if outcome == "window_closed":
        raise _window_closed(allocation.session)
    allocation.ledger_entry.pk, allocation.pk = entry_id, allocation_id
    allocation.unit.status = Unit.Status.TAKEN  # as written: the answer shows the unit taken
    return ConfirmResult(allocation, True)


def _claim_sql(
    *, family: Family, round_name: str, seat: Seat, unit: Unit, idempotency_key: str, now
) -> ConfirmResult:
    """The same claim as one statement: `selection_claim` takes the same locks in the same
    order, re-checks the same rules under them and writes the same rows — the entry, the
    allocation, unit and seat, the result SMS, the family's event."""
    allocation, arguments = _claim_call(
        family=family,
        phone=family.main_applicant.mobile if family.main_applicant_id else "",
        round_name=round_name,
        seat=seat,
        unit=unit,
        key=idempotency_key,
        now=now,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(_CLAIM, arguments)
            result = _claimed(allocation, cursor.fetchone())
    except OperationalError as exc:
        if is_lock_timeout(exc):
            raise Busy() from exc
        raise
    if isinstance(result, int):
        existing = Allocation.objects.select_related("unit", "session", "ledger_entry").get(
            pk=result
        )
        return _repeat(existing, unit.pk, idempotency_key)
    return result


# ------------------------------------------------- the plain cases, on the event loop


def _confirm_seats(*, family_id: int, round_id: int, now: datetime):
    """family_state's query, each seat also telling whether another session of the round
    is due to close (what earlier_sessions_close_due would close first)."""
    return family_seats(family_id=family_id, round_id=round_id).annotate(
        earlier_due=Exists(
            _sessions_due(round_id=round_id, now=now).exclude(pk=OuterRef("session_id"))
        )
    )


_SEATS = Compiled(_confirm_seats, family_id=int, round_id=int, now=datetime)
_CART_LINE = Compiled(_cart_line, family_id=int, round_id=int, unit_id=int)


async def selection_confirm_plain(
    conn, *, applicant, round_id: int, unit_id: int, idempotency_key: str, now: datetime
) -> ConfirmResult | None:
    """确认正选's two plain cases, on the event loop (mobile_api/confirm_route.py): the
    family, in its open window, entered, with the unit in its formal cart, and no session
    of the round due to close — then either the unit is no longer 可选 (409 `unit_taken`,
    read without a transaction, as selection_confirm answers it) or the claim runs as the
    same one statement. The same queries as selection_confirm (compiled once, core/adb.py),
    the same rules (state_from_seats, require_formal), the same claim.

    Returns None for every other case — a repeat, a conflict, a phase error, a family not
    entered, a unit not in the cart, a session to close first, an applicant who is not the
    main one: selection_confirm decides those."""
    family = applicant.family
    if family.main_applicant_id != applicant.pk:
        return None
    seats = await _SEATS.fetch(conn, family_id=family.pk, round_id=round_id, now=now)
    if not seats or seats[0].allocation_pk is not None:
        return None
    try:
        seat = require_formal(
            state_from_seats(family=family, seats=seats, allocation=None, now=now)
        )
    except DomainError:
        return None
    if seat.entered_at is None or getattr(seat, "earlier_due", True):
        return None
    lines = await _CART_LINE.fetch(conn, family_id=family.pk, round_id=round_id, unit_id=unit_id)
    if not lines:
        return None
    unit = lines[0].unit
    if unit.status != Unit.Status.AVAILABLE:
        raise _unit_taken(unit)
    allocation, arguments = _claim_call(
        family=family,
        phone=applicant.mobile,
        round_name=seat.session.round.name,
        seat=seat,
        unit=unit,
        key=idempotency_key,
        now=now,
    )
    try:
        cursor = await conn.execute(_CLAIM, arguments)
    except LockNotAvailable as exc:
        raise Busy() from exc
    result = _claimed(allocation, await cursor.fetchone())
    return None if isinstance(result, int) else result


def _window_closed(session: Session) -> NotAllowed:
    return NotAllowed("window_closed", f"您的{session.word}时间已结束")


def _repeat(existing: Allocation, unit_id: int, key: str) -> ConfirmResult:
    if existing.unit_id == unit_id or (key and existing.idempotency_key == key):
        return ConfirmResult(existing, False)
    raise Conflict("already_allocated", "您已确认选房结果，不可更改")


# ------------------------------------------------------------------------- the clock side


def sessions_open_due(*, now: datetime) -> list[int]:
    """Mark scheduled sessions whose window has started as open. A conditional update, so
    two clocks open each session once. Returns the ids this call opened."""
    opened = []
    due = Session.objects.filter(
        status=Session.Status.SCHEDULED, starts_at__lte=now, ends_at__gt=now
    )
    for session in due:
        with transaction.atomic():
            # The start is re-read under the row lock the update takes: a session staff moved
            # later a moment ago (selection.staff_ops.session_reschedule) is not opened.
            if Session.objects.filter(
                pk=session.pk, status=Session.Status.SCHEDULED, starts_at__lte=now
            ).update(status=Session.Status.OPEN, opened_at=now):
                record_session_phase(session, "opened", now=now)
                opened.append(session.pk)
    return opened


def sessions_last_call_due(*, now: datetime) -> list[int]:
    """Tell each open session's families that its last 30 seconds have begun, once."""
    called = []
    due = Session.objects.filter(
        status=Session.Status.OPEN,
        last_call_at__isnull=True,
        ends_at__gt=now,
        ends_at__lte=now + timedelta(seconds=LAST_CALL_SECONDS),
    )
    for session in due:
        with transaction.atomic():
            if Session.objects.filter(pk=session.pk, last_call_at__isnull=True).update(
                last_call_at=now
            ):
                record_session_phase(session, "last_call", now=now)
                called.append(session.pk)
    return called


def rounds_announce_preselect(*, now: datetime) -> list[int]:
    """Announce on each round's public stream that pre-selection has opened, once."""
    announced = []
    for round_id in Round.objects.filter(
        preselect_announced_at__isnull=True, preselect_starts_at__lte=now
    ).values_list("pk", flat=True):
        with transaction.atomic():
            if Round.objects.filter(pk=round_id, preselect_announced_at__isnull=True).update(
                preselect_announced_at=now
            ):
                event_record(
                    stream=round_stream(round_id),
                    type="selection.preselect_opened",
                    data={"round": round_id},
                    now=now,
                )
                announced.append(round_id)
    return announced


@dataclass
class CloseReport:
    session_id: int
    assigned: list[tuple[int, int]] = field(default_factory=list)  # (family id, unit id)
    no_unit: list[int] = field(default_factory=list)
    absent: list[int] = field(default_factory=list)
    explanations: dict[int, str] = field(default_factory=dict)


def session_close(*, session_id: int, now: datetime) -> CloseReport | None:
    """Close a session whose window has ended, exactly once, and auto-assign.

    Every family that entered and neither confirmed nor gave up gets the first unit of its
    formal cart, in cart order, that nobody holds; families are processed in rank order.
    Families that never entered lose their pre-selection, if they had one (预选结果作废); the
    `absent` entry lists it (`voided_pre_cart`). Each family's outcome and explanation ("#1
    3-1202 taken at 10:02:03 (leaf 3fa2c1d0); #2 assigned") goes to the ledger. Locks the
    session row (a second clock waits, then finds it closed and returns None), the session's
    families, then the candidate units.
    """
    with transaction.atomic():
        # FOR NO KEY UPDATE: a confirm or give-up holding a family lock inserts rows that
        # reference this session (FOR KEY SHARE); a plain FOR UPDATE here would deadlock with
        # it while this close waits for that family.
        session = lock_first(Session.objects.filter(pk=session_id), no_key=True)
        if session is None or session.status == Session.Status.CLOSED or now < session.ends_at:
            return None
        report = CloseReport(session_id)
        family_ids = sorted(
            Seat.objects.filter(session=session).values_list("family_id", flat=True)
        )
        lock_rows(Family.objects.values_list("pk"), family_ids)
        # Read the seats (entered_at) only now: an enter or give-up that held a family lock
        # committed before this point and is seen; any later one sees the session closed.
        seats = list(
            Seat.objects.filter(session=session).select_related("family").order_by("family__rank")
        )
        allocated = set(
            Allocation.objects.filter(
                round_id=session.round_id, family_id__in=family_ids
            ).values_list("family_id", flat=True)
        )
        gave_up = set(
            GiveUp.objects.filter(round_id=session.round_id, family_id__in=family_ids).values_list(
                "family_id", flat=True
            )
        )
        pending = [
            seat
            for seat in seats
            if seat.family_id not in allocated and seat.family_id not in gave_up
        ]
        entered = [seat for seat in pending if seat.entered_at is not None]
        absent = [seat for seat in pending if seat.entered_at is None]

        carts: dict[int, list[int]] = {seat.family_id: [] for seat in entered}
        for family_id, unit_id in (
            CartItem.objects.filter(
                round_id=session.round_id, kind=CartItem.Kind.FORMAL, family_id__in=list(carts)
            )
            .order_by("family_id", "position", "id")
            .values_list("family_id", "unit_id")
        ):
            carts[family_id].append(unit_id)
        unit_ids = sorted({unit_id for cart in carts.values() for unit_id in cart})
        units = {unit.pk: unit for unit in lock_rows(Unit, unit_ids)}
        taken = {
            a.unit_id: (a.at, a.ledger_entry.code)
            for a in Allocation.objects.filter(unit_id__in=unit_ids)
            .select_related("ledger_entry")
            .only("unit_id", "at", "ledger_entry__leaf_hash")
        }

        ledger = LedgerWriter(now=now)
        tz = timezone.get_current_timezone()  # once, not per explanation line
        new_allocations, newly_taken = [], []
        outcomes: dict[str, list[int]] = {Seat.Outcome.AUTO_ASSIGNED: [], Seat.Outcome.NO_UNIT: []}
        for seat in entered:
            family = seat.family
            steps, chosen = [], None
            for index, unit_id in enumerate(carts[seat.family_id], start=1):
                unit = units[unit_id]
                if unit.status == Unit.Status.AVAILABLE and unit_id not in taken:
                    chosen = unit
                    steps.append(f"#{index} {unit.label} assigned")
                    break
                if unit_id in taken:
                    at, code = taken[unit_id]
                    steps.append(f"#{index} {unit.label} taken at {_clock(at, tz)} (leaf {code})")
                else:
                    steps.append(f"#{index} {unit.label} not available ({unit.status})")
            explanation = "; ".join(steps) or "formal cart empty"
            entry = ledger.append(
                round_id=session.round_id,
                session_id=session.pk,
                kind="auto_assign" if chosen else "no_unit",
                payload={
                    "family": family.pk,
                    "rank": family.rank,
                    "cart": carts[seat.family_id],
                    "unit": chosen.pk if chosen else None,
                    "unit_label": chosen.label if chosen else None,
                    "explanation": explanation,
                },
            )
            report.explanations[family.pk] = explanation
            if chosen:
                taken[chosen.pk] = (now, entry.code)
                chosen.status = Unit.Status.TAKEN
                newly_taken.append(chosen.pk)
                new_allocations.append(
                    Allocation(
                        round_id=session.round_id,
                        unit=chosen,
                        family=family,
                        session=session,
                        how=Allocation.How.AUTO,
                        at=now,
                        ledger_entry=entry,
                    )
                )
                outcomes[Seat.Outcome.AUTO_ASSIGNED].append(seat.pk)
                report.assigned.append((family.pk, chosen.pk))
            else:
                outcomes[Seat.Outcome.NO_UNIT].append(seat.pk)
                report.no_unit.append(family.pk)

        absent_ids = [seat.family_id for seat in absent]
        voided: dict[int, list[int]] = {family_id: [] for family_id in absent_ids}
        for family_id, unit_id in (
            CartItem.objects.filter(
                round_id=session.round_id, kind=CartItem.Kind.PRE, family_id__in=absent_ids
            )
            .order_by("family_id", "position")
            .values_list("family_id", "unit_id")
        ):
            voided[family_id].append(unit_id)
        for seat in absent:
            ledger.append(
                round_id=session.round_id,
                session_id=session.pk,
                kind="absent",
                payload={
                    "family": seat.family_id,
                    "rank": seat.family.rank,
                    "voided_pre_cart": voided[seat.family_id],
                },
            )
            report.absent.append(seat.family_id)
        ledger.append(
            round_id=session.round_id,
            session_id=session.pk,
            kind="session_close",
            payload={
                "session": session.pk,
                "order": session.order,
                "auto_assigned": len(report.assigned),
                "no_unit": len(report.no_unit),
                "absent": len(report.absent),
                "confirmed_before": len(allocated & set(family_ids)),
                "gave_up": len(gave_up & set(family_ids)),
            },
        )
        ledger.flush()
        Allocation.objects.bulk_create(new_allocations)
        Unit.objects.filter(pk__in=newly_taken).update(status=Unit.Status.TAKEN)
        record_session_phase(session, "closed", now=now, extra=allocation_events(new_allocations))
        for outcome, seat_ids in outcomes.items():
            Seat.objects.filter(pk__in=seat_ids).update(outcome=outcome)
        Seat.objects.filter(pk__in=[seat.pk for seat in absent]).update(outcome=Seat.Outcome.ABSENT)
        CartItem.objects.filter(
            round_id=session.round_id, kind=CartItem.Kind.PRE, family_id__in=absent_ids
        ).delete()
        if session.kind == Session.Kind.FORMAL and (report.no_unit or report.absent):
            deadline = formal_day_deadline(
                session=session, grace_seconds=session.round.supplementary_grace_seconds
            )
            if now < deadline:  # a close run late, past the deadline, offers nothing
                selection_missed_sms(
                    session=session,
                    missed={
                        **dict.fromkeys(report.no_unit, "no_unit"),
                        **{
                            family_id: "absent_voided" if voided[family_id] else "absent"
                            for family_id in report.absent
                        },
                    },
                    deadline=deadline,
                    now=now,
                )
        Session.objects.filter(pk=session.pk).update(status=Session.Status.CLOSED, closed_at=now)
    return report


def _sessions_due(*, round_id: int, now: datetime):
    """The round's sessions whose window has ended and that no one has closed yet."""
    return Session.objects.filter(round_id=round_id, ends_at__lte=now).exclude(
        status=Session.Status.CLOSED
    )


def earlier_sessions_close_due(*, session: Session, now: datetime) -> None:
    """Rank order across session boundaries: before a write of `session` (a confirm, a cart
    edit, an enter), close and auto-assign every other session of its round whose window has
    ended and that the clock has not closed yet, oldest first, with the clock's own
    exactly-once `session_close` (a clock closing it at the same moment makes this wait on the
    session row, then find it closed). With back-to-back sessions a family of session N+1 thus
    never takes a unit that session N's auto-assign gives. Called outside any transaction."""
    due = (
        _sessions_due(round_id=session.round_id, now=now)
        .exclude(pk=session.pk)
        .order_by("ends_at", "pk")
        .values_list("pk", flat=True)
    )
    for session_id in due:
        session_close(session_id=session_id, now=now)


def sessions_close_due(*, now: datetime) -> list[CloseReport]:
    """Close every session whose window has ended, oldest first."""
    reports = []
    for session_id in (
        Session.objects.filter(ends_at__lte=now)
        .exclude(status=Session.Status.CLOSED)
        .order_by("ends_at", "pk")
        .values_list("pk", flat=True)
    ):
        report = session_close(session_id=session_id, now=now)
        if report is not None:
            reports.append(report)
    return reports


# ------------------------------------------------------------------------------ give up


def give_up_intent(*, family: Family, round_id: int, now: datetime) -> str:
    """The first of the two askings: checks that giving up is possible and returns a token
    the second asking must bring back within GIVE_UP_TOKEN_SECONDS."""
    state = family_state(family=family, round_id=round_id, now=now)
    _check_can_give_up(state)
    return signing.dumps({"f": family.pk, "r": round_id}, salt=GIVE_UP_SALT)


def _check_can_give_up(state) -> None:
    if state.allocation is not None:
        raise Conflict("already_allocated", "您已选定房源，不能放弃")
    if state.current is None and state.upcoming is None:
        raise NotAllowed("window_closed", "您的选房场次已结束")


def selection_give_up(
    *, family: Family, round_id: int, token: str, ctx: RequestContext, now: datetime
) -> GiveUp:
    """主动放弃, confirmed by the token from `give_up_intent`. Irreversible; the family gets no
    unit and cannot apply for supplementary selection. Idempotent once given up.
    Raises `give_up_token_invalid`, `already_allocated`, `window_closed`."""
    state = family_state(family=family, round_id=round_id, now=now)
    try:
        data = signing.loads(token or "", salt=GIVE_UP_SALT, max_age=GIVE_UP_TOKEN_SECONDS)
    except signing.BadSignature:
        raise ValidationFailed("give_up_token_invalid", "确认已过期，请重新操作") from None
    if data != {"f": family.pk, "r": round_id}:
        raise ValidationFailed("give_up_token_invalid", "确认已过期，请重新操作")
    existing = GiveUp.objects.filter(round_id=round_id, family=family).first()
    if existing is not None:
        return existing
    _check_can_give_up(state)
    with transaction.atomic():
        lock_first(Family.objects.filter(pk=family.pk))
        seat = state.current or state.upcoming
        if seat is not None:  # the close reads give-ups: refuse once it has committed
            session_open_recheck(session_id=seat.session_id, now=now)
        if Allocation.objects.filter(round_id=round_id, family=family).exists():
            raise Conflict("already_allocated", "您已选定房源，不能放弃")
        give_up = GiveUp.objects.create(
            family=family,
            round_id=round_id,
            session=seat.session if seat else None,
            at=now,
            ip=ctx.ip,
            user_agent=ctx.user_agent,
        )
        Seat.objects.filter(
            family=family,
            session__round_id=round_id,
            outcome=Seat.Outcome.PENDING,
            session__ends_at__gt=now,
        ).update(outcome=Seat.Outcome.GAVE_UP)
        ledger = LedgerWriter(now=now)
        ledger.append(
            round_id=round_id,
            session_id=seat.session_id if seat else None,
            kind="give_up",
            payload={"family": family.pk, "rank": family.rank},
        )
        ledger.flush()
        event_record(
            stream=family_stream(family.pk),
            type="selection.gave_up",
            data={"round": round_id, "at": now.isoformat()},
            now=now,
        )
    return give_up
