"""Websocket consumers. Thin: authenticate, join stream groups, forward the relay's frames,
answer clock pings. Rules live in the domain apps; what a socket may follow lives in
realtime.access; a socket bound to a login is closed the moment that login ends
(realtime.device_notices). Protocol: docs/REALTIME.md."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from redis.exceptions import RedisError

from accounts.services import device_session_status
from core import jsonsafe
from events.services import stream_heads
from events.streams import qr_stream, round_stream
from realtime import access
from realtime.device_notices import ENDED_CLOSE, device_group, ended_close
from realtime.hub import hub_for
from realtime.protocol import group_name, server_time_ms
from realtime.relay import relay_ensure_in_process

logger = logging.getLogger("anju.realtime")

RATE_PER_SECOND = 5.0
RATE_BURST = 10.0
ABUSE_LIMIT = 50  # frames refused for rate before the socket is closed

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_RATE = 4429
CLOSE_EXPIRED = 4410  # the QR ticket the socket follows has expired
CLOSE_TRY_AGAIN = 1013


# Codes of a login that ended (4409 replaced, 4411 logged out): a socket that connects with
# such a login is accepted and closed at once, since a browser never sees the code of a
# socket refused at the handshake, and the page must learn why.
ENDED_CODES = {code for code, _ in ENDED_CLOSE.values()}


class StreamConsumer(AsyncWebsocketConsumer):
    """Follows a set of streams: forwards their frames, answers pings, refuses junk politely.

    A consumer that is `login_bound` also joins its login's device group before it checks
    the login (so that an end in between is not missed) and is closed with the end's code
    when that login ends (`device_ended`)."""

    streams: list[str]
    login_bound = False

    async def connect(self):
        self.streams = []
        self.device_group = None
        self.opened = False
        # The hub's frames that come between joining and the hello wait for it (see hello).
        self.before_hello: list[str] | None = []
        self.tokens, self.refused = RATE_BURST, 0
        self.last_refill = time.monotonic()
        try:
            await self.device_join()
        except (RedisError, OSError) as exc:
            logger.warning("channel layer unavailable at connect: %s", exc)
            await self.close(code=CLOSE_TRY_AGAIN)
            return
        streams, close_code = await self.authorize()
        if streams is None:
            await self.device_leave()
            if close_code in ENDED_CODES:
                await self.accept()
                await self.close(code=close_code, reason=_reason(close_code))
            else:
                await self.close(code=close_code)
            return
        relay_ensure_in_process()
        hub = hub_for(self.channel_layer)
        self.streams = streams  # left on disconnect, however far the joins got
        try:
            for stream in streams:
                await hub.join(group_name(stream), self)
        except (RedisError, OSError) as exc:
            # The layer (Redis) is down: the page polls over HTTP until it can reconnect.
            logger.warning("channel layer unavailable at connect: %s", exc)
            await self.close(code=CLOSE_TRY_AGAIN)
            return
        heads = await database_sync_to_async(self.heads_after_join)(streams) if streams else {}
        if heads is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.accept()
        self.opened = True
        await self.hello(heads)

    def heads_after_join(self, streams: list[str]) -> dict[str, int] | None:
        """The heads of the streams just joined (one database call, in a worker thread), or
        None when what the socket follows turns out not to exist."""
        return stream_heads(streams=streams)

    async def hello(self, heads: dict[str, int] | None = None) -> None:
        """The streams this socket follows and their heads, read after it joined them
        (docs/REALTIME.md): an event above a head comes on this socket; one at or below it was
        committed before, and a page whose snapshot is older fetches it over HTTP. So a page
        may read its first snapshot beside the socket's opening, not after it. A resync reads
        the heads again."""
        streams = self.streams
        if heads is None:
            heads = await database_sync_to_async(stream_heads)(streams=streams) if streams else {}
        hello = {
            "type": "hello",
            "streams": streams,
            "heads": heads,
            "server_time": server_time_ms(),
        }
        held = self.before_hello
        if held is None:  # a resync: frames flow as they come
            await self.send_json(hello)
            return
        # The first hello goes first: frames the hub handed over while the heads were read
        # follow it in order (new ones join the same list until it is empty).
        await super().send(text_data=_text(hello))
        while held:
            await super().send(text_data=held.pop(0))
        self.before_hello = None

    async def send(self, text_data=None, bytes_data=None, close=False):
        held = getattr(self, "before_hello", None)
        if held is not None and text_data is not None and not close:
            held.append(text_data)
            return
        await super().send(text_data=text_data, bytes_data=bytes_data, close=close)

    async def authorize(self) -> tuple[list[str] | None, int]:
        """(streams to follow, 0) or (None, close code). Subclasses decide; none may follow."""
        return None, CLOSE_FORBIDDEN

    async def device_join(self) -> None:
        """Join the device group of the login this socket came with (its session), if it
        is bound to one. Raises what the layer raises."""
        session = self.scope.get("session")
        key = session.session_key if self.login_bound and session is not None else None
        if key:
            group = device_group(key)
            await self.channel_layer.group_add(group, self.channel_name)
            self.device_group = group

    async def device_leave(self) -> None:
        group, self.device_group = self.device_group, None
        if group is None:
            return
        try:
            await self.channel_layer.group_discard(group, self.channel_name)
        except Exception as exc:  # the layer is away: the membership goes with it
            logger.info("could not leave %s: %s", group, exc)

    async def device_ended(self, message):
        """The login of this socket ended (realtime.device_notices): close at once."""
        if not self.opened:
            return  # refused or closing already
        self.opened = False
        code, reason = ended_close(message.get("reason"))
        await self.close(code=code, reason=reason)

    async def disconnect(self, code):
        self.opened = False
        await self.device_leave()
        hub = hub_for(self.channel_layer)
        for stream in getattr(self, "streams", []):
            await hub.leave(group_name(stream), self)

    async def send_json(self, content):
        await self.send(text_data=_text(content))

    def _allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(RATE_BURST, self.tokens + (now - self.last_refill) * RATE_PER_SECOND)
        self.last_refill = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    async def receive(self, text_data=None, bytes_data=None):
        if not self._allow():
            self.refused += 1
            if self.refused >= ABUSE_LIMIT:
                await self.close(code=CLOSE_RATE)
                return
            await self.send_json(
                {"type": "error", "code": "rate_limited", "message": "消息过于频繁"}
            )
            return
        try:
            content = jsonsafe.loads(text_data or "")  # nesting bounded, as for HTTP bodies
        except (ValueError, UnicodeDecodeError):
            content = None
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            t0 = content.get("t0")
            await self.send_json(
                {
                    "type": "pong",
                    "t0": t0 if isinstance(t0, (int, float)) else None,
                    "server_time": server_time_ms(),
                }
            )
        elif kind == "resync":
            await self.hello()
        else:
            await self.send_json(
                {"type": "error", "code": "bad_frame", "message": "无法识别的消息"}
            )


def _text(content) -> str:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))


def _reason(code: int) -> str:
    return next((reason for c, reason in ENDED_CLOSE.values() if c == code), "")


def _login_ended_code(session) -> int | None:
    """The close code when the login of this socket's session has ended (replaced by
    another device, logged out), None while it is the account's active device or when the
    session is not an applicant's device login at all. Runs in a worker thread."""
    if session is None or not session.get("anju_device"):
        return None
    reason = device_session_status(session_key=session.session_key)
    if reason is None:
        return None
    if reason == "unknown":
        return CLOSE_UNAUTHENTICATED
    return ended_close(reason)[0]


