"""The outbox: events recorded in the change's transaction, published only after commit,
coalesced per stream per tick; heads heartbeat; HTTP catch-up after a gap."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone
from rest_framework import serializers

from events.models import Event
from events.schemas import EVENT_TYPES, EventType, Strict
from events.services import event_record, events_record, stream_heads
from realtime.access import qr_stream_token
from realtime.relay import heads_once, relay_once
from tests.realtime.conftest import aio, connected
from tests.worlds import family_client, make_world

pytestmark = pytest.mark.django_db(transaction=True)


class PingPayload(Strict):
    """The relay tests' own event: any stream, an optional counter."""

    i = serializers.IntegerField(required=False)


@pytest.fixture(autouse=True)
def ping_event(monkeypatch):
    """Declare `test.ping` for these tests only (events are checked as they are recorded)."""
    monkeypatch.setitem(EVENT_TYPES, "test.ping", EventType(PingPayload, "any", "relay tests"))


def record(stream, n, kind="test.ping"):
    with transaction.atomic():
        events_record(events=[(stream, kind, {"i": i}) for i in range(n)], now=timezone.now())


def test_a_rolled_back_change_records_and_publishes_nothing():
    world = make_world(families=1, units=1, sessions=1)
    stream = f"round.{world.round.pk}"
    with pytest.raises(RuntimeError), transaction.atomic():
        event_record(stream=stream, type="test.ping", data={}, now=timezone.now())
        raise RuntimeError
    assert not Event.objects.exists() and stream_heads(streams=[stream]) == {stream: 0}
    assert relay_once() == 0


def test_recording_needs_a_transaction():
    with pytest.raises(AssertionError):
        event_record(stream="round.1", type="test.ping", data={}, now=timezone.now())


def test_seqs_are_contiguous_per_stream():
    record("round.1", 3)
    record("round.2", 2)
    record("round.1", 2)
    assert list(
        Event.objects.filter(stream="round.1").order_by("seq").values_list("seq", flat=True)
    ) == [1, 2, 3, 4, 5]
    assert stream_heads(streams=["round.1", "round.2", "round.3"]) == {
        "round.1": 5,
        "round.2": 2,
        "round.3": 0,
    }


async def test_a_burst_reaches_a_watcher_as_one_frame_per_tick(flushed_layer):
    world = await aio(make_world)(families=1, units=1, sessions=1)
    stream = f"round.{world.round.pk}"
    ws, _ = await connected(f"/ws/broadcast/{world.round.pk}/")
    for _ in range(50):  # 50 separate commits within one tick
        await aio(record)(stream, 1)
    assert await aio(relay_once)() == 50
    frame = await ws.receive_json_from(timeout=5)
    assert (frame["from"], frame["to"], len(frame["events"])) == (1, 50, 50)
    assert [e["seq"] for e in frame["events"]] == list(range(1, 51))
    assert await ws.receive_nothing(timeout=0.3)
    assert await aio(relay_once)() == 0  # published once
    await ws.disconnect()


async def test_heads_heartbeat_tells_a_watcher_what_it_missed(flushed_layer):
    world = await aio(make_world)(families=1, units=1, sessions=1)
    stream = f"round.{world.round.pk}"
    await aio(record)(stream, 3)
    await aio(relay_once)()  # published while the watcher was away
    ws, _ = await connected(f"/ws/broadcast/{world.round.pk}/")
    assert await aio(heads_once)() >= 1
    frame = await ws.receive_json_from(timeout=5)
    assert frame == {"type": "heads", "streams": {stream: 3}, "server_time": frame["server_time"]}
    await ws.disconnect()


def test_http_catch_up_after_a_gap():
    world = make_world(families=1, units=1, sessions=1)
    stream = f"round.{world.round.pk}"
    record(stream, 7)
    client = Client()
    body = client.get(f"/api/v1/streams/{stream}/events/?after=4").json()
    assert body["last_seq"] == 7 and [e["seq"] for e in body["events"]] == [5, 6, 7]
    assert body["more"] is False
    assert client.get(f"/api/v1/streams/{stream}/events/?after=7").json()["events"] == []


@pytest.mark.parametrize("after", ["", "-1", "x"])
def test_catch_up_needs_a_valid_after(after, client):
    world = make_world(families=1, units=1, sessions=1)
    response = client.get(f"/api/v1/streams/round.{world.round.pk}/events/?after={after}")
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_input"


