"""Record events in the caller's transaction; read them back for catch-up."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import connection

from events.models import Event, Stream

MAX_PAGE = 500


def _reserve(counts: dict[str, int], now: datetime) -> dict[str, int]:
    """Advance each stream's counter by its count in ONE statement (a session close touches
    a thousand family streams); return each stream's new last seq. The upsert locks the
    stream rows until commit, in name order (the VALUES are sorted)."""
    if not counts:
        return {}
    table = Stream._meta.db_table
    names = sorted(counts)
    values = ", ".join(["(%s, %s, %s)"] * len(names))
    params: list = []
    for name in names:
        params += [name, counts[name], now]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (name, last_seq, updated_at) VALUES {values} "  # noqa: S608
            f"ON CONFLICT (name) DO UPDATE SET last_seq = {table}.last_seq + EXCLUDED.last_seq, "
            "updated_at = EXCLUDED.updated_at RETURNING name, last_seq",
            params,
        )
        return dict(cursor.fetchall())


def events_record(*, events: Iterable[tuple[str, str, dict]], now: datetime) -> list[Event]:
    """Record (stream, type, data) events in the current transaction, in order.

    Streams are locked in name order and last in any transaction (after families, units and
    the ledger head), so recording events never closes a lock cycle. Nothing is published
    here: realtime's relay sends committed events, so a rolled-back change sends nothing."""
    assert connection.in_atomic_block, "events are recorded inside the change's transaction"
    by_stream: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    check = settings.EVENTS_CHECK_PAYLOADS
    for stream, kind, data in events:
        if check:
            from events.schemas import payload_check

            payload_check(kind, data)
        by_stream[stream].append((kind, data))
    rows: list[Event] = []
    lasts = _reserve({stream: len(items) for stream, items in by_stream.items()}, now)
    for stream in sorted(by_stream):
        items = by_stream[stream]
        first = lasts[stream] - len(items) + 1
        rows.extend(
            Event(stream=stream, seq=first + i, type=kind, data=data, at=now)
            for i, (kind, data) in enumerate(items)
        )
    return Event.objects.bulk_create(rows)


def event_record(*, stream: str, type: str, data: dict, now: datetime) -> Event:
    return events_record(events=[(stream, type, data)], now=now)[0]


def events_after(*, stream: str, after: int, limit: int = MAX_PAGE) -> list[Event]:
    return list(Event.objects.filter(stream=stream, seq__gt=after).order_by("seq")[:limit])


def stream_heads(*, streams: Iterable[str]) -> dict[str, int]:
    """The last committed seq of each stream (0 for a stream with no events yet)."""
    names = list(streams)
    heads = dict(Stream.objects.filter(name__in=names).values_list("name", "last_seq"))
    return {name: heads.get(name, 0) for name in names}


def event_json(event: Event) -> dict:
    return {"seq": event.seq, "type": event.type, "at": event.at.isoformat(), "data": event.data}


def streams_active(*, since: datetime) -> dict[str, int]:
    """Streams that changed since `since`, with their last seq (for the relay's heartbeat)."""
    return dict(Stream.objects.filter(updated_at__gte=since).values_list("name", "last_seq"))
