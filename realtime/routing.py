from django.urls import path

from realtime.consumers import (
    AccountConsumer,
    BroadcastConsumer,
    QrProgressConsumer,
    SelectionConsumer,
)

websocket_urlpatterns = [
    path("ws/selection/<int:round_id>/", SelectionConsumer.as_asgi()),
    path("ws/broadcast/<int:round_id>/", BroadcastConsumer.as_asgi()),
    path("ws/qr/<str:token>/", QrProgressConsumer.as_asgi()),
    path("ws/account/", AccountConsumer.as_asgi()),
]
