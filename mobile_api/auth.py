"""Session-cookie authentication for the H5 pages, with CSRF enforced on every unsafe
request, logged in or not (DRF's own class skips CSRF for anonymous requests, which would
leave login open to login-CSRF)."""

from __future__ import annotations

from django.contrib.auth import login, logout
from rest_framework import authentication
from rest_framework.permissions import BasePermission

from accounts.middleware import DEVICE_SESSION_FLAG
from accounts.models import Applicant, User
from accounts.privacy import privacy_gate
from accounts.services import (
    DeviceActive,
    device_session_check,
    device_session_end,
    device_session_start,
    login_pending_drop,
    login_pending_hold,
    login_pending_take,
)
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

    The session's one query (accounts/sessions.py) normally brought the applicant and its
    family with the user; otherwise they are loaded here in one query and left on the user, so
    that the view's `request.user.applicant.family` costs no further queries.

    Until the applicant has acknowledged the current 《个人信息保护政策》, refused with 403
    `privacy_notice_required` (accounts/privacy.py), except on views that set
    `privacy_exempt = True` (the notice itself, who am I)."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if User.applicant.related.is_cached(user):
            applicant = User.applicant.related.get_cached_value(user)
        else:
            applicant = Applicant.objects.select_related("family").filter(user=user).first()
            if applicant is not None:
                user.applicant = applicant  # fills the reverse one-to-one cache; saves nothing
        if applicant is None:
            return False
        if not getattr(view, "privacy_exempt", False):
            privacy_gate(applicant)
        return True


def session_login_applicant(
    request, applicant: Applicant, *, provider: str, confirmed: bool = False
) -> None:
    """Log the applicant in on this request's session and make it the only active device.

    When another device is the account's active one and the applicant has not confirmed
    ending it, nothing changes but this: the login is held for this browser (its session)
    and `device_active` is raised; `session_login_confirm` then finishes it without a new
    code. The other device's open pages are closed at once when the login commits
    (accounts.signals, realtime.device_notices)."""
    if not confirmed:
        try:
            device_session_check(user=applicant.user, session_key=request.session.session_key)
        except DeviceActive:
            login_pending_hold(store=request.session, applicant=applicant, provider=provider)
            raise
    login_pending_drop(store=request.session)
    login(request, applicant.user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[DEVICE_SESSION_FLAG] = True
    request.session.save()
    device_session_start(
        user=applicant.user,
        session_key=request.session.session_key,
        provider=provider,
        ctx=RequestContext.from_request(request),
    )


def session_login_confirm(request) -> Applicant:
    """Finish the login this browser holds (see `session_login_applicant`), ending the other
    device. Raises `login_pending_missing` (none held by this browser's session) and
    `login_pending_expired`; either way the held login is gone."""
    applicant, provider = login_pending_take(store=request.session)
    session_login_applicant(request, applicant, provider=provider, confirmed=True)
    return applicant


def session_login_cancel(request) -> None:
    """The applicant chose to keep the other device: forget the held login."""
    login_pending_drop(store=request.session)


def session_logout(request) -> None:
    if request.session.session_key:
        device_session_end(session_key=request.session.session_key)
    logout(request)
