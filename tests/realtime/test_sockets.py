"""The sockets: who may follow what, what arrives, and how junk is handled."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from accounts.models import DeviceSession
from accounts.services import applicant_user_ensure, device_session_start
from core.context import RequestContext
from events.services import event_record, stream_heads
from events.streams import qr_stream
from realtime import access, consumers
from realtime.access import qr_stream_token
from realtime.hub import StreamHub
from realtime.relay import relay_once
from selection import allocation
from selection.models import CartItem, Seat
from selection.translog import sequence_pending
from tests.realtime.conftest import aio, connected, session_cookie_for, socket
from tests.worlds import make_world

pytestmark = pytest.mark.django_db(transaction=True)


def open_session_world():
    world = make_world(families=3, units=3, sessions=1, per_session=2)
    s1 = world.sessions[0]
    now = timezone.now()
    type(s1).objects.filter(pk=s1.pk).update(
        starts_at=now - timedelta(seconds=10), ends_at=now + timedelta(minutes=2)
    )
    s1.refresh_from_db()
    for family in world.families[:2]:
        CartItem.objects.create(
            family=family,
            round=world.round,
            kind="formal",
            unit=world.units[0],
            position=1,
            added_at=now,
        )
    Seat.objects.filter(session=s1).update(entered_at=now)
    return world


def confirm(world, family, unit):
    """A confirm, then the log's sequencer (which announces the unit taken)."""
    made = allocation.selection_confirm(
        family=family,
        round_id=world.round.pk,
        unit_id=unit.pk,
        idempotency_key=f"ws-{family.pk:08d}",
        now=timezone.now(),
    )
    sequence_pending()
    return made


async def test_a_family_hears_a_takeover_and_only_its_own_result(flushed_layer):
    world = await aio(open_session_world)()
    a, b, outsider = world.families
    rid = world.round.pk
    ws_a, hello_a = await connected(
        f"/ws/selection/{rid}/", cookie=await aio(session_cookie_for)(a)
    )
    ws_b, _ = await connected(f"/ws/selection/{rid}/", cookie=await aio(session_cookie_for)(b))
    assert set(hello_a["streams"]) == {
        f"round.{rid}",
        f"family.{a.pk}",
        f"session.{world.sessions[0].pk}",
    }
    await aio(confirm)(world, a, world.units[0])
    assert await aio(relay_once)() == 2
    frames_a = [await ws_a.receive_json_from(timeout=5) for _ in range(2)]
    by_stream = {f["stream"]: f for f in frames_a}
    taken = by_stream[f"round.{rid}"]["events"][0]
    assert (
        taken["type"] == "selection.unit_taken" and taken["data"]["unit"]["id"] == world.units[0].pk
    )
    assert by_stream[f"family.{a.pk}"]["events"][0]["type"] == "selection.result_assigned"
    frame_b = await ws_b.receive_json_from(timeout=5)
    assert frame_b["stream"] == f"round.{rid}"  # b hears the takeover …
    assert await ws_b.receive_nothing(timeout=0.3)  # … and never a's result
    assert "rank" not in str(taken) and a.main_applicant.real_name not in str(frames_a)
    await ws_a.disconnect()
    await ws_b.disconnect()


async def test_selection_socket_refusals(flushed_layer):
    world = await aio(open_session_world)()
    rid = world.round.pk
    anonymous = socket(f"/ws/selection/{rid}/")
    assert await anonymous.connect() == (False, 4401)
    outsider = socket(
        f"/ws/selection/{rid}/", cookie=await aio(session_cookie_for)(world.families[2])
    )
    assert (await outsider.connect())[1] == 4404  # no seat in this round's session
    foreign = socket(
        f"/ws/selection/{rid}/",
        cookie=await aio(session_cookie_for)(world.families[0]),
        origin=b"https://evil.example",
    )
    assert (await foreign.connect())[0] is False


async def test_a_replaced_device_cannot_open_a_socket(flushed_layer):
    world = await aio(open_session_world)()
    family = world.families[0]

    def replaced_cookie():
        from django.contrib.sessions.backends.db import SessionStore
        from django.test import Client

        client = Client()
        user = applicant_user_ensure(applicant=family.main_applicant).user
        client.force_login(user)
        key = client.cookies["sessionid"].value
        store = SessionStore(session_key=key)
        store["anju_device"] = True
        store.save()
        device_session_start(user=user, session_key=key, provider="t", ctx=RequestContext())
        device_session_start(user=user, session_key="elsewhere", provider="t", ctx=RequestContext())
        assert DeviceSession.objects.get(session_key=key).end_reason == "replaced"
        return key

    ws = socket(f"/ws/selection/{world.round.pk}/", cookie=await aio(replaced_cookie)())
    # Accepted and closed at once with the reason, so that the page can say it
    # (tests/realtime/test_device_sockets.py).
    assert await ws.connect() == (True, None)
    closed = await ws.receive_output(timeout=5)
    assert closed == {"type": "websocket.close", "code": 4409, "reason": "session_replaced"}


