"""The per-process hub (realtime/hub.py): one layer membership per stream however many
sockets follow it, every local socket still gets every frame, and losing the layer closes
the hub's sockets with 4503 so the pages poll and reconnect. Frames that queue up while the
hub is busy sending go out merged, never across a gap."""

from __future__ import annotations

import asyncio
import json

import pytest

from realtime.hub import CLOSE_TRY_AGAIN, StreamHub, hub_for
from realtime.protocol import frames_merged
from realtime.relay import frame_message


class Socket:
    """What the hub needs of a consumer: send and close."""

    def __init__(self) -> None:
        self.frames: list[str] = []
        self.closed: int | None = None
        self.got = asyncio.Event()

    async def send(self, *, text_data: str) -> None:
        self.frames.append(text_data)
        self.got.set()

    async def close(self, *, code: int) -> None:
        self.closed = code
        self.got.set()


class CountingLayer:
    """Wraps the test's layer and counts memberships added and removed."""

    def __init__(self, layer) -> None:
        self.layer, self.added, self.discarded = layer, [], []

    async def group_add(self, group, channel):
        self.added.append((group, channel))
        await self.layer.group_add(group, channel)

    async def group_discard(self, group, channel):
        self.discarded.append((group, channel))
        await self.layer.group_discard(group, channel)

    def __getattr__(self, name):
        return getattr(self.layer, name)


async def delivered(*sockets: Socket) -> None:
    await asyncio.wait_for(asyncio.gather(*(s.got.wait() for s in sockets)), 5)
    for s in sockets:
        s.got.clear()


async def test_one_membership_per_stream_and_every_local_socket_gets_the_frame(flushed_layer):
    layer = CountingLayer(flushed_layer)
    hub = StreamHub(layer)
    a, b, other = Socket(), Socket(), Socket()
    await hub.join("ev.round.1", a)
    await hub.join("ev.round.1", b)
    await hub.join("ev.round.2", other)
    assert {channel for _, channel in layer.added} == {hub.channel}  # the hub's, not a socket's

    await flushed_layer.group_send("ev.round.1", frame_message("ev.round.1", "F1"))
    await delivered(a, b)
    assert a.frames == b.frames == ["F1"] and other.frames == []

    await hub.leave("ev.round.1", a)
    assert layer.discarded == []  # b still follows it
    await flushed_layer.group_send("ev.round.1", frame_message("ev.round.1", "F2"))
    await delivered(b)
    assert (a.frames, b.frames) == (["F1"], ["F1", "F2"])
    await hub.leave("ev.round.1", b)
    assert layer.discarded == [("ev.round.1", hub.channel)]  # the last one left
    hub._pump.cancel()


async def test_losing_the_layer_closes_the_hubs_sockets_with_try_again(flushed_layer):
    redis_stops = asyncio.Event()

    class BrokenReceive(CountingLayer):
        async def receive(self, channel):
            await redis_stops.wait()
            raise ConnectionError("redis went away")

    hub = StreamHub(BrokenReceive(flushed_layer))
    a = Socket()
    await hub.join("ev.round.1", a)
    redis_stops.set()
    await delivered(a)
    assert a.closed == CLOSE_TRY_AGAIN
    assert hub.members == {}
    # A socket joining while the receive dies is refused, never left deaf.
    with pytest.raises(ConnectionError):
        await hub.join("ev.round.2", Socket())
    assert hub.members == {}


async def test_one_hub_per_event_loop_and_layer(flushed_layer):
    assert hub_for(flushed_layer) is hub_for(flushed_layer)
    assert hub_for(CountingLayer(flushed_layer)) is not hub_for(flushed_layer)


async def test_a_layer_that_drops_messages_silently_is_noticed_by_the_probe(
    flushed_layer, monkeypatch
):
    """The pub/sub layer does not fail during a Redis outage: it reconnects in the background
    and what was published meanwhile is gone. The hub's probe does not come back, so its
    sockets are closed with 4503 just the same (the pages poll, then reconnect)."""
    import realtime.hub as hub_module

    monkeypatch.setattr(hub_module, "PROBE_EVERY", 0.05)
    monkeypatch.setattr(hub_module, "PROBE_TIMEOUT", 0.2)
    redis_gone = asyncio.Event()
    three_probes = asyncio.Event()
    probes = []

    class SilentLayer(CountingLayer):
        async def group_send(self, group, message):
            if redis_gone.is_set():
                return  # published into the void
            await self.layer.group_send(group, message)
            if message.get("type") == "hub.probe":
                probes.append(group)
                if len(probes) >= 3:
                    three_probes.set()

    hub = StreamHub(SilentLayer(flushed_layer))
    a = Socket()
    await hub.join("ev.round.1", a)
    await asyncio.wait_for(three_probes.wait(), 5)  # probes go round while the layer works
    assert a.closed is None
    redis_gone.set()
    await delivered(a)
    assert a.closed == CLOSE_TRY_AGAIN and hub.members == {}


