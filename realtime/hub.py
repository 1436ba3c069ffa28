"""One channel-layer membership per stream per server process, not one per socket.

With 2,000 sockets following one round, the relay's frame used to be delivered by the layer
2,000 times into the same process (one receive and one dispatch per socket). The hub joins
each stream's group once, with a channel of its own, receives each frame once and hands it
to the local sockets following that stream (docs/BENCHMARKS.md: a daphne's CPU per burst
fell several-fold). Delivery stays at most once: a page that misses a frame notices the gap
by the relay's heads and catches up over HTTP.

If receiving from the layer fails (Redis away), every socket of the hub is closed with 1013
(try again), as a socket's own receive loop would have ended it: the pages poll, reconnect
when Redis is back, and join a fresh hub.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

logger = logging.getLogger("anju.realtime")

CLOSE_TRY_AGAIN = 1013


class StreamHub:
    def __init__(self, layer) -> None:
        self.layer = layer
        self.members: dict[str, set] = {}
        self.channel: str | None = None
        self._opened: asyncio.Task | None = None
        self._pump: asyncio.Task | None = None

    async def _open(self) -> None:
        # The default prefix on purpose: channels-redis receives every process-local channel
        # through one shared list per prefix, and only one prefix is ever read.
        self.channel = await self.layer.new_channel()
        self._pump = asyncio.get_running_loop().create_task(self._receive())

    async def join(self, group: str, consumer) -> None:
        """Follow `group` for `consumer`. The membership is (re)added on every join, which
        also refreshes it where the layer expires groups. Raises what the layer raises, and
        ConnectionError when the hub's receive ended meanwhile (the socket closes with 1013)."""
        if self._opened is None or (
            self._opened.done() and (self._opened.cancelled() or self._opened.exception())
        ):
            self._opened = asyncio.get_running_loop().create_task(self._open())
        opened = self._opened
        await asyncio.shield(opened)
        await self.layer.group_add(group, self.channel)
        if opened is not self._opened or self._pump is None or self._pump.done():
            # The receive died while this socket was joining: it would never hear a frame.
            raise ConnectionError("the channel layer's receive ended")
        self.members.setdefault(group, set()).add(consumer)

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
                text = message.get("text")
                for consumer in list(self.members.get(message.get("group", ""), ())):
                    try:
                        await consumer.send(text_data=text)
                    except Exception:  # a socket closing: its disconnect leaves the group
                        continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning("hub lost the channel layer, closing its sockets: %s", exc)
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
