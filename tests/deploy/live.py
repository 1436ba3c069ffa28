"""What the deployment tests do as a page would: a selection round open now, logged-in
families, confirmations over HTTP, selection sockets that record every frame, catch-up over
HTTP. Waiting is polling a condition with a deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import httpx
from channels.db import database_sync_to_async
from django.db import transaction
from django.test import Client
from django.utils import timezone
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from accounts.services import applicant_user_ensure
from selection import carts
from selection.models import Allocation, LedgerEntry, Round, Session
from tests.factories import log_ok
from tests.worlds import enter, make_world

aio = database_sync_to_async
# The clock, the relay and the daphne processes change the database and their answers from
# other processes: nothing in this one can be awaited, so those conditions are polled against
# a deadline. A socket's own frames and close are awaited (Follower.wait_for).
POLL_SECONDS = 0.1


async def until_db(condition: Callable[[], object], *, timeout: float, what: str) -> None:
    """Poll an ORM condition (run on a worker thread) until it holds."""
    deadline = time.monotonic() + timeout
    while not await aio(condition)():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(POLL_SECONDS)


async def until_status(http: httpx.AsyncClient, url: str, status: int, *, timeout: float) -> None:
    async def answers() -> int | None:
        try:
            return (await http.get(url)).status_code
        except httpx.TransportError:
            return None

    deadline = time.monotonic() + timeout
    while (last := await answers()) != status:
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} answered {last}, not {status}, for {timeout} s")
        await asyncio.sleep(POLL_SECONDS)


@dataclass(frozen=True)
class LiveWorld:
    """A round whose one session is open now; family i holds unit i in its formal cart and
    has entered formal selection. `cookies[i]` is family i's logged-in browser."""

    round_id: int
    session_id: int
    families: list[int]
    units: list[int]
    cookies: list[str]
    csrf: str

    @property
    def round_stream(self) -> str:
        return f"round.{self.round_id}"


def browser_cookie(family, csrf: str) -> str:
    client = Client()
    client.force_login(applicant_user_ensure(applicant=family.main_applicant).user)
    return f"sessionid={client.cookies['sessionid'].value}; csrftoken={csrf}"


def live_world(families: int) -> LiveWorld:
    """Committed (the test is transactional), so the server processes see it; in ONE
    transaction, so that the clock process never sees make_world's session at its original
    (past) times, which it would close at once."""
    with transaction.atomic():
        return _live_world(families)


def _live_world(families: int) -> LiveWorld:
    world = make_world(families=families, units=families, sessions=1, per_session=families)
    now = timezone.now()
    Round.objects.filter(pk=world.round.pk).update(preselect_starts_at=now - timedelta(hours=1))
    session = world.sessions[0]
    Session.objects.filter(pk=session.pk).update(
        starts_at=now - timedelta(seconds=5), ends_at=now + timedelta(minutes=10)
    )
    session.refresh_from_db()
    world.round.refresh_from_db()
    for family, unit in zip(world.families, world.units, strict=True):
        enter(family, world.round, session, now)
        carts.cart_add(
            family=family, round_id=world.round.pk, kind="formal", unit_id=unit.pk, now=now
        )
    csrf = secrets.token_hex(16)  # 32 characters: a valid CSRF secret, cookie and header
    return LiveWorld(
        round_id=world.round.pk,
        session_id=session.pk,
        families=[f.pk for f in world.families],
        units=[u.pk for u in world.units],
        cookies=[browser_cookie(f, csrf) for f in world.families],
        csrf=csrf,
    )


def nothing_lost(world: LiveWorld, confirmed: list[int]) -> None:
    """Families `confirmed` hold their units, once each, in the allocations and in the
    log, and the log verifies (sequenced, signed, every allocation's entry)."""
    expected = {world.families[i]: world.units[i] for i in confirmed}
    allocations = dict(
        Allocation.objects.filter(round_id=world.round_id).values_list("family_id", "unit_id")
    )
    assert allocations == expected
    entries = LedgerEntry.objects.filter(round_id=world.round_id, kind="confirm")
    ledger = [(e.payload["family"], e.payload["unit"]) for e in entries]
    assert sorted(ledger) == sorted(expected.items())
    log_ok()


def http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=15, trust_env=False)


