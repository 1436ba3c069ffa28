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


def frames_merged(earlier: str, later: str) -> str | None:
    """One frame saying all that two consecutive frames of a group say, or None when they
    cannot be one: events of one stream whose seq ranges touch (earlier `to` + 1 = later
    `from`), or two heads frames (the higher seq of each stream). The server time is the
    later frame's. A page cannot tell the merged frame from one the relay made in a longer
    tick, which is how a busy server process catches up (realtime/hub.py). A frame that is not
    one of those shapes is never merged: it goes out as it came."""
    try:
        a, b = json.loads(earlier), json.loads(later)
        kind = a["type"]
        if kind != b["type"]:
            return None
        if kind == "events" and a["stream"] == b["stream"] and a["to"] + 1 == b["from"]:
            merged = {**b, "from": a["from"], "events": a["events"] + b["events"]}
        elif kind == "heads":
            streams = dict(a["streams"])
            for stream, seq in b["streams"].items():
                streams[stream] = max(seq, streams.get(stream, seq))
            merged = {**b, "streams": streams}
        else:
            return None
    except (ValueError, TypeError, KeyError):
        return None
    return json.dumps(merged, ensure_ascii=False, separators=(",", ":"))
