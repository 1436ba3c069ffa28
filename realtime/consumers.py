"""Websocket consumers. Thin: authenticate, answer, forward. Business rules live in the
domain apps."""

from __future__ import annotations

import json
import time

from channels.generic.websocket import AsyncJsonWebsocketConsumer


def server_time_ms() -> int:
    return int(time.time() * 1000)


class ClockConsumer(AsyncJsonWebsocketConsumer):
    """Clock sync: the page sends {"type": "ping", "t0": <its ms>}, the server answers with
    its own time so the page can compute its offset and round trip (server time is the only
    clock). Malformed frames get an error frame; the socket stays up."""

    async def connect(self):
        await self.accept()
        await self.send_json({"type": "hello", "server_time": server_time_ms()})

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = json.loads(text_data or "")
        except ValueError:
            content = None
        if not isinstance(content, dict) or content.get("type") != "ping":
            await self.send_json(
                {"type": "error", "code": "bad_frame", "message": "无法识别的消息"}
            )
            return
        t0 = content.get("t0")
        await self.send_json(
            {
                "type": "pong",
                "t0": t0 if isinstance(t0, (int, float)) else None,
                "server_time": server_time_ms(),
            }
        )