async def confirm(
    http: httpx.AsyncClient, base: str, world: LiveWorld, i: int, *, deadline: float = 20
) -> httpx.Response:
    """Family i confirms unit i at `base`, as the page does: a gateway error or a dropped
    connection is repeated with the SAME idempotency key until an answer comes."""
    url = f"{base}/api/v1/selection/{world.round_id}/confirm/"
    body = {"unit_id": world.units[i], "idempotency_key": f"deploy-{world.families[i]:08d}"}
    headers = {"Cookie": world.cookies[i], "X-CSRFToken": world.csrf, "Origin": base}
    give_up = time.monotonic() + deadline
    while True:
        try:
            response = await http.post(url, json=body, headers=headers)
            if response.status_code not in (502, 503, 504):
                return response
        except httpx.TransportError:
            pass
        if time.monotonic() > give_up:
            raise AssertionError(f"confirm of family {i} at {base} got no answer in {deadline} s")
        await asyncio.sleep(0.05)  # the page's retry back-off


async def get_json(http: httpx.AsyncClient, url: str, cookie: str) -> dict:
    response = await http.get(url, headers={"Cookie": cookie})
    assert response.status_code == 200, (url, response.status_code, response.text[:500])
    return response.json()


async def catch_up(
    http: httpx.AsyncClient, base: str, stream: str, after: int, cookie: str
) -> list[dict]:
    """The page's rule 2: fetch a stream's events after `after`, repeating while `more`."""
    events: list[dict] = []
    while True:
        page = await get_json(http, f"{base}/api/v1/streams/{stream}/events/?after={after}", cookie)
        events += page["events"]
        if not page["more"] or not page["events"]:
            return events
        after = page["events"][-1]["seq"]


def units_taken(events: list[dict]) -> set[int]:
    return {e["data"]["unit"]["id"] for e in events if e["type"] == "selection.unit_taken"}


class Follower:
    """A selection socket that records every frame it receives, on a background task."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.frames: list[dict] = []
        self.closed = False
        self.close_code: int | None = None
        self._changed = asyncio.Event()  # set by every frame and by the close
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                self.frames.append(json.loads(text))
                self._changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self.close_code = self.ws.close_code
            self._changed.set()

    async def wait_for(self, condition: Callable[[], object], *, timeout: float, what: str):
        """Until `condition()` holds, checked again whenever a frame arrives or the socket
        closes; fail after `timeout` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}") from None

    async def dropped(self, *, timeout: float = 10) -> None:
        await self.wait_for(lambda: self.closed, timeout=timeout, what="the socket to drop")

    def events(self, stream: str) -> list[dict]:
        return [
            event
            for frame in self.frames
            if frame.get("type") == "events" and frame["stream"] == stream
            for event in frame["events"]
        ]

    def last_seq(self, stream: str) -> int:
        return max((e["seq"] for e in self.events(stream)), default=0)

    def units_taken(self, stream: str) -> set[int]:
        return units_taken(self.events(stream))

    async def hears_units(self, stream: str, units: set[int], *, timeout: float = 10) -> None:
        await self.wait_for(
            lambda: units <= self.units_taken(stream) or self.closed,
            timeout=timeout,
            what=f"unit_taken for {sorted(units)} on {stream}",
        )
        assert units <= self.units_taken(stream), f"socket closed ({self.close_code}) first"

    async def close(self) -> None:
        await self.ws.close()
        await self._reader


async def follow(ws_url: str, *, cookie: str, origin: str) -> Follower:
    """Open a socket and wait for its hello."""
    ws = await connect(
        ws_url,
        origin=origin,
        additional_headers={"Cookie": cookie},
        proxy=None,
        open_timeout=5,
        ping_interval=None,
    )
    follower = Follower(ws)
    await follower.wait_for(
        lambda: follower.frames or follower.closed, timeout=5, what=f"hello on {ws_url}"
    )
    assert follower.frames and follower.frames[0]["type"] == "hello", (
        follower.frames,
        follower.close_code,
    )
    return follower


async def follow_retrying(ws_url: str, *, cookie: str, origin: str, timeout: float) -> Follower:
    """The page's reconnect: try again (with a short back-off) until a socket says hello."""
    deadline = time.monotonic() + timeout
    failures: list[str] = []
    while True:
        try:
            return await follow(ws_url, cookie=cookie, origin=origin)
        except (OSError, TimeoutError, WebSocketException, AssertionError) as exc:
            failures.append(repr(exc)[:200])
        if time.monotonic() > deadline:
            raise AssertionError(f"no socket at {ws_url} within {timeout} s: {failures[-3:]}")
        await asyncio.sleep(0.1)
