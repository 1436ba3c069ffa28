"""What travels on the sockets. See docs/REALTIME.md for the whole protocol.

Server → client: hello, events (a stream's seq range, coalesced per relay tick), heads
(heartbeat of last seqs), pong, error. Client → server: ping, resync."""

from __future__ import annotations

import json
import time

from events.models import Event
from events.services import event_json


def server_time_ms() -> int:
    return int(time.time() * 1000)


def group_name(stream: str) -> str:
    """Channel-layer group of a stream (group names allow letters, digits, - _ .)."""
    return f"ev.{stream}"


def events_frame(stream: str, events: list[Event]) -> str:
    """One JSON text for every socket of the stream: encoded once by the relay, not once per
    socket by 2,000 consumers."""
    return json.dumps(
        {
            "type": "events",
            "stream": stream,
            "from": events[0].seq,
            "to": events[-1].seq,
            "server_time": server_time_ms(),
            "events": [event_json(e) for e in events],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def heads_frame(heads: dict[str, int]) -> str:
    return json.dumps(
        {"type": "heads", "streams": heads, "server_time": server_time_ms()}, separators=(",", ":")
    )