async def test_control_without_the_probe_a_silent_layer_leaves_sockets_open_and_deaf(
    flushed_layer, monkeypatch
):
    import realtime.hub as hub_module

    monkeypatch.setattr(hub_module, "PROBE_EVERY", 3600.0)  # as if there were no probe
    redis_gone = asyncio.Event()

    class SilentLayer(CountingLayer):
        async def group_send(self, group, message):
            if not redis_gone.is_set():
                await self.layer.group_send(group, message)

    hub = StreamHub(SilentLayer(flushed_layer))
    a = Socket()
    await hub.join("ev.round.1", a)
    redis_gone.set()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(a.got.wait(), 0.5)
    assert a.closed is None  # open, and nobody will tell the page


def events(first: int, last: int, stream: str = "round.1") -> str:
    return json.dumps(
        {
            "type": "events",
            "stream": stream,
            "from": first,
            "to": last,
            "server_time": 1_000 + last,
            "events": [
                {"seq": seq, "type": "selection.unit_taken"} for seq in range(first, last + 1)
            ],
        },
        separators=(",", ":"),
    )


def heads(streams: dict[str, int], at: int) -> str:
    return json.dumps({"type": "heads", "streams": streams, "server_time": at})


def test_consecutive_frames_of_a_stream_merge_into_one():
    assert json.loads(frames_merged(events(1, 2), events(3, 5))) == json.loads(events(1, 5))
    merged = json.loads(frames_merged(heads({"a": 3, "b": 9}, 1), heads({"a": 4, "b": 2}, 2)))
    assert merged == {"type": "heads", "streams": {"a": 4, "b": 9}, "server_time": 2}


@pytest.mark.parametrize(
    ("earlier", "later"),
    [
        (events(1, 2), events(4, 5)),  # a gap: the page must see it and catch up
        (events(3, 4), events(1, 2)),  # out of order
        (events(1, 2), events(2, 3)),  # overlapping
        (events(1, 2), events(3, 4, stream="round.2")),
        (events(1, 2), heads({"round.1": 2}, 5)),
        (heads({"round.1": 2}, 5), events(3, 4)),
        ("not json", events(3, 4)),
        (events(1, 2), '{"type": "events", "stream": "round.1"}'),
        ('["events"]', events(3, 4)),
        (heads({"round.1": 2}, 5), '{"type": "heads", "streams": {"round.1": "x"}}'),
    ],
)
def test_frames_that_do_not_follow_each_other_stay_apart(earlier, later):
    assert frames_merged(earlier, later) is None


class Counted(CountingLayer):
    """Tells the test each time the hub has taken a frame (not a probe) from the layer."""

    def __init__(self, layer) -> None:
        super().__init__(layer)
        self.frames_taken = 0
        self.took = asyncio.Event()

    async def receive(self, channel):
        message = await self.layer.receive(channel)
        if message.get("type") != "hub.probe":
            self.frames_taken += 1
            self.took.set()
        return message


async def frames_taken(layer: Counted, n: int) -> None:
    """Until the hub has received n frames (it queues each before its next receive)."""
    async with asyncio.timeout(5):
        while layer.frames_taken < n:
            layer.took.clear()
            await layer.took.wait()


async def busy_hub(flushed_layer, *later: str) -> Socket:
    """A hub whose only socket is slow to take frame 1 (the process is busy writing it to
    thousands of sockets) while `later` frames arrive; then the socket is released."""
    release = asyncio.Event()

    class Slow(Socket):
        async def send(self, *, text_data: str) -> None:
            await super().send(text_data=text_data)
            await release.wait()

    layer = Counted(flushed_layer)
    hub = StreamHub(layer)
    socket = Slow()
    await hub.join("ev.round.1", socket)
    await flushed_layer.group_send("ev.round.1", frame_message("ev.round.1", events(1, 1)))
    await delivered(socket)  # sent at once, alone: an idle hub does not wait to merge
    for text in later:
        await flushed_layer.group_send("ev.round.1", frame_message("ev.round.1", text))
    await frames_taken(layer, 1 + len(later))
    assert socket.frames == [events(1, 1)]
    release.set()
    await delivered(socket)
    for task in hub._tasks():
        task.cancel()
    return socket


async def test_frames_queued_behind_a_busy_sender_go_out_as_one(flushed_layer):
    socket = await busy_hub(flushed_layer, events(2, 2), events(3, 5), events(6, 6))
    assert [json.loads(f) for f in socket.frames] == [
        json.loads(events(1, 1)),
        json.loads(events(2, 6)),
    ]


async def test_control_queued_frames_with_a_gap_between_them_stay_apart(flushed_layer):
    socket = await busy_hub(flushed_layer, events(2, 2), events(4, 4))
    assert socket.frames == [events(1, 1), events(2, 2), events(4, 4)]