class SelectionConsumer(StreamConsumer):
    """A family's selection socket for a round: the public round stream (unit takeovers,
    phases), its sessions' streams (opened, last 30 s, closed) and its own family stream
    (its result). Never another family's data. Closed with 4409 the moment the login is
    replaced by one on another device (4411 logged out)."""

    login_bound = True

    async def authorize(self):
        return await database_sync_to_async(self._authorize)()

    def _authorize(self):
        user = self.scope.get("user")
        applicant = access.applicant_for(user)
        if applicant is None or not hasattr(applicant, "family"):
            return None, CLOSE_UNAUTHENTICATED
        ended = _login_ended_code(self.scope.get("session"))
        if ended is not None:
            return None, ended
        round_id = self.scope["url_route"]["kwargs"]["round_id"]
        streams = access.family_streams(family=applicant.family, round_id=round_id)
        return (streams, 0) if streams else (None, CLOSE_NOT_FOUND)


class AccountConsumer(StreamConsumer):
    """The account socket of every logged-in page (h5/static/h5/account.js): it follows no
    stream; it is there to be closed the moment the page's login ends, with 4409 (replaced
    by a login on another device) or 4411 (logged out), so that the page says so at once,
    whether or not it has a selection socket. 4401 when the page is not an applicant's
    device login. Answers pings like the others."""

    login_bound = True

    async def authorize(self):
        return await database_sync_to_async(self._authorize)()

    def _authorize(self):
        session = self.scope.get("session")
        if access.applicant_for(self.scope.get("user")) is None or session is None:
            return None, CLOSE_UNAUTHENTICATED
        if not session.get("anju_device"):
            return None, CLOSE_UNAUTHENTICATED  # not a device login: nothing would end it
        ended = _login_ended_code(session)
        return (None, ended) if ended is not None else ([], 0)


class BroadcastConsumer(StreamConsumer):
    """The public unit broadcast of a round (房源信息播报): units and counts, no families."""

    async def authorize(self):
        # The stream is the URL's. Whether its round exists is read with its head, after the
        # join (heads_after_join): one query a socket, which is what a crowd opening the board
        # at once queues on (docs/BENCHMARKS.md, "Real-time fan-out").
        return [round_stream(self.scope["url_route"]["kwargs"]["round_id"])], 0

    def heads_after_join(self, streams):
        head = access.round_head(self.scope["url_route"]["kwargs"]["round_id"])
        return None if head is None else {streams[0]: head}


class QrProgressConsumer(StreamConsumer):
    """The desktop page that shows a QR code hears the phone's progress on that ticket, with
    the progress token it was given (see realtime.access.qr_stream_token), until the ticket
    expires: the socket is closed then (CLOSE_EXPIRED) and the page issues a new code."""

    async def authorize(self):
        found = access.qr_token_read(self.scope["url_route"]["kwargs"]["token"])
        if found is None:
            return None, CLOSE_FORBIDDEN
        ticket, left = found
        loop = asyncio.get_running_loop()
        self.expiry = loop.call_later(left, lambda: loop.create_task(self.close(CLOSE_EXPIRED)))
        return [qr_stream(ticket)], 0

    async def disconnect(self, code):
        expiry = getattr(self, "expiry", None)
        if expiry is not None:
            expiry.cancel()
        await super().disconnect(code)
