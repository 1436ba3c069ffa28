"""One channel-layer membership per stream per server process, not one per socket.

With 2,000 sockets following one round, the relay's frame used to be delivered by the layer
2,000 times into the same process (one receive and one dispatch per socket). The hub joins
each stream's group once, with a channel of its own, receives each frame once and hands it
to the local sockets following that stream (docs/BENCHMARKS.md: a daphne's CPU per burst
fell several-fold). Delivery stays at most once: a page that misses a frame notices the gap
by the relay's heads and catches up over HTTP.

Receiving and sending are two tasks. While the sender writes a frame to a few thousand
sockets (tens of milliseconds here, during which the process does nothing else), the next
frames queue up; the receiver then takes them all at once and merges consecutive frames of a
stream into one (realtime.protocol.frames_merged), so a process that falls behind in a burst
catches up with fewer, larger frames instead of a growing queue. An idle hub sends a frame as
soon as it arrives.

If receiving from the layer fails (Redis away), every socket of the hub is closed with 4503
(try again), as a socket's own receive loop would have ended it: the pages poll, reconnect
when Redis is back, and join a fresh hub. Not every layer fails loudly (the pub/sub layer
reconnects in the background and drops what was published meanwhile), so the hub also sends
itself a probe every PROBE_EVERY seconds through the layer and treats a probe not back
within PROBE_TIMEOUT as the same failure.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
import weakref

from realtime.protocol import frames_merged

logger = logging.getLogger("anju.realtime")

# An application close code: the websocket library refuses to send the protocol's 1013
# from a server, and a page treats any code but 4401/4403/4404 as "poll, then reconnect".
CLOSE_TRY_AGAIN = 4503
PROBE_EVERY = 2.0
PROBE_TIMEOUT = 3.0


class StreamHub:
    def __init__(self, layer) -> None:
        self.layer = layer
        self.members: dict[str, set] = {}
        self.channel: str | None = None
        self._opened: asyncio.Task | None = None
        self._pump: asyncio.Task | None = None
        self._watch: asyncio.Task | None = None
        self._sender: asyncio.Task | None = None
        self._probe_back = asyncio.Event()
        self._outbox: dict[str, list[str]] = {}  # group → frames not yet sent, in order
        self._wake = asyncio.Event()

    async def _open(self) -> None:
        # The default prefix on purpose: channels-redis receives every process-local channel
        # through one shared list per prefix, and only one prefix is ever read.
        self.channel = await self.layer.new_channel()
        probe = f"hub-probe.{uuid.uuid4().hex}"
        await self.layer.group_add(probe, self.channel)
        loop = asyncio.get_running_loop()
        self._outbox.clear()
        self._pump = loop.create_task(self._receive())
        self._sender = loop.create_task(self._send())
        self._watch = loop.create_task(self._probe(probe))

    async def join(self, group: str, consumer) -> None:
        """Follow `group` for `consumer`. The membership is (re)added on every join, which
        also refreshes it where the layer expires groups. Raises what the layer raises, and
        ConnectionError when the hub's receive ended meanwhile (the socket closes with 4503)."""
        if self._opened is None or (
            self._opened.done() and (self._opened.cancelled() or self._opened.exception())
        ):
            self._opened = asyncio.get_running_loop().create_task(self._open())
        opened = self._opened
        await asyncio.shield(opened)
        await self.layer.group_add(group, self.channel)
        if opened is not self._opened or any(t is None or t.done() for t in self._tasks()):
            # The receive died while this socket was joining: it would never hear a frame.
            raise ConnectionError("the channel layer's receive ended")
        self.members.setdefault(group, set()).add(consumer)

    def _tasks(self) -> tuple:
        return (self._pump, self._sender, self._watch)

    async def leave(self, group: str, consumer) -> None:
        members = self.members.get(group)
        if members is None:
            return
        members.discard(consumer)
        if not members:
            del self.members[group]
            try:
                await self.layer.group_discard(group, self.channel)
            except Exception as exc:  # the layer is away: the membership expires there
                logger.info("hub could not leave %s: %s", group, exc)

    async def _receive(self) -> None:
        try:
            while True:
                message = await self.layer.receive(self.channel)
                if message.get("type") == "hub.probe":
                    self._probe_back.set()
                    continue
                group, text = message.get("group", ""), message.get("text")
                if group in self.members and isinstance(text, str):
                    self._queue(group, text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._lost(exc)

    def _queue(self, group: str, text: str) -> None:
        frames = self._outbox.setdefault(group, [])
        merged = frames_merged(frames[-1], text) if frames else None
        if merged is None:
            frames.append(text)
        else:
            frames[-1] = merged
        self._wake.set()

    async def _send(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            outbox, self._outbox = self._outbox, {}
            for group, frames in outbox.items():
                for text in frames:
                    for consumer in list(self.members.get(group, ())):
                        try:
                            await consumer.send(text_data=text)
                        except Exception:  # a socket closing: its disconnect leaves the group
                            continue

    async def _probe(self, probe: str) -> None:
        try:
            while True:
                await asyncio.sleep(PROBE_EVERY)
                self._probe_back.clear()
                async with asyncio.timeout(PROBE_TIMEOUT):
                    await self.layer.group_send(probe, {"type": "hub.probe", "group": probe})
                    await self._probe_back.wait()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # includes TimeoutError: the probe never came back
            await self._lost(exc or "probe not returned")

    async def _lost(self, exc) -> None:
        logger.warning("hub lost the channel layer, closing its sockets: %r", exc)
        for task in self._tasks():
            if task is not None and task is not asyncio.current_task():
                task.cancel()
        self._outbox.clear()
        sockets = {consumer for members in self.members.values() for consumer in members}
        self.members.clear()
        self._opened = None
        for consumer in sockets:
            try:
                await consumer.close(code=CLOSE_TRY_AGAIN)
            except Exception:
                continue


_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def hub_for(layer) -> StreamHub:
    """The hub of this event loop (one per daphne process) for `layer`."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None or hub.layer is not layer:
        hub = _hubs[loop] = StreamHub(layer)
    return hub
