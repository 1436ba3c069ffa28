"""A login's open sockets are closed the moment it ends, not at their next request.

Every socket bound to a login (the selection socket, the page's account socket) joins its
device session's group, `device.<keyed hash of the session key>`. When a device session
ends, accounts.services sends `device_session_ended` after the commit; the receiver here
publishes `device.ended` to that group, and each socket in it closes with the code of the
reason (docs/REALTIME.md, "Sockets of a login"):

- 4409 `session_replaced`: a login on another device ended this one;
- 4411 `logged_out`: this session logged out (in another tab).

If the channel layer is away the publish is lost, but so are the sockets (the hub closes
them with 4503), and a reconnecting socket of an ended session is closed with its code at
once (realtime.consumers). The login itself never waits for or fails on this.
"""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils.crypto import salted_hmac

logger = logging.getLogger("anju.realtime")

CLOSE_REPLACED = 4409
CLOSE_LOGGED_OUT = 4411

# reason (accounts.signals / DeviceSession.end_reason) → (close code, close reason)
ENDED_CLOSE = {
    "replaced": (CLOSE_REPLACED, "session_replaced"),
    "logout": (CLOSE_LOGGED_OUT, "logged_out"),
}


def device_group(session_key: str) -> str:
    """The channel-layer group of a device session's sockets. Keyed, so that the name that
    travels through Redis never reveals the session key."""
    return "device." + salted_hmac("anju.realtime.device", session_key).hexdigest()[:40]


def ended_close(reason: str | None) -> tuple[int, str]:
    """(close code, close reason) for a session that ended for `reason`; an unknown reason
    closes as logged out (the page stops; nothing is wrongly blamed on another device)."""
    return ENDED_CLOSE.get(reason or "", ENDED_CLOSE["logout"])


def device_notice_publish(*, session_key: str, reason: str) -> None:
    """Close every open socket of this device session, in every server process."""
    layer = get_channel_layer()
    if layer is None or not session_key:
        return
    try:
        async_to_sync(layer.group_send)(
            device_group(session_key), {"type": "device.ended", "reason": reason}
        )
    except Exception as exc:  # the layer (Redis) is away: see the module docstring
        logger.warning("could not tell the sockets of an ended device session: %r", exc)


def on_device_session_ended(sender, *, session_key: str, reason: str, **kwargs) -> None:
    device_notice_publish(session_key=session_key, reason=reason)
