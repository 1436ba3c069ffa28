"""Mobile pages. They render templates and read through selectors; every write goes through
the API (mobile_api), so no business rule lives here."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts.models import Applicant
from mobile_api.errors import SESSION_ENDED
from selection import selectors


def _applicant(request) -> Applicant | None:
    if not request.user.is_authenticated:
        return None
    return Applicant.objects.filter(user=request.user).select_related("family").first()


def _to_login(request) -> HttpResponseRedirect:
    reason = getattr(request, "anju_session_ended", None)
    url = settings.LOGIN_URL + (f"?reason={reason}" if reason else "")
    return HttpResponseRedirect(url)


# never_cache: a login page holds the CSRF token, and after logout (or a login on another
# device) the back button must not show a cached home page with the family's details.
@never_cache
@ensure_csrf_cookie
def login_page(request):
    reason = request.GET.get("reason", "")
    notice = SESSION_ENDED[reason][1] if reason in SESSION_ENDED else ""
    if _applicant(request) is not None:
        return HttpResponseRedirect("/h5/")
    return render(
        request,
        "h5/login.html",
        {
            "notice": notice,
            "dev_login": settings.DEV_LOGIN_ENABLED,
            "oidc_enabled": bool(settings.OIDC["ISSUER"]),
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
    return render(
        request,
        "h5/home.html",
        {"applicant": applicant, "family": family, "broadcast_url": broadcast_url},
    )


def root(request):
    return HttpResponseRedirect("/h5/")