async def test_broadcast_is_public_and_unknown_rounds_are_refused(flushed_layer):
    world = await aio(open_session_world)()
    ws, hello = await connected(f"/ws/broadcast/{world.round.pk}/")
    assert hello["streams"] == [f"round.{world.round.pk}"]
    await aio(confirm)(world, world.families[0], world.units[0])
    await aio(relay_once)()
    frame = await ws.receive_json_from(timeout=5)
    assert frame["events"][0]["type"] == "selection.unit_taken"
    await ws.disconnect()
    missing = socket("/ws/broadcast/999999/")
    assert await missing.connect() == (False, 4404)


async def test_a_board_socket_opens_with_one_database_call(flushed_layer, monkeypatch):
    """A crowd opens the board at once on selection day, and every socket's database calls
    queue on the server's one database thread: whether the round exists and its head are
    read in one call, after the join (the hello's heads must be). A missing round makes the
    same one call and is refused."""
    world = await aio(open_session_world)()
    calls: list[str] = []
    hop = consumers.database_sync_to_async

    def counting(function):
        calls.append(getattr(function, "__name__", repr(function)))
        return hop(function)

    monkeypatch.setattr(consumers, "database_sync_to_async", counting)
    ws, hello = await connected(f"/ws/broadcast/{world.round.pk}/")
    assert calls == ["heads_after_join"]
    assert hello["heads"] == {f"round.{world.round.pk}": 0}
    await ws.disconnect()
    calls.clear()
    assert await socket("/ws/broadcast/999999/").connect() == (False, 4404)
    assert calls == ["heads_after_join"]


def _cart_also(world, family, unit) -> None:
    CartItem.objects.filter(family=family, round=world.round, kind="formal").update(unit=unit)


async def test_hello_carries_the_heads_read_after_joining(flushed_layer, monkeypatch):
    """A page may read its snapshot before its socket has joined (docs/REALTIME.md rule 1):
    the hello says each stream's head, read after the joins, so an event committed before
    the socket listened is in the head and one after comes on the socket. The resync hello
    says them again."""
    world = await aio(open_session_world)()
    rid = world.round.pk
    await aio(confirm)(world, world.families[0], world.units[0])  # before the socket
    await aio(relay_once)()  # and published before it listened: only the head says so
    head = (await aio(stream_heads)(streams=[f"round.{rid}"]))[f"round.{rid}"]
    assert head > 0

    order: list[str] = []
    join, heads = StreamHub.join, access.round_head

    async def joining(self, group, consumer):
        order.append(f"join {group}")
        await join(self, group, consumer)

    def reading(round_id):
        order.append("heads")
        return heads(round_id)

    monkeypatch.setattr(StreamHub, "join", joining)
    monkeypatch.setattr(access, "round_head", reading)
    ws, hello = await connected(f"/ws/broadcast/{rid}/")
    assert hello["heads"] == {f"round.{rid}": head}
    assert order == [f"join ev.round.{rid}", "heads"]

    await aio(_cart_also)(world, world.families[1], world.units[1])
    await aio(confirm)(world, world.families[1], world.units[1])  # after: on the socket
    await aio(relay_once)()
    frame = await ws.receive_json_from(timeout=5)
    assert frame["from"] == head + 1
    await ws.send_json_to({"type": "resync"})
    again = await ws.receive_json_from()
    assert again["type"] == "hello" and again["heads"] == {f"round.{rid}": frame["to"]}
    await ws.disconnect()


async def test_frames_that_come_while_the_heads_are_read_follow_the_hello(
    flushed_layer, monkeypatch
):
    """The socket has joined its streams and is reading their heads when a take is
    published: its frame waits and goes after the hello, which always comes first."""
    world = await aio(open_session_world)()
    rid = world.round.pk
    held = threading.Event()
    send, heads = consumers.StreamConsumer.send, access.round_head

    async def sending(self, text_data=None, bytes_data=None, close=False):
        await send(self, text_data=text_data, bytes_data=bytes_data, close=close)
        if self.before_hello:
            held.set()

    def reading(round_id):
        confirm(world, world.families[0], world.units[0])
        relay_once()
        assert held.wait(5), "the hub never handed the frame over"
        return heads(round_id)

    monkeypatch.setattr(consumers.StreamConsumer, "send", sending)
    monkeypatch.setattr(access, "round_head", reading)
    ws, hello = await connected(f"/ws/broadcast/{rid}/")  # asserts the hello came first
    frame = await ws.receive_json_from(timeout=5)
    assert frame["type"] == "events" and frame["to"] == hello["heads"][f"round.{rid}"]
    await ws.disconnect()


