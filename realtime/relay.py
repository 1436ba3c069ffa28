"""The relay: publishes committed events from the outbox to the channel layer.

Each pass (as events commit, at most one per 100 ms tick) takes the unpublished events,
groups them by stream and sends ONE message per stream with the whole seq range, so a burst
of 50 takeovers reaches a watcher as one or two messages, not 50. Every few seconds it also
sends each recently active stream's head, so a client that missed a message (delivery is at
most once) notices the gap and catches up over HTTP. If the layer is down (Redis stopped) the
events stay unpublished and go out when it returns; the pages poll meanwhile.

Runs as `manage.py realtime_relay` (several may run: rows are claimed with SKIP LOCKED) or,
in the embedded quick start, as a task on the server's event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import defaultdict
from datetime import timedelta

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from core.loops import IDLE_SECONDS, pace
from core.wakeup import EVENTS_CHANNEL, Wakeup
from events.models import Event
from events.services import streams_active
from realtime.protocol import events_frame, group_name, heads_frame

logger = logging.getLogger("anju.relay")

TICK_SECONDS = 0.1
HEADS_EVERY_SECONDS = 5.0
HEADS_WINDOW = timedelta(minutes=10)
BATCH = 5000


def _unpublished(limit: int) -> list[Event]:
    return list(
        Event.objects.select_for_update(skip_locked=True)
        .filter(published_at__isnull=True)
        .order_by("id")[:limit]
    )


def _frames(events: list[Event]) -> list[tuple[str, str]]:
    """(group, text) per stream: the stream's events of this tick in one frame."""
    by_stream: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_stream[event.stream].append(event)
    return [
        (group_name(stream), events_frame(stream, sorted(batch, key=lambda e: e.seq)))
        for stream, batch in by_stream.items()
    ]


def frame_message(group: str, text: str) -> dict:
    """What the layer carries to each process's hub (realtime/hub.py): the frame and the
    group it is for, which the hub hands to the local sockets following it."""
    return {"type": "stream.frame", "group": group, "text": text}


def _mark_published(events: list[Event]) -> None:
    Event.objects.filter(pk__in=[e.pk for e in events]).update(published_at=timezone.now())


def _send_all(layer, frames: list[tuple[str, str]], loop: asyncio.AbstractEventLoop | None):
    """Send the frames; on `loop` when given (the relay process keeps one loop, so the
    layer keeps its Redis connections instead of opening new ones for every frame)."""
    if not frames:
        return

    async def send() -> None:
        for group, text in frames:
            await layer.group_send(group, frame_message(group, text))

    if loop is None:
        async_to_sync(send)()
    else:
        loop.run_until_complete(send())


def relay_once(*, layer=None, limit: int = BATCH, loop=None) -> int:
    """Publish what is committed and unpublished; returns how many events went out. The
    claim and the send share one transaction on the outbox rows only (no domain locks), so
    a failed send leaves them unpublished for the next tick."""
    layer = layer or get_channel_layer()
    with transaction.atomic():
        events = _unpublished(limit)
        _send_all(layer, _frames(events), loop)
        _mark_published(events)
    return len(events)


def _claim_frames(limit: int = BATCH) -> list[tuple[str, str]]:
    with transaction.atomic():
        events = _unpublished(limit)
        _mark_published(events)
        return _frames(events)


async def relay_run_async(*, tick: float = TICK_SECONDS) -> None:
    """The embedded quick start's relay: a task on the server's own event loop (the in-memory
    channel layer cannot be reached from another thread). Claims, then sends; a frame lost
    here is recovered by the pages' heartbeat check and HTTP catch-up."""
    layer = get_channel_layer()
    claim = database_sync_to_async(_claim_frames)
    while True:
        try:
            for group, text in await claim():
                await layer.group_send(group, frame_message(group, text))
        except Exception as exc:
            logger.warning("in-process relay tick failed, retrying: %s", exc)
        await asyncio.sleep(tick)


_task: asyncio.Task | None = None


def relay_ensure_in_process() -> None:
    """Start the in-process relay on the running loop once (called by the first socket)."""
    global _task
    if settings.REALTIME_RELAY_IN_PROCESS and (_task is None or _task.done()):
        _task = asyncio.get_running_loop().create_task(relay_run_async())


def heads_once(*, layer=None, loop=None) -> int:
    layer = layer or get_channel_layer()
    heads = streams_active(since=timezone.now() - HEADS_WINDOW)
    _send_all(
        layer,
        [(group_name(stream), heads_frame({stream: seq})) for stream, seq in heads.items()],
        loop,
    )
    return len(heads)


MAX_BACKOFF_SECONDS = 2.0
FAILURE_LOG_EVERY_SECONDS = 60.0


def relay_run(*, stop: threading.Event, tick: float = TICK_SECONDS) -> None:
    """Tick until `stop`. On PostgreSQL a pass starts as events commit (their NOTIFY, core/
    wakeup.py), at most one per `tick` so that a burst still goes out coalesced, and at least
    one per second; elsewhere one every `tick`. While Redis or the database is away it backs
    off to one try every 2 s and logs once a minute, then says how many events went out when
    it recovers."""
    layer = get_channel_layer()
    loop = asyncio.new_event_loop()  # one loop for the process: the layer's connections stay
    wakeup = Wakeup.open(EVENTS_CHANNEL)
    next_heads = time.monotonic()
    failing_since: float | None = None
    last_log = 0.0
    wait = tick
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                if failing_since is not None:
                    close_old_connections()  # after a failure only: not a reconnect every tick
                sent = relay_once(layer=layer, loop=loop)
                if time.monotonic() >= next_heads:
                    heads_once(layer=layer, loop=loop)
                    next_heads = time.monotonic() + HEADS_EVERY_SECONDS
                if failing_since is not None:
                    logger.warning(
                        "relay recovered after %.0f s; published %d events",
                        time.monotonic() - failing_since,
                        sent,
                    )
                failing_since, wait = None, tick
            except Exception as exc:  # Redis or the database away: events stay in the outbox
                now = time.monotonic()
                if failing_since is None:
                    failing_since = now
                if now - last_log >= FAILURE_LOG_EVERY_SECONDS:
                    logger.warning("relay cannot publish, retrying: %s", exc)
                    last_log = now
                wait = min(MAX_BACKOFF_SECONDS, wait * 2)
            if failing_since is None:
                idle = max(0.0, min(IDLE_SECONDS, next_heads - time.monotonic()))
                pace(stop, wakeup, started=started, tick=tick, idle=idle)
            else:
                stop.wait(wait)
    finally:
        if wakeup is not None:
            wakeup.close()
        loop.close()
