"""《个人信息保护政策》 at first login and after each new version (accounts/privacy.py): the
page shows the current text; 「同意并继续」 acknowledges it through the API and goes on to
`next` (any page the gate sent here from)."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from accounts.privacy import _request_applicant, privacy_current
from h5.views import _to_login


@never_cache
@ensure_csrf_cookie
def privacy_page(request):
    applicant = _request_applicant(request)
    if applicant is None:
        return _to_login(request)
    notice = privacy_current()
    return render(
        request,
        "h5/privacy.html",
        {
            "applicant": applicant,
            "notice": notice,
            "required": notice is not None and applicant.privacy_version < notice.version,
        },
    )
