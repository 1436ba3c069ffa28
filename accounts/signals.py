"""Hooks the account domain offers to the layers around it, so that it never imports them.

`device_session_ended` is sent after the transaction that ended a device session commits,
once per ended session, with `session_key` and `reason`:

- "replaced": a login on another device made that one the active device;
- "logout": the session was logged out.

realtime.device_notices closes the session's open sockets at once on it. Receivers must not
raise (the signal is sent robustly; a failure is logged, the login goes on)."""

from __future__ import annotations

from django.dispatch import Signal

device_session_ended = Signal()
