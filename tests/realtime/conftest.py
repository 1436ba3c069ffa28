from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.services import applicant_user_ensure
from config.asgi import application

HOST = [(b"host", b"127.0.0.1:8000"), (b"origin", b"http://127.0.0.1:8000")]


def session_cookie_for(family) -> str:
    client = Client()
    client.force_login(applicant_user_ensure(applicant=family.main_applicant).user)
    return client.cookies["sessionid"].value


def socket(path: str, *, cookie: str | None = None, origin: bytes = b"http://127.0.0.1:8000"):
    headers = [(b"host", b"127.0.0.1:8000"), (b"origin", origin)]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def connected(path: str, **kwargs):
    ws = socket(path, **kwargs)
    ok, code = await ws.connect()
    assert ok, code
    hello = await ws.receive_json_from()
    assert hello["type"] == "hello"
    return ws, hello


aio = database_sync_to_async


@pytest.fixture
async def flushed_layer():
    # channels-redis binds its locks to the event loop that first used the layer, and every
    # async test has its own loop: give each test a fresh layer instance.
    channel_layers.backends.clear()
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        await layer.flush()
    yield layer
    if hasattr(layer, "flush"):
        await layer.flush()
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
async def _close_thread_connections():
    """database_sync_to_async runs ORM calls on a worker thread whose connection would
    otherwise outlive the test and block the test database's teardown."""
    yield
    from django.db import connections

    await aio(connections.close_all)()
