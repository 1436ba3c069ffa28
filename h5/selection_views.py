"""网上选房 pages. Each renders a shell with the round's id; the page's script reads the
family's state from the API and writes only through it (mobile_api/selection_api.py), so
no selection rule lives here. The views only decide who may open a page and which round it
is about (a round the family has no seat in looks like no round at all)."""

from __future__ import annotations

from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from h5.views import _applicant, _to_login
from selection import selectors

PHASE_TITLES = {"pre": "预选声明", "formal": "正选声明"}


def _family_round(request, round_id: int):
    """(applicant, round) for a logged-in applicant with a seat in the round; a redirect to
    the login page for a visitor; 404 for anyone else."""
    applicant = _applicant(request)
    if applicant is None:
        return None, _to_login(request)
    family = getattr(applicant, "family", None)
    rnd = selectors.family_rounds(family=family).filter(pk=round_id).first() if family else None
    if rnd is None:
        raise Http404
    return rnd, None


def _page(request, round_id: int, template: str, **context):
    rnd, redirect = _family_round(request, round_id)
    if redirect is not None:
        return redirect
    return render(request, f"h5/selection/{template}", {"round": rnd, **context})


@never_cache
@ensure_csrf_cookie
def selection_index(request):
    """网上选房: the family's rounds, or straight to the only one."""
    applicant = _applicant(request)
    if applicant is None:
        return _to_login(request)
    family = getattr(applicant, "family", None)
    rounds = list(selectors.family_rounds(family=family)) if family else []
    if len(rounds) == 1:
        return HttpResponseRedirect(f"/h5/selection/{rounds[0].pk}/")
    return render(request, "h5/selection/index.html", {"rounds": rounds})


@never_cache
def selection_result_latest(request):
    """我的选房结果 from the home page: the result of the family's latest round."""
    applicant = _applicant(request)
    if applicant is None:
        return _to_login(request)
    family = getattr(applicant, "family", None)
    rnd = selectors.family_rounds(family=family).first() if family else None
    if rnd is None:
        return HttpResponseRedirect("/h5/selection/")
    return HttpResponseRedirect(f"/h5/selection/{rnd.pk}/result/")


@never_cache
@ensure_csrf_cookie
def selection_round(request, round_id: int):
    return _page(request, round_id, "round.html")


@never_cache
@ensure_csrf_cookie
def selection_declaration(request, round_id: int, phase: str):
    if phase not in PHASE_TITLES:
        raise Http404
    return _page(
        request, round_id, "declaration.html", phase=phase, phase_title=PHASE_TITLES[phase]
    )


@never_cache
@ensure_csrf_cookie
def selection_pre(request, round_id: int):
    return _page(request, round_id, "pre.html")


@never_cache
@ensure_csrf_cookie
def selection_formal(request, round_id: int):
    return _page(request, round_id, "formal.html")


@never_cache
@ensure_csrf_cookie
def selection_result(request, round_id: int):
    return _page(request, round_id, "result.html")


def broadcast_index(request):
    """房源信息播报 without a round: the family's latest round, or every round for a visitor."""
    applicant = _applicant(request)
    family = getattr(applicant, "family", None) if applicant else None
    mine = selectors.family_rounds(family=family).first() if family else None
    if mine is not None:
        return HttpResponseRedirect(f"/h5/broadcast/{mine.pk}/")
    rounds = selectors.round_list_public()
    if len(rounds) == 1:
        return HttpResponseRedirect(f"/h5/broadcast/{rounds[0].pk}/")
    return render(request, "h5/selection/broadcast_index.html", {"rounds": rounds})


def ledger_verify_page(request, round_id: int):
    """选房结果核验 (public, no login): a 核验码 from the result SMS, checked in the browser
    against the public allocation log (h5/static/h5/ledger-verify.js)."""
    rnd = selectors.round_get(round_id=round_id)
    if rnd is None:
        raise Http404
    code = request.GET.get("code", "")
    code = code if len(code) == 10 and all(c in "0123456789abcdefABCDEF" for c in code) else ""
    return render(request, "h5/selection/ledger_verify.html", {"round": rnd, "code": code})


def broadcast_page(request, round_id: int):
    """房源信息播报 (public, no login): the page reads GET /api/v1/broadcast/<id>/."""
    rnd = selectors.round_get(round_id=round_id)
    if rnd is None:
        raise Http404
    applicant = _applicant(request)
    family = getattr(applicant, "family", None) if applicant else None
    mine = family and selectors.family_rounds(family=family).filter(pk=round_id).exists()
    back = f"/h5/selection/{round_id}/" if mine else ("/h5/" if applicant else "")
    return render(request, "h5/selection/broadcast.html", {"round": rnd, "back": back})
