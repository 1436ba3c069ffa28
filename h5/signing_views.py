"""网上签约 pages (guide 001). Each renders a shell; the page's script reads the agreement
from the API and writes only through it (mobile_api/signing_api.py), so no signing rule
lives here: the server decides which step comes next and refuses anything out of order. The
views only decide who may open a page (an agreement of another family looks like none)."""

from __future__ import annotations

import re

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from core.errors import DomainError
from h5.views import _applicant, _to_login
from mobile_api.errors import KIND_STATUS
from mobile_api.signer import phone_session_of, signer_for
from signing.models import Agreement

# What signing/agreements/qr.py mints (secrets.token_urlsafe); anything else cannot be a ticket.
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _page(request, template: str, agreement_id: int | None = None, **context):
    """A page of the applicant's own login (`template` under h5/signing/, or under h5/ when it
    starts with lease/)."""
    applicant = _applicant(request)
    if applicant is None:
        return _to_login(request)
    if agreement_id is not None:
        agreement = Agreement.objects.filter(
            pk=agreement_id, family__main_applicant=applicant
        ).first()
        if agreement is None:
            raise Http404
        context["agreement"] = agreement
    path = f"h5/{template}" if template.startswith("lease/") else f"h5/signing/{template}"
    return render(request, path, {"applicant": applicant, **context})


@never_cache
@ensure_csrf_cookie
def signing_index(request):
    """网上签约: the family's agreements with their status and what can be done."""
    return _page(request, "index.html")


@never_cache
@ensure_csrf_cookie
def signing_qr(request, agreement_id: int):
    """「签约协议」 on a desktop: the QR code for the phone and the phone's progress, live."""
    steps = [(value, label) for value, label in Agreement.Step.choices if value]
    return _page(request, "qr.html", agreement_id, steps=steps)


def phone_page(request, template: str, *, agreement_id: int, action: str, **context):
    """A page of the phone steps: for the applicant's own login (as `_page`), or for the
    phone's signing session that a QR code started (no login; mobile_api/signer.py). A phone
    whose session ended or was taken over is told so plainly."""
    if _applicant(request) is not None:
        return _page(
            request, template, agreement_id, qr_code=_scanned_code(request, agreement_id), **context
        )
    template = f"h5/{template}" if template.startswith("lease/") else f"h5/signing/{template}"
    try:
        signer = signer_for(request, agreement_id=agreement_id, action=action)
    except DomainError as error:
        if error.code == "not_authenticated":
            return _to_login(request)
        return render(
            request,
            "h5/signing/open.html",
            {"token": "", "invalid": True, "title": "无法继续签约", "message": error.message},
            status=KIND_STATUS.get(error.kind, 400),
        )
    return render(
        request,
        template,
        {
            "applicant": signer.applicant,
            "agreement": signer.agreement,
            "phone_session": signer.session,
            "qr_code": _scanned_code(request, agreement_id, signer.session),
            **context,
        },
    )


def _scanned_code(request, agreement_id: int, session=None) -> str:
    """The 识别码 of the QR code this phone opened for the agreement, which the page shows so
    the applicant can compare it with the desktop's (the code on the screen is this
    agreement's, not one shown by someone else); "" when the page was not opened by a code.
    A logged-in phone that scanned its own desktop's code has a signing session too."""
    if session is None:
        try:
            session = phone_session_of(request)
        except DomainError:  # taken over or expired: the login still opens the page
            return ""
    if session is None or session.agreement_id != agreement_id:
        return ""
    return session.ticket.short_code


@never_cache
@ensure_csrf_cookie
def signing_sign(request, agreement_id: int):
    """The phone flow, one step at a time as the agreement's `step` says."""
    return phone_page(request, "sign.html", agreement_id=agreement_id, action="view")


@never_cache
@ensure_csrf_cookie
def signing_abandon(request, agreement_id: int):
    """《放弃签约声明书》."""
    return _page(request, "abandon.html", agreement_id)


@never_cache
@ensure_csrf_cookie
def qr_entry(request, token: str):
    """The URL inside the QR code, opened on the phone (WeChat's scanner, or a screenshot
    from the album). No login: the page opens the ticket through the API, which starts the
    phone's signing session, and goes on to the phone steps (the 电子合同 page)."""
    if not TOKEN_RE.match(token):
        return render(
            request,
            "h5/signing/open.html",
            {"token": "", "invalid": True},
            status=404,
        )
    response = render(request, "h5/signing/open.html", {"token": token})
    response["Referrer-Policy"] = "no-referrer"  # the token stays out of any Referer
    return response
