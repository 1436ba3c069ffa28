"""「查看」: the agreement (or a lease's deposit receipt) page by page, with 打印 and 保存 at
its top right as guide 001 shows them. Phone browsers often cannot show a PDF inside a page,
so the pages are images drawn on the server (mobile_api/document_api.py); 打印 opens the PDF
itself (the browser prints it) and 保存 downloads it. When there is nothing to show yet, the
page says why, in the service's words. Another family's agreement looks like none."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from core.errors import DomainError
from h5.views import _applicant, _to_login
from signing.agreements.preview import ViewedPdf, agreement_pdf_for_view
from signing.lease.deposit import receipt_pdf_for_view
from signing.models import Agreement, Lease

# Where 「‹ 返回」 goes: the page the viewer was opened from (?from=…), else the records.
BACK = {
    "records": ("/h5/me/leases/", "签约记录"),
    "signing": ("/h5/signing/", "网上签约"),
}


def _own_agreement(request, agreement_id: int):
    applicant = _applicant(request)
    if applicant is None:
        return None
    agreement = (
        Agreement.objects.select_related("template")
        .filter(pk=agreement_id, family__main_applicant=applicant)
        .first()
    )
    if agreement is None:
        raise Http404
    return agreement


def _viewer(request, agreement: Agreement, *, kind: str, load, api_base: str):
    origin = request.GET.get("from", "")
    origin = origin if origin in BACK else "records"
    back_url, back_label = BACK[origin]
    query = f"?from={origin}"
    context = {
        "agreement": agreement,
        "kind": kind,
        "back_url": back_url,
        "back_label": back_label,
        "heading": "押金收据" if kind == "receipt" else agreement.title,
        "other": None,
    }
    lease = Lease.objects.filter(agreement=agreement).first()
    # A lease's two documents, one tap apart (the receipt exists once the lease is approved,
    # that is sealed: signing/lease/deposit.py `deposit_receipt_pdf_for`).
    if kind == "receipt":
        context["other"] = (f"/h5/signing/{agreement.pk}/view/{query}", "查看合同")
    elif lease is not None and agreement.status == Agreement.Status.SEALED:
        context["other"] = (f"/h5/signing/{agreement.pk}/receipt/{query}", "查看押金收据")
    try:
        viewed: ViewedPdf = load(lease)
        sizes = viewed.page_sizes()
    except DomainError as exc:
        context["not_ready"] = exc.message
        return render(request, "h5/signing/view.html", context)
    pdf_url = f"{api_base}/"
    context.update(
        heading=viewed.title,
        pdf_url=pdf_url,
        download_url=f"{pdf_url}?download=1",
        filename=viewed.filename,
        pages=[
            {
                "number": n,
                "src": f"{api_base}/pages/{n}/?v={viewed.version}",
                # the page's proportions, so the list does not jump while images load
                "width": 1000,
                "height": round(1000 * height / width),
            }
            for n, (width, height) in enumerate(sizes, start=1)
        ],
    )
    return render(request, "h5/signing/view.html", context)


@never_cache
def agreement_view(request, agreement_id: int):
    """The agreement's current PDF (the sealed one once sealed)."""
    agreement = _own_agreement(request, agreement_id)
    if agreement is None:
        return _to_login(request)
    return _viewer(
        request,
        agreement,
        kind="agreement",
        load=lambda lease: agreement_pdf_for_view(agreement=agreement),
        api_base=f"/api/v1/signing/agreements/{agreement.pk}/document",
    )


@never_cache
def receipt_view(request, agreement_id: int):
    """A lease's 押金收据 (once the lease is approved)."""
    agreement = _own_agreement(request, agreement_id)
    if agreement is None:
        return _to_login(request)
    lease = Lease.objects.filter(agreement=agreement).first()
    if lease is None:
        raise Http404
    return _viewer(
        request,
        agreement,
        kind="receipt",
        load=lambda lease: receipt_pdf_for_view(lease=lease),
        api_base=f"/api/v1/lease/{lease.pk}/receipt",
    )
