"""ASGI entry point: HTTP through Django, websockets through Channels with session auth and
an Origin check (a page from another site cannot open a socket with the user's cookie).
In front of both, the client's address from the trusted proxies only, and HTTP request
bodies capped before Django reads them (core/asgi.py)."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from core import daphne_guard  # noqa: E402
from core.asgi import BodyLimit, ClientAddress  # noqa: E402
from mobile_api.confirm_route import ConfirmRoute  # noqa: E402
from realtime.routing import websocket_urlpatterns  # noqa: E402

# Under daphne: Twisted neither parses form bodies itself nor receives one over the cap.
daphne_guard.install(lambda: settings.REQUEST_BODY_MAX_BYTES)

if settings.WORKERS_IN_PROCESS:
    # The embedded quick start (make demo) runs the session clock, the log's sequencer and the
    # SMS outbox inside the server. Started here, once every app is ready: started from
    # AppConfig.ready() their threads queried the database while the other apps were still
    # loading (Django's "Accessing the database during app initialization" warning).
    from selection.clock import clock_start_in_process  # noqa: E402
    from selection.translog import sequencer_start_in_process  # noqa: E402
    from sms.services import sms_outbox_start_in_process  # noqa: E402

    clock_start_in_process()
    sequencer_start_in_process()
    sms_outbox_start_in_process()

application = ClientAddress(
    ProtocolTypeRouter(
        {
            # The confirm's plain cases are answered ahead of Django (mobile_api/confirm_route.py).
            "http": BodyLimit(
                ConfirmRoute(django_asgi_app), lambda: settings.REQUEST_BODY_MAX_BYTES
            ),
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
        }
    ),
    lambda: settings.TRUSTED_PROXY_COUNT,
)

# A daphne process holding a few thousand sockets keeps ~500,000 long-lived objects; a full
# garbage collection walks them all (0.3-0.5 s on the 2-core VM), stopping every socket of
# the process meanwhile. Young collections every 10,000 allocations instead of 700 and a
# full one after 100 older passes instead of 10 keep that out of selection-day bursts
# (docs/BENCHMARKS.md, "Real-time fan-out").
gc.set_threshold(10_000, 10, 100)
