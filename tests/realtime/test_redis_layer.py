"""The redis-py 8 trap: channels-redis with the library's default pool raises under a burst;
the layer as configured in settings waits for connections instead."""

from __future__ import annotations

import asyncio

import pytest
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from redis.exceptions import MaxConnectionsError

from config.settings import redis_host

pytestmark = pytest.mark.redis

BURST = 300  # concurrent sends, each holding a pooled connection while it waits on Redis


async def burst(hosts) -> None:
    layer = RedisChannelLayer(hosts=hosts, prefix="anju-pooltest")
    try:
        await asyncio.gather(*(layer.send(f"pool.t{i}", {"type": "x"}) for i in range(BURST)))
    finally:
        await layer.close_pools()
        cleanup = RedisChannelLayer(hosts=[redis_host(settings.REDIS_URL)], prefix="anju-pooltest")
        await cleanup.flush()


async def test_control_library_default_pool_raises_under_a_burst():
    with pytest.raises(MaxConnectionsError):
        await burst([{"address": settings.REDIS_URL}])


async def test_configured_layer_survives_the_same_burst():
    await burst(settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"])


def test_configured_layer_never_times_out_an_idle_receive():
    host = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    # channels-redis blocks in BZPOPMIN for 5 s; redis-py 8's default 5 s socket timeout races it.
    assert host["socket_timeout"] is None
    assert host["max_connections"] >= 1000
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] in (
        "channels_redis.core.RedisChannelLayer",
        "channels_redis.pubsub.RedisPubSubChannelLayer",
    )
