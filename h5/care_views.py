"""关怀模式 (issue 16 item 4): larger text, stronger contrast and bigger touch targets on every
H5 page, for the older applicants of a government service (适老化).

The choice is remembered on the device in a cookie, which base.html reads on the server to put
`anju-care` on <html>: the page is drawn in care mode from its first paint, with no flash and
no script. The switch is a plain form (h5/_care_switch.html) posted here, so it works before
any page script has loaded, on the login page too, where older applicants arrive first."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

CARE_COOKIE = "anju_care"
# Browsers keep a cookie for at most 400 days (RFC 6265bis); each switch renews it.
CARE_COOKIE_MAX_AGE = 400 * 24 * 3600
DEFAULT_NEXT = "/h5/"


@require_POST
def care_mode(request):
    """Switch 关怀模式 on (care=1) or off (care=0) on this device; back to `next`."""
    next_url = request.POST.get("next") or DEFAULT_NEXT
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = DEFAULT_NEXT
    response = HttpResponseRedirect(next_url, status=303)
    if request.POST.get("care") == "1":
        response.set_cookie(
            CARE_COOKIE,
            "1",
            max_age=CARE_COOKIE_MAX_AGE,
            secure=settings.SESSION_COOKIE_SECURE,
            httponly=True,
            samesite="Lax",
        )
    else:
        response.delete_cookie(CARE_COOKIE, samesite="Lax")
    return response
