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


def audit_admin_change(sender, request, obj, action: str, detail: dict, **kwargs) -> None:
    """core.admin announces every staff add / change / delete made in the admin; the audit
    trail (this app's) records it."""
    from accounts.services import audit_record

    audit_record(
        actor=request.user,
        action=f"admin.{obj._meta.model_name}.{action}",
        target=f"{obj._meta.label}:{obj.pk} {obj}",
        detail=detail,
        ip=request.META.get("REMOTE_ADDR", ""),
    )
