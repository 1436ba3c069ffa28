"""The login of a request, and one active device per family.

`SessionAuthenticationMiddleware` is Django's AuthenticationMiddleware whose `request.user`
comes from the row the session engine loaded (accounts/sessions.py): with it, the session,
the device session, the user, the applicant and the family are one query. `SingleDeviceMiddleware`
ends a session that was replaced by a login elsewhere, and marks the request so that the API
and pages can say why; it reads the device session loaded with the session row."""

from __future__ import annotations

from functools import partial

from asgiref.sync import sync_to_async
from django.contrib.auth import logout
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.utils.functional import SimpleLazyObject

from accounts.sessions import session_device_status, session_user

DEVICE_SESSION_FLAG = "anju_device"


def _user(request):
    if not hasattr(request, "_cached_user"):
        request._cached_user = session_user(request)
    return request._cached_user


async def _auser(request):
    """`await request.auser()` for async views: the same user as `request.user`, from the
    same one query (run in a worker thread, like Django's own aget_user does its queries)."""
    return await sync_to_async(_user)(request)


class SessionAuthenticationMiddleware(AuthenticationMiddleware):
    def process_request(self, request):
        super().process_request(request)  # its checks
        request.user = SimpleLazyObject(lambda: _user(request))
        request.auser = partial(_auser, request)


class SingleDeviceMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.anju_session_ended = None
        if request.user.is_authenticated and request.session.get(DEVICE_SESSION_FLAG):
            reason = session_device_status(request.session)
            if reason is not None:
                logout(request)
                request.anju_session_ended = reason
        return self.get_response(request)