async def test_the_qr_progress_socket_closes_when_its_ticket_expires(flushed_layer):
    await aio(open_session_world)()
    # The wall clock stands still from the token's making to the socket's check, so the token
    # has exactly 3 s left when the consumer schedules its close, however slow this machine
    # is; the close then comes 3 s later on the event loop's own (monotonic) clock. The
    # socket's opening (the join, the heads' read) must finish within those 3 s: with 1 s it
    # once did not, on a machine running three test workers, and the socket closed (4410)
    # before it was accepted.
    with time_machine.travel(timezone.now(), tick=False):
        live = qr_stream_token(ticket_id="T7", expires_at=timezone.now() + timedelta(seconds=3))
        ws, hello = await connected(f"/ws/qr/{live}/")
    assert hello["streams"] == ["qr.T7"]
    closed = await ws.receive_output(timeout=10)  # the close the consumer schedules
    assert closed == {"type": "websocket.close", "code": 4410}
    # An expired token opens nothing (control: the same token shape, an hour later).
    expired = qr_stream_token(ticket_id="T7", expires_at=timezone.now() - timedelta(seconds=1))
    assert await socket(f"/ws/qr/{expired}/").connect() == (False, 4403)
    forged = live[:-3] + "abc"
    assert await socket(f"/ws/qr/{forged}/").connect() == (False, 4403)


async def test_qr_progress_reaches_the_desktop_without_any_login(
    flushed_layer,
):
    await aio(open_session_world)()
    token = qr_stream_token(ticket_id="T123", expires_at=timezone.now() + timedelta(hours=1))
    # no session cookie at all: the progress token alone opens it
    ws, hello = await connected(f"/ws/qr/{token}/")
    assert hello["streams"] == ["qr.T123"]

    def phone_steps():
        from django.db import transaction

        for step, label in (
            (1, "已扫码"),
            (2, "已同意协议"),
            (3, "人脸识别通过"),
        ):
            with transaction.atomic():
                event_record(
                    stream=qr_stream("T123"),
                    type="qr.step",
                    data={"step": step, "label": label},
                    now=timezone.now(),
                )
            relay_once()

    await aio(phone_steps)()
    # Three relay ticks: three frames, or fewer when the hub merged those that reached it
    # together (realtime/hub.py); either way seqs 1-3 in order, nothing twice.
    frames = [await ws.receive_json_from(timeout=5)]
    while frames[-1]["to"] < 3:
        frames.append(await ws.receive_json_from(timeout=5))
    received = [e for f in frames for e in f["events"]]
    assert [e["seq"] for e in received] == [1, 2, 3]
    assert [f["from"] for f in frames] == [1] + [f["to"] + 1 for f in frames[:-1]]
    assert [e["data"]["label"] for e in received] == [
        "已扫码",
        "已同意协议",
        "人脸识别通过",
    ]
    await ws.disconnect()
    forged = socket("/ws/qr/not-a-token/")
    assert await forged.connect() == (False, 4403)
    tampered = socket(f"/ws/qr/{token[:-2]}xx/")
    assert await tampered.connect() == (False, 4403)


async def test_clock_ping_malformed_frames_and_rate_limit(flushed_layer):
    world = await aio(open_session_world)()
    ws, hello = await connected(f"/ws/broadcast/{world.round.pk}/")
    await ws.send_json_to({"type": "ping", "t0": 123})
    pong = await ws.receive_json_from()
    assert (
        pong["type"] == "pong" and pong["t0"] == 123 and pong["server_time"] >= hello["server_time"]
    )
    nested = "[" * 100_000 + "]" * 100_000  # refused before parsing, the socket lives on
    for frame in ("not json", "[1,2]", '{"type": "launch"}', "{}", nested, "NaN"):
        await ws.send_to(text_data=frame)
        assert (await ws.receive_json_from())["code"] == "bad_frame"
    await ws.send_json_to({"type": "resync"})
    assert (await ws.receive_json_from())["type"] == "hello"
    codes = []
    for _ in range(20):  # far faster than 5 a second: the bucket empties
        await ws.send_json_to({"type": "ping", "t0": 1})
        codes.append((await ws.receive_json_from())["type"])
    assert "error" in codes and codes[0] == "pong"
    for _ in range(60):
        await ws.send_json_to({"type": "ping", "t0": 1})
    closed = None
    for _ in range(200):
        message = await ws.receive_output(timeout=5)
        if message["type"] == "websocket.close":
            closed = message["code"]
            break
    assert closed == 4429
