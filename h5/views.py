"""Mobile pages. They render templates and read through selectors; every write goes through
the API (mobile_api), so no business rule lives here."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts.models import Applicant
from core.http import HOME_PATH, safe_next
from h5.home import next_steps
from mobile_api.errors import SESSION_ENDED
from selection import selectors


def _applicant(request) -> Applicant | None:
    if not request.user.is_authenticated:
        return None
    return Applicant.objects.filter(user=request.user).select_related("family").first()


OIDC_START = "/auth/oidc/start/"


def _to_login(request) -> HttpResponseRedirect:
    """The login page for a visitor to a page that needs a login, coming back to the page
    asked for (with its query) afterwards, so an SMS link to a selection or signing page
    still leads there once logged in. The home page is where a login goes anyway, so it is
    not named. Every H5 page sends its visitors here; the login page follows `next` only to
    a path on this site (`safe_next`, lib/api.js)."""
    next_path = request.get_full_path()
    query = {}
    if next_path != HOME_PATH:
        query["next"] = next_path
    reason = getattr(request, "anju_session_ended", None)
    if reason:
        query["reason"] = reason
    url = settings.LOGIN_URL
    if query:
        url += "?" + urlencode(query, quote_via=quote)
    return HttpResponseRedirect(url)


def _oidc_start(next_url: str) -> str:
    next_url = safe_next(next_url)
    if next_url == HOME_PATH:
        return OIDC_START
    return f"{OIDC_START}?{urlencode({'next': next_url}, quote_via=quote)}"


# never_cache: a login page holds the CSRF token, and after logout (or a login on another
# device) the back button must not show a cached home page with the family's details.
@never_cache
@ensure_csrf_cookie
def login_page(request):
    reason = request.GET.get("reason", "")
    notice = SESSION_ENDED[reason][1] if reason in SESSION_ENDED else ""
    if _applicant(request) is not None:
        # Already logged in (another tab, the back button): on to where the login would go.
        return HttpResponseRedirect(safe_next(request.GET.get("next", "")))
    return render(
        request,
        "h5/login.html",
        {
            "notice": notice,
            "dev_login": settings.DEV_LOGIN_ENABLED,
            "oidc_enabled": bool(settings.OIDC["ISSUER"]),
            # The platform's login comes back to `next` too (mobile_api/oidc_views.py).
            "oidc_start": _oidc_start(request.GET.get("next", "")),
            "debug": settings.DEBUG,
        },
    )


@never_cache
@ensure_csrf_cookie
def home_page(request):
    applicant = _applicant(request)
    if applicant is None:
        return _to_login(request)
    # An applicant imported without a family still gets a page (it says to contact staff).
    family = getattr(applicant, "family", None)
    latest = selectors.family_rounds(family=family).first() if family else None
    broadcast_url = f"/h5/broadcast/{latest.pk}/" if latest else "/h5/broadcast/"
    steps = next_steps(applicant=applicant, family=family, now=timezone.now()) if family else None
    return render(
        request,
        "h5/home.html",
        {"applicant": applicant, "family": family, "broadcast_url": broadcast_url, "next": steps},
    )


def root(request):
    return HttpResponseRedirect("/h5/")
