"""Login through the province's unified identity platform (广东省统一身份认证平台).

Browser redirects rather than JSON: `start` sends the browser to the platform, `callback`
receives it back, logs the applicant in and sends it on to the page the login page was
opened for (its `?next=`, a path on this site, kept in the session) or the H5 home page.
Every refusal renders the H5 error page with the Chinese message as its title and the
stable code.

When another device is logged in to the account, `callback` does not finish: it holds the
login for this browser and shows a page asking whether to end the other device; `confirm`
(a POST from that page) finishes it, `cancel` forgets it.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accounts.identity.base import applicant_for_identity
from accounts.identity.oidc import OidcProvider, OidcProviderError
from accounts.services import DeviceActive
from core.errors import DomainError
from core.http import safe_next
from core.urls import absolute_url
from mobile_api.auth import session_login_applicant, session_login_cancel, session_login_confirm
from mobile_api.errors import KIND_STATUS

logger = logging.getLogger("anju.identity")

HOME_URL = "/h5/"
LOGIN_URL = "/h5/login/"
NEXT_KEY = "anju_oidc_next"  # where the browser goes once logged in (session)


def _next_url(request) -> str:
    """Where `start` was asked to come back to (checked again: a path on this site)."""
    return safe_next(request.session.pop(NEXT_KEY, HOME_URL))


def _error_page(request, exc: DomainError):
    # 502 only when the platform itself failed; a refusal caused by the request is a 4xx.
    status = 502 if isinstance(exc, OidcProviderError) and exc.upstream else KIND_STATUS[exc.kind]
    logger.info("OIDC login refused: %s (HTTP %s)", exc.code, status)
    if status >= 500 and request.session.modified:
        # SessionMiddleware does not save on a 5xx; the spent state must stay spent.
        request.session.save()
    # Not logged in: the way on is the login page (its other way in, the SMS code, included).
    context = {"title": exc.message, "code": exc.code, "back_url": LOGIN_URL, "back": "返回登录"}
    return render(request, "h5/error.html", context, status=status)


def _redirect_uri(request) -> str:
    # Behind a proxy the absolute URI relies on BEHIND_PROXY; REDIRECT_URI pins it instead.
    return settings.OIDC.get("REDIRECT_URI") or absolute_url(reverse("oidc:callback"))


@never_cache
@require_GET
def oidc_start(request):
    """Remember a pending login (and `?next=`) in the session and redirect to the platform."""
    try:
        url = OidcProvider().begin(store=request.session, redirect_uri=_redirect_uri(request))
    except DomainError as exc:
        return _error_page(request, exc)
    request.session[NEXT_KEY] = safe_next(request.GET.get("next", ""))
    return HttpResponseRedirect(url)


@never_cache
@require_GET
def oidc_callback(request):
    """Check the platform's answer, log the applicant in on this device, go on to `next`.

    The platform is called before any database write, so no transaction is open while it
    answers; the session's pending state is consumed even when the login then fails.
    """
    provider = OidcProvider()
    try:
        identity = provider.complete(store=request.session, params=request.GET.dict())
        applicant = applicant_for_identity(identity=identity)
    except DomainError as exc:
        return _error_page(request, exc)
    try:
        session_login_applicant(request, applicant, provider=provider.name)
    except DeviceActive as exc:
        # Held for this browser: the page below confirms or cancels it.
        return render(request, "h5/login_confirm.html", {"code": exc.code})
    return HttpResponseRedirect(_next_url(request))


@never_cache
@require_POST
def oidc_confirm(request):
    """继续登录 on the confirmation page: finish the held login, ending the other device."""
    try:
        session_login_confirm(request)
    except DomainError as exc:
        return _error_page(request, exc)
    return HttpResponseRedirect(_next_url(request))


@never_cache
@require_POST
def oidc_cancel(request):
    """取消 on the confirmation page: forget the held login; the other device stays."""
    session_login_cancel(request)
    return HttpResponseRedirect(LOGIN_URL)
