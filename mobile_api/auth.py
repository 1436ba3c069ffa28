"""Session-cookie authentication for the H5 pages, with CSRF enforced on every unsafe
request, logged in or not (DRF's own class skips CSRF for anonymous requests, which would
leave login open to login-CSRF)."""

from __future__ import annotations

from django.contrib.auth import login, logout
from rest_framework import authentication
from rest_framework.permissions import BasePermission

from accounts.middleware import DEVICE_SESSION_FLAG
from accounts.models import Applicant
from accounts.services import device_session_end, device_session_start
from core.context import RequestContext


class SessionAuthentication(authentication.SessionAuthentication):
    def authenticate(self, request):
        user = getattr(request._request, "user", None)
        if not user or not user.is_active:
            if request.method not in ("GET", "HEAD", "OPTIONS", "TRACE"):
                self.enforce_csrf(request)
            return None
        self.enforce_csrf(request)
        return (user, None)


class IsApplicant(BasePermission):
    """A logged-in family's main applicant (staff accounts have no applicant).

    Loads the applicant and its family in one query and leaves them on the user, so that the
    view's `request.user.applicant.family` costs no further queries (bench/confirm_http.py)."""

    def has_permission(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return False
        applicant = Applicant.objects.select_related("family").filter(user=request.user).first()
        if applicant is None:
            return False
        request.user.applicant = applicant  # fills the reverse one-to-one cache; saves nothing
        return True


def session_login_applicant(request, applicant: Applicant, *, provider: str) -> None:
    """Log the applicant in on this request's session and make it the only active device."""
    login(request, applicant.user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[DEVICE_SESSION_FLAG] = True
    request.session.save()
    device_session_start(
        user=applicant.user,
        session_key=request.session.session_key,
        provider=provider,
        ctx=RequestContext.from_request(request),
    )


def session_logout(request) -> None:
    if request.session.session_key:
        device_session_end(session_key=request.session.session_key)
    logout(request)
