from channels.generic.websocket import AsyncWebsocketConsumer
from django.urls import path, re_path

import core.converters  # noqa: F401 (registers <id:...>)
from realtime.consumers import (
    CLOSE_NOT_FOUND,
    AccountConsumer,
    BroadcastConsumer,
    QrProgressConsumer,
    SelectionConsumer,
)


class NoRouteConsumer(AsyncWebsocketConsumer):
    """Any other socket path (an unknown one, an id past 2**63 that `<id:...>` refuses):
    refused at the handshake like a stream that does not exist, instead of the router's
    "No route found" exception in the server's log."""

    async def connect(self):
        await self.close(code=CLOSE_NOT_FOUND)


websocket_urlpatterns = [
    path("ws/selection/<id:round_id>/", SelectionConsumer.as_asgi()),
    path("ws/broadcast/<id:round_id>/", BroadcastConsumer.as_asgi()),
    path("ws/qr/<str:token>/", QrProgressConsumer.as_asgi()),
    path("ws/account/", AccountConsumer.as_asgi()),
    re_path(r"", NoRouteConsumer.as_asgi()),
]
