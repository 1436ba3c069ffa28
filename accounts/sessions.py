"""The session engine (SESSION_ENGINE = "accounts.sessions"): Django's database sessions,
whose one query also loads the login the session belongs to.

Django's database engine reads the session row; then authentication reads the user, the
one-active-device check reads the device session and the applicant views read the applicant
and its family: four queries before a view does anything. Here the session row is read with
its device session (same key), the device's user, the user's applicant and the applicant's
family joined in (`LoginSession.device`, a relation on the key that adds no column), so the
request's login costs one query. `session_user` and `session_device_status` then answer from
what was loaded; anything the fast path does not cover goes through Django's own code.

Everything else is Django's database engine unchanged: the session stays a server-side row,
so logging out or being replaced on another device ends it at once (docs/DECISIONS.md "One
query for the login").
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.contrib import auth
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from core.adb import Compiled

_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
_NOT_LOADED = object()


def _login_rows(session_key, now):
    """The session row with its device session, user, applicant and family: the one query."""
    from accounts.models import LoginSession

    return LoginSession.objects.select_related("device__user__applicant__family").filter(
        session_key=session_key, expire_date__gt=now
    )


class SessionStore(DatabaseSessionStore):
    # The device session loaded with the session row: a DeviceSession (its user, applicant
    # and family cached on it), None when the row has none, _NOT_LOADED when the row was not
    # read by `load` (a new session, or read elsewhere).
    device = _NOT_LOADED

    @classmethod
    def get_model_class(cls):
        from accounts.models import LoginSession

        return LoginSession

    def _get_session_from_db(self):
        try:
            return _login_rows(self.session_key, timezone.now()).get()
        except (self.model.DoesNotExist, SuspiciousOperation) as exc:
            if isinstance(exc, SuspiciousOperation):
                logging.getLogger(f"django.security.{exc.__class__.__name__}").warning(str(exc))
            self._session_key = None
            return None

    def load(self):
        row = self._get_session_from_db()
        self.device = row.device if row is not None else None
        return self.decode(row.session_data) if row is not None else {}

    def cycle_key(self):
        super().cycle_key()
        self.device = _NOT_LOADED  # the device session belonged to the old key

    def flush(self):
        super().flush()
        self.device = _NOT_LOADED


def _loaded_device(session):
    """The device session `SessionStore.load` read for this session, or _NOT_LOADED."""
    session.keys()  # loads the session if nothing has yet (Django's lazy `_session`)
    return getattr(session, "device", _NOT_LOADED)


def _is_sessions_user(session, user) -> bool:
    """The session belongs to `user`: its user id, the model backend the applicants' logins
    use, an active user and a valid session hash (Django's own checks, from loaded rows)."""
    try:
        same_user = user.pk == user._meta.pk.to_python(session[SESSION_KEY])
    except (KeyError, ValidationError):
        return False
    return (
        same_user
        and session.get(BACKEND_SESSION_KEY) == _MODEL_BACKEND
        and _MODEL_BACKEND in settings.AUTHENTICATION_BACKENDS
        and ModelBackend().user_can_authenticate(user)
        and constant_time_compare(session.get(HASH_SESSION_KEY) or "", user.get_session_auth_hash())
    )


def session_user(request):
    """request.user: the device session's user when the session row brought it and the
    session is that user's, with a valid session hash, on the model backend the applicants'
    logins use; otherwise Django's `auth.get_user` (staff, phones, every odd case)."""
    session = request.session
    device = _loaded_device(session)
    if device is not _NOT_LOADED and device is not None and _is_sessions_user(session, device.user):
        return device.user
    return auth.get_user(request)


def session_device_status(session) -> str | None:
    """None when this session is its user's active device, else why not ('replaced',
    'logout', 'unknown'); from the row loaded with the session, else one query."""
    device = _loaded_device(session)
    if device is _NOT_LOADED:
        from accounts.services import device_session_status

        return device_session_status(session_key=session.session_key)
    if device is None:
        return "unknown"
    if device.ended_at is None:
        return None
    return device.end_reason or "unknown"


def _lean_login_rows(session_key, now):
    """The same query without the personal data at rest (the ID number's ciphertext and
    hash): the confirm route never reads them, and each decryption costs ~0.2 ms."""
    from accounts.models import Applicant, DeviceSession, Family, LoginSession, User
    from core.pii import encrypted_models

    hidden = dict(encrypted_models())
    chain = {
        "": LoginSession,
        "device__": DeviceSession,
        "device__user__": User,
        "device__user__applicant__": Applicant,
        "device__user__applicant__family__": Family,
    }
    return _login_rows(session_key, now).only(
        *(
            f"{path}{field.name}"
            for path, model in chain.items()
            for field in model._meta.concrete_fields
            if field.name not in hidden.get(model, ())
        )
    )


_LOGIN = Compiled(_lean_login_rows, session_key=str, now=datetime)


async def active_applicant_login(conn, session_key: str | None, *, now):
    """The family's applicant logged in on `session_key` and active on this device, from the
    same one query, run on the event loop (core/adb.py); None for anything else — no row, a
    bad key, another backend, a stale hash, an ended device session, no applicant — which
    Django's own middleware then answers. Reads only: nothing is saved or refreshed."""
    if not session_key:
        return None
    rows = await _LOGIN.fetch(conn, session_key=session_key, now=now)
    if not rows:
        return None
    device = rows[0].device
    if device is None or device.ended_at is not None:
        return None
    session = SessionStore().decode(rows[0].session_data)  # {} when tampered or unreadable
    from accounts.middleware import DEVICE_SESSION_FLAG

    if not session.get(DEVICE_SESSION_FLAG) or not _is_sessions_user(session, device.user):
        return None
    applicant = getattr(device.user, "applicant", None)
    if applicant is None:
        return None
    from accounts.privacy import privacy_required_known

    # The 《个人信息保护政策》 gate of every applicant API (IsApplicant): only an applicant
    # known to have acknowledged the current version without a query goes on here.
    return applicant if privacy_required_known(applicant) is False else None
