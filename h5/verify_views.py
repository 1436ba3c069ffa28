"""/verify/<code>/: the public page a sealed PDF points to. Shows what the system holds for
the code, and checks an uploaded PDF's signatures and whether it is the stored document."""

from __future__ import annotations

from django import forms
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from signing.agreements.documents import document_latest
from signing.agreements.pdf_verify import pdf_record_get, pdf_validate
from signing.models import Agreement

MAX_PDF_BYTES = 10 * 1024 * 1024


class UploadForm(forms.Form):
    pdf = forms.FileField(label="协议PDF文件")

    def clean_pdf(self):
        upload = self.cleaned_data["pdf"]
        if upload.size > MAX_PDF_BYTES:
            raise forms.ValidationError("文件过大（最大10MB）")
        head = upload.read(5)
        upload.seek(0)
        if head != b"%PDF-":
            raise forms.ValidationError("不是PDF文件")
        return upload


@require_http_methods(["GET", "POST"])
def verify_page(request, code: str):
    agreement = Agreement.objects.filter(verification_code=code.upper()[:16]).first()
    document = document_latest(agreement=agreement) if agreement else None
    form = UploadForm(request.POST or None, request.FILES or None)
    report = record = None
    if request.method == "POST" and form.is_valid():
        report = pdf_validate(pdf=form.cleaned_data["pdf"].read())
        record = pdf_record_get(report=report)
    status = (
        404
        if agreement is None
        else (400 if request.method == "POST" and not form.is_valid() else 200)
    )
    return render(
        request,
        "h5/verify.html",
        {
            "code": code,
            "agreement": agreement,
            "document": document,
            "form": form,
            "report": report,
            "record": record,
            "matches_code": bool(report and report.verification_code == code.upper()),
        },
        status=status,
    )
