"""The clock socket: origin check at the handshake, clock sync, malformed frames."""

from __future__ import annotations

import time

import pytest
from channels.testing import WebsocketCommunicator

from config.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def communicator(origin: bytes | None = b"http://127.0.0.1:8000") -> WebsocketCommunicator:
    headers = [(b"host", b"127.0.0.1:8000")]
    if origin is not None:
        headers.append((b"origin", origin))
    return WebsocketCommunicator(application, "/ws/clock/", headers=headers)


async def test_same_origin_socket_gets_server_time_and_answers_pings():
    ws = communicator()
    connected, _ = await ws.connect()
    assert connected
    hello = await ws.receive_json_from()
    assert hello["type"] == "hello" and abs(hello["server_time"] - time.time() * 1000) < 5000
    await ws.send_json_to({"type": "ping", "t0": 123})
    pong = await ws.receive_json_from()
    assert (
        pong["type"] == "pong" and pong["t0"] == 123 and pong["server_time"] >= hello["server_time"]
    )
    await ws.disconnect()


async def test_foreign_origin_is_refused_at_the_handshake():
    ws = communicator(b"https://evil.example")
    connected, code = await ws.connect()
    assert not connected


@pytest.mark.parametrize("frame", ["not json", "[1,2]", '{"type": "launch"}', "{}"])
async def test_malformed_frame_gets_an_error_frame_and_the_socket_stays_up(frame):
    ws = communicator()
    await ws.connect()
    await ws.receive_json_from()
    await ws.send_to(text_data=frame)
    error = await ws.receive_json_from()
    assert error == {"type": "error", "code": "bad_frame", "message": "无法识别的消息"}
    await ws.send_json_to({"type": "ping", "t0": 1})
    assert (await ws.receive_json_from())["type"] == "pong"
    await ws.disconnect()