def test_catch_up_access_rules():
    world = make_world(families=2, units=1, sessions=1, per_session=2)
    a, b = world.families
    s1 = world.sessions[0]
    for stream in (f"family.{a.pk}", f"session.{s1.pk}", "qr.T9", "round.999999", "family.x"):
        record(stream, 1)
    anonymous, as_a, as_b = Client(), Client(), Client()
    from accounts.services import applicant_user_ensure

    as_a.force_login(applicant_user_ensure(applicant=a.main_applicant).user)
    as_b.force_login(applicant_user_ensure(applicant=b.main_applicant).user)

    def status(client, stream, token=""):
        suffix = f"&token={token}" if token else ""
        return client.get(f"/api/v1/streams/{stream}/events/?after=0{suffix}").status_code

    assert status(anonymous, f"round.{world.round.pk}") == 200
    assert status(anonymous, "round.999999") == 404
    assert status(anonymous, f"family.{a.pk}") == 404
    assert status(as_a, f"family.{a.pk}") == 200
    assert status(as_b, f"family.{a.pk}") == 404  # another family's stream looks like none
    assert status(as_b, f"session.{s1.pk}") == 200
    assert status(anonymous, f"session.{s1.pk}") == 404
    assert status(as_a, "nonsense") == 404 and status(as_a, "family.x") == 404
    token = qr_stream_token(ticket_id="T9", expires_at=timezone.now() + timedelta(hours=1))
    assert status(anonymous, "qr.T9", token) == 200  # the desktop may have been logged out
    assert status(as_a, "qr.T9") == 404  # but the token is needed
    assert status(as_a, "qr.T8", token) == 404  # and only for its own ticket


def test_live_snapshot_reads_heads_first_and_is_the_familys_own(world):
    from accounts.services import applicant_user_ensure

    a = world.families[0]
    record(f"round.{world.round.pk}", 2)
    client = Client()
    client.force_login(applicant_user_ensure(applicant=a.main_applicant).user)
    body = client.get(f"/api/v1/selection/{world.round.pk}/live/").json()
    assert body["heads"][f"round.{world.round.pk}"] == 2
    assert set(body["heads"]) == {
        f"round.{world.round.pk}",
        f"family.{a.pk}",
        f"session.{world.sessions[0].pk}",
    }
    assert set(body["carts"]) == {"pre", "formal"}
    other = make_world(families=1, units=1, sessions=1)
    response = client.get(f"/api/v1/selection/{other.round.pk}/live/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "round_not_found"
    assert Client().get(f"/api/v1/selection/{world.round.pk}/live/").status_code == 401


def test_live_snapshot_carries_the_unit_list_only_when_asked(world):
    """?units=all / available: the list exactly as GET …/units/ answers it (with each
    unit's eligibility), so a selection page's first snapshot is its list's read too."""
    from selection.models import Unit

    client = family_client(world.families[0])
    rid = world.round.pk
    Unit.objects.filter(pk=world.units[0].pk).update(status=Unit.Status.WITHDRAWN)
    live = f"/api/v1/selection/{rid}/live/"
    assert "units" not in client.get(live).json()
    every = client.get(f"{live}?units=all").json()["units"]
    assert every == client.get(f"/api/v1/selection/{rid}/units/").json()
    assert len(every) == len(world.units) and all(u["eligible"] for u in every)
    available = client.get(f"{live}?units=available").json()["units"]
    assert available == client.get(f"/api/v1/selection/{rid}/units/?available=true").json()
    assert [u["id"] for u in available] == [u.pk for u in world.units[1:]]


@pytest.mark.parametrize("query", ["units=ALL", "units=taken", "units=all&units=x"])
def test_live_snapshot_refuses_an_unknown_unit_list(world, query):
    client = family_client(world.families[0])
    response = client.get(f"/api/v1/selection/{world.round.pk}/live/?{query}")
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert response.json()["error"]["code"] == "invalid_input"


def test_live_snapshot_reads_the_unit_list_after_the_heads(world, monkeypatch):
    """A unit taken just after the heads were read (its event above them, so the socket
    brings it) may be in the list already, never missing from both: the list is read
    after the heads. Taking it inside the heads' read proves the order."""
    from mobile_api import realtime_api
    from selection.models import Unit

    taken = world.units[0]
    read_heads = realtime_api.stream_heads

    def heads_then_take(**kwargs):
        heads = read_heads(**kwargs)
        Unit.objects.filter(pk=taken.pk).update(status=Unit.Status.WITHDRAWN)
        return heads

    monkeypatch.setattr(realtime_api, "stream_heads", heads_then_take)
    client = family_client(world.families[0])
    body = client.get(f"/api/v1/selection/{world.round.pk}/live/?units=available").json()
    assert taken.pk not in [u["id"] for u in body["units"]]
