"""Selection's events: what each change tells the pages, recorded in the change's
transaction (events app outbox), published after commit by realtime's relay.

Streams: round.<id> (public broadcast: phases; a unit taken, announced by the log's
sequencer once its entry is indexed), session.<id> (its families:
opened, last 30 s, closed), family.<id> (that family only: its result)."""

from __future__ import annotations

from datetime import datetime

from events.services import events_record
from events.streams import family_stream, round_stream, session_stream
from selection.models import Allocation, Session, Unit

LAST_CALL_SECONDS = 30


def unit_json(unit: Unit) -> dict:
    return {
        "id": unit.pk,
        "building": unit.building,
        "number": unit.number,
        "label": unit.label,
        "layout": unit.layout,
        "layout_label": unit.get_layout_display(),
        "orientation": unit.orientation,
    }


def session_json(session: Session) -> dict:
    return {
        "id": session.pk,
        "order": session.order,
        "kind": session.kind,
        "starts_at": session.starts_at.isoformat(),
        "ends_at": session.ends_at.isoformat(),
    }


def allocation_events(allocations: list[Allocation]) -> list[tuple[str, str, dict]]:
    """The family's own result, for each allocation, in the transaction that made it
    (confirm, close, staff), which also queues each family's result SMS (outbox). The public
    `selection.unit_taken` is not here: the log's sequencer announces it (`taken_events`),
    so a confirm locks no counter that every confirm locks."""
    from selection.notices import selection_result_sms

    selection_result_sms(allocations)
    return [result_event(allocation) for allocation in allocations]


def result_event(allocation: Allocation) -> tuple[str, str, dict]:
    """The family's own `selection.result_assigned` (its stream only)."""
    data = {
        "unit": unit_json(allocation.unit),
        "how": allocation.how,
        "at": allocation.at.isoformat(),
    }
    return family_stream(allocation.family_id), "selection.result_assigned", data


def taken_events(allocations: list[Allocation]) -> list[tuple[str, str, dict]]:
    """`selection.unit_taken` on the public round stream (no family), for allocations whose
    log entries were just indexed, in log order: the board shows what the log holds."""
    return [
        (
            round_stream(allocation.round_id),
            "selection.unit_taken",
            {
                "unit": unit_json(allocation.unit),
                "how": allocation.how,
                "how_label": allocation.how_label,
                "entry": allocation.ledger_entry_id,
                "index": allocation.ledger_entry.index,
            },
        )
        for allocation in allocations
    ]


def record_allocations(allocations: list[Allocation], *, now: datetime) -> None:
    events_record(events=allocation_events(allocations), now=now)


def record_session_phase(session: Session, kind: str, *, now: datetime, extra=()) -> None:
    """opened / last_call / closed, to the session's families and the public round stream."""
    data = {"session": session_json(session)}
    events = [(session_stream(session.pk), f"selection.session_{kind}", data)]
    if kind in ("opened", "closed"):
        events.append((round_stream(session.round_id), f"selection.session_{kind}", data))
    events_record(events=[*extra, *events], now=now)
