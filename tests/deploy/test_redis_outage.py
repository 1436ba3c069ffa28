"""Redis stopped and started again during a session. The database is the truth: with Redis
down, confirmations still succeed and the pages' polling fallback (catch-up and snapshot over
HTTP) answers; the relay keeps the events in the outbox; when Redis returns, the relay
publishes the backlog and a page that opens its socket again hears new events live.

The Redis stopped here is the stack's PRIVATE redis-server (tests/deploy/conftest.py) on a
port of its own; the shared Redis is never touched. Everything goes through nginx."""

from __future__ import annotations

import pytest

from events.models import Event
from selection.models import Session
from tests.deploy.live import (
    aio,
    catch_up,
    confirm,
    follow,
    follow_retrying,
    get_json,
    http_client,
    live_world,
    nothing_lost,
    units_taken,
    until_db,
    until_status,
)

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.nginx,
    pytest.mark.django_db(transaction=True),
]


def _unit_taken_event(stream: str, unit_id: int) -> Event | None:
    return Event.objects.filter(
        stream=stream, type="selection.unit_taken", data__unit__id=unit_id
    ).first()


async def test_confirms_survive_a_redis_outage_and_live_updates_resume(stack):
    # Families: A (0) confirms before the outage; B (1) watches; C (2) confirms while Redis
    # is down; D (3) after it is back.
    world = await aio(live_world)(4)
    stream, b = world.round_stream, world.cookies[1]
    ngx = stack.nginx.url
    path = f"/ws/selection/{world.round_id}/"

    # The clock opens the session first (its event on the round stream is then behind us).
    await until_db(
        lambda: Session.objects.get(pk=world.session_id).status == Session.Status.OPEN,
        timeout=10,
        what="the clock process to open the session",
    )
    before = await follow(stack.ws(path), cookie=b, origin=ngx)
    async with http_client() as http:
        response = await confirm(http, ngx, world, 0)
        assert response.status_code == 201, response.text
        await before.hears_units(stream, {world.units[0]})

        stack.redis.stop()
        # Monitoring sees it (and nginx does not take the processes out for that 503).
        await until_status(http, f"{ngx}/healthz", 503, timeout=10)
        # The socket drops, so the page knows to poll; and no new socket says hello.
        await before.dropped()
        assert not await _socket_opens(stack.ws(path), cookie=b, origin=ngx)

        # Confirmations still succeed: the database is the truth.
        response = await confirm(http, ngx, world, 2)
        assert response.status_code == 201, response.text
        # The log's sequencer announces it (database only: it needs no Redis).
        await until_db(
            lambda: _unit_taken_event(stream, world.units[2]) is not None,
            timeout=10,
            what="the sequencer to announce the unit taken during the outage",
        )
        outage_event = await aio(_unit_taken_event)(stream, world.units[2])

        # The polling fallback answers: catch-up from the last seq seen, and the snapshot.
        missed = await catch_up(http, ngx, stream, before.last_seq(stream), b)
        assert outage_event.seq in [e["seq"] for e in missed]
        assert world.units[2] in units_taken(missed)
        snapshot = await get_json(http, f"{ngx}/api/v1/selection/{world.round_id}/live/", b)
        assert snapshot["heads"][stream] >= missed[-1]["seq"]
        assert snapshot["phase"] and snapshot["session"]["id"] == world.session_id

        # The relay could not publish it; it waits in the outbox. Redis returns (same port,
        # empty) and the relay publishes the backlog.
        assert await aio(lambda: Event.objects.get(pk=outage_event.pk).published_at)() is None
        stack.redis.start()
        await until_status(http, f"{ngx}/healthz", 200, timeout=15)
        await until_db(
            lambda: Event.objects.get(pk=outage_event.pk).published_at is not None,
            timeout=10,
            what="the relay to publish the backlog",
        )

        # The page opens its socket again and is live: D's confirmation arrives.
        after = await follow_retrying(stack.ws(path), cookie=b, origin=ngx, timeout=15)
        response = await confirm(http, ngx, world, 3)
        assert response.status_code == 201, response.text
        await after.hears_units(stream, {world.units[3]})
        await after.close()

    await aio(nothing_lost)(world, [0, 2, 3])
    assert stack.relay.alive and stack.clock.alive and any(d.alive for d in stack.daphnes)


async def _socket_opens(url: str, **kwargs) -> bool:
    try:
        follower = await follow(url, **kwargs)
    except Exception:  # refused handshake (today: 500), or closed before hello
        return False
    await follower.close()
    return True
