"""Several processes, as deployed: nginx (the shipped deploy/nginx/anju.conf) in front of two
daphne processes, daphne 1 heading the HTTP pool and daphne 2 the socket pool, each the
other's backup; the event relay and the selection clock as processes of their own, one Redis
and one PostgreSQL.

- An event caused by a confirmation on daphne 1 reaches sockets on daphne 2.
- daphne 1 is killed (SIGKILL) while confirmations are under way through nginx: every one of
  them succeeds (nginx passes them to daphne 2; a page repeats a failed request with the same
  idempotency key) and is in the database and in the verified ledger; daphne 1's socket
  drops, those of daphne 2 hear everything; the dropped page reconnects through nginx,
  catches up over HTTP and is live again.
"""

from __future__ import annotations

import asyncio

import pytest

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
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.nginx]


async def test_static_files_come_from_the_collected_dir_through_nginx(stack):
    async with http_client() as http:
        response = await http.get(f"{stack.nginx.url}/static/h5/app.css")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/css")
        assert response.text == (stack.static_root / "h5" / "app.css").read_text()
        assert "max-age=3600" in response.headers["cache-control"]  # nginx's, not whitenoise's
        missing = await http.get(f"{stack.nginx.url}/static/h5/no-such-file.css")
        assert missing.status_code == 404


async def test_nginx_sends_hashed_static_files_gzipped_and_immutable(stack):
    # Issue 16 item 1: the pages link hashed names (core/staticfiles.py); nginx sends the
    # .gz that collectstatic wrote (gzip_static) and caches them for a year.
    import json

    manifest = json.loads((stack.static_root / "staticfiles.json").read_text())["paths"]
    async with http_client() as http:
        for name in ("h5/app.css", "h5/lib/api.js", "vendor/weui/weui.min.css"):
            url = f"{stack.nginx.url}/static/{manifest[name]}"
            response = await http.get(url, headers={"Accept-Encoding": "gzip"})
            assert response.status_code == 200, url
            assert response.headers["content-encoding"] == "gzip", url
            assert "Accept-Encoding" in response.headers["vary"], url
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert response.content == (stack.static_root / manifest[name]).read_bytes()
            plain = await http.get(url, headers={"Accept-Encoding": "identity"})
            assert "content-encoding" not in plain.headers
            assert plain.content == response.content


@pytest.mark.django_db(transaction=True)
async def test_events_cross_processes_and_a_killed_daphne_loses_no_confirmation(stack):
    # Families: A (0) confirms first; B (1) watches; C, D, E (2-4) confirm while daphne 1 is
    # killed; F (5) confirms after B's page reconnected.
    world = await aio(live_world)(6)
    stream, b = world.round_stream, world.cookies[1]
    d1, d2, ngx = stack.url(0), stack.url(1), stack.nginx.url
    path = f"/ws/selection/{world.round_id}/"
    assert all(p.alive for p in stack.processes), "the stack lost a process before this test"

    # The clock, a process of its own, opens the session on its next tick.
    await until_db(
        lambda: Session.objects.get(pk=world.session_id).status == Session.Status.OPEN,
        timeout=10,
        what="the clock process to open the session",
    )

    # B's pages: one straight on each daphne, one through nginx (the socket pool: daphne 2).
    on_d1 = await follow(stack.ws(path, 0), cookie=b, origin=d1)
    on_d2 = await follow(stack.ws(path, 1), cookie=b, origin=d2)
    via = await follow(stack.ws(path), cookie=b, origin=ngx)

    async with http_client() as http:
        # A confirms on daphne 1; the relay process publishes; daphne 2's sockets hear it.
        response = await confirm(http, d1, world, 0)
        assert response.status_code == 201, response.text
        for follower in (on_d1, on_d2, via):
            await follower.hears_units(stream, {world.units[0]})

        # Kill daphne 1, the HTTP pool's process, while three confirmations go through nginx:
        # the HTTP pool falls back to its backup, daphne 2.
        during = [asyncio.create_task(confirm(http, ngx, world, i)) for i in (2, 3, 4)]
        await asyncio.to_thread(stack.daphnes[0].kill)
        responses = await asyncio.gather(*during)
        # 201, or 200 when a first attempt was committed before its answer was lost.
        assert [r.status_code in (200, 201) for r in responses] == [True] * 3, [
            (r.status_code, r.text[:200]) for r in responses
        ]
        outage_units = {world.units[i] for i in (2, 3, 4)}

        # daphne 1's socket drops; the sockets on daphne 2 hear every confirmation, live.
        await on_d1.dropped()
        assert not on_d2.closed and not via.closed
        for follower in (on_d2, via):
            await follower.hears_units(stream, outage_units)

        # The dropped page reconnects through nginx and resyncs: catch-up from the last seq
        # it had, a snapshot.
        last = on_d1.last_seq(stream)
        again = await follow_retrying(stack.ws(path), cookie=b, origin=ngx, timeout=10)
        missed = await catch_up(http, ngx, stream, last, b)
        assert [e["seq"] for e in missed] == list(range(last + 1, last + 1 + len(missed)))
        # What it heard before it dropped and what it caught up: every confirmation.
        assert outage_units <= on_d1.units_taken(stream) | units_taken(missed)
        snapshot = await get_json(http, f"{ngx}/api/v1/selection/{world.round_id}/live/", b)
        assert snapshot["heads"][stream] >= max([last, *(e["seq"] for e in missed)])

        # Live again: F's confirmation (through nginx, now on daphne 2) reaches every page.
        response = await confirm(http, ngx, world, 5)
        assert response.status_code == 201, response.text
        for follower in (again, on_d2, via):
            await follower.hears_units(stream, {world.units[5]})

    for follower in (again, on_d2, via):
        await follower.close()

    # Nothing lost: one allocation per confirming family, on its unit, in the ledger too.
    await aio(nothing_lost)(world, [0, 2, 3, 4, 5])

    # The rest of the stack is still serving.
    assert stack.daphnes[1].alive and stack.relay.alive and stack.clock.alive
