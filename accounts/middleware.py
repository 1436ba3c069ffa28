"""One active device per family: a session that was replaced by a login elsewhere is ended
here, and the request is marked so that the API and pages can say why."""

from __future__ import annotations

from django.contrib.auth import logout

from accounts.services import device_session_status

DEVICE_SESSION_FLAG = "anju_device"


class SingleDeviceMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.anju_session_ended = None
        if request.user.is_authenticated and request.session.get(DEVICE_SESSION_FLAG):
            reason = device_session_status(session_key=request.session.session_key)
            if reason is not None:
                logout(request)
                request.anju_session_ended = reason
        return self.get_response(request)
