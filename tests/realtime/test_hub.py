"""The per-process hub (realtime/hub.py): one layer membership per stream however many
sockets follow it, every local socket still gets every frame, and losing the layer closes
the hub's sockets with 4503 so the pages poll and reconnect."""

from __future__ import annotations

import asyncio

import pytest

from realtime.hub import CLOSE_TRY_AGAIN, StreamHub, hub_for
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
