"""网上签约 of the lease after selection (guide 000, section 三) and 「我的」. Each view renders
a shell; the page's script reads the lease from the API (mobile_api/lease_api.py) and writes
only through it, so no signing rule lives here: the API's `stage` says what the page shows.
The views only decide who may open a page (a lease of another family looks like none)."""

from __future__ import annotations

from django.http import Http404, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import ensure_csrf_cookie

from core.errors import DomainError
from h5.signing_views import phone_page
from h5.views import _applicant, _to_login
from mobile_api.signer import signer_for
from signing.models import Lease


def _own_lease(applicant, **lookup) -> Lease:
    lease = (
        Lease.objects.select_related("agreement")
        .filter(agreement__family__main_applicant=applicant, **lookup)
        .first()
    )
    if lease is None:
        raise Http404
    return lease


def _page(request, template: str, lease_id: int | None = None, **context):
    applicant = _applicant(request)
    if applicant is None:
        return _to_login(request)
    if lease_id is not None:
        context["lease"] = _own_lease(applicant, pk=lease_id)
    return render(request, f"h5/lease/{template}", {"applicant": applicant, **context})


@never_cache
@ensure_csrf_cookie
def lease_start(request):
    """「去签约」 / 「租赁合同签约」: the page asks the API for the family's lease (created on
    first use) and goes on to it."""
    return _page(request, "start.html")


@never_cache
@ensure_csrf_cookie
def lease_hub(request, lease_id: int):
    """The lease, stage by stage: 完善承租信息 → 人脸识别 → 签订合同 → 押金缴纳 → 待审核."""
    return _page(request, "hub.html", lease_id)


@never_cache
@ensure_csrf_cookie
def lease_deposit(request, lease_id: int):
    """押金缴纳 on the phone (the deposit QR code's page), and the cashier's return page: for
    the applicant's own login or the phone's signing session of the deposit code."""
    if _applicant(request) is not None:
        return _page(request, "deposit.html", lease_id)
    agreement_id = Lease.objects.filter(pk=lease_id).values_list("agreement_id", flat=True).first()
    if agreement_id is None:
        raise Http404
    if "out_trade_no" in request.GET and not _signing_session(request, agreement_id):
        # Back from the cashier on a phone that paid the desktop's code (WeChat Pay Native)
        # without logging in: nothing of the lease to show it; the desktop has the result.
        return render(request, "h5/lease/paid_elsewhere.html")
    lease = Lease.objects.get(pk=lease_id)
    return phone_page(
        request, "lease/deposit.html", agreement_id=agreement_id, action="deposit", lease=lease
    )


def _signing_session(request, agreement_id: int) -> bool:
    """Whether the request carries a phone's signing session for the deposit (whatever its
    state). One for another stage (the phone that signed the contract from the desktop's code,
    then paid its WeChat Pay code) is none for this page."""
    try:
        signer_for(request, agreement_id=agreement_id, action="deposit")
    except DomainError as error:
        return error.code not in ("not_authenticated", "signing_session_scope")
    return True


@never_cache
def lease_deposit_by_agreement(request, agreement_id: int):
    """The deposit QR code names an agreement: its lease's deposit page."""
    applicant = _applicant(request)
    if applicant is None:
        return _to_login(request)
    lease = _own_lease(applicant, agreement_id=agreement_id)
    return HttpResponseRedirect(f"/h5/lease/{lease.pk}/deposit/")


@never_cache
@ensure_csrf_cookie
def me_page(request):
    """「我的」."""
    return _page(request, "me.html")


@never_cache
@ensure_csrf_cookie
def me_leases(request):
    """网上签约记录: the family's leases, each with 「查看详情」."""
    return _page(request, "records.html")
