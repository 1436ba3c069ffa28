"""The agreement's PDFs: rendered and signed on the applicant's behalf at 已签字, sealed by
the organisation as an incremental update at 已盖章 (signing/agreements/pdf.py does the PDF work)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from signing.models import Agreement, AgreementDocument, SignatureCharacter


def document_sign(*, agreement: Agreement, now: datetime) -> AgreementDocument:
    """Render the agreement with this attempt's signature characters and sign it with the
    per-agreement certificate. Called only by the submit step, after the face check and the
    SMS code, so the applicant's key is never used before both."""
    from signing.agreements.pdf import agreement_pdf_render, pdf_sign_applicant

    characters = list(
        SignatureCharacter.objects.filter(agreement=agreement, attempt=agreement.attempt).order_by(
            "index"
        )
    )
    pdf = pdf_sign_applicant(
        pdf=agreement_pdf_render(agreement=agreement, characters=characters),
        agreement=agreement,
        now=now,
    )
    return AgreementDocument.objects.create(
        agreement=agreement,
        attempt=agreement.attempt,
        stage=AgreementDocument.Stage.SIGNED,
        pdf=pdf,
        sha256=hashlib.sha256(pdf).hexdigest(),
        created_at=now,
    )


def document_seal(*, agreement: Agreement, now: datetime) -> AgreementDocument:
    from signing.agreements.pdf import pdf_seal

    signed = AgreementDocument.objects.get(
        agreement=agreement, attempt=agreement.attempt, stage=AgreementDocument.Stage.SIGNED
    )
    pdf = pdf_seal(pdf=bytes(signed.pdf), agreement=agreement, now=now)
    return AgreementDocument.objects.create(
        agreement=agreement,
        attempt=agreement.attempt,
        stage=AgreementDocument.Stage.SEALED,
        pdf=pdf,
        sha256=hashlib.sha256(pdf).hexdigest(),
        created_at=now,
    )


def document_latest(*, agreement: Agreement) -> AgreementDocument | None:
    return (
        AgreementDocument.objects.filter(agreement=agreement, attempt=agreement.attempt)
        .order_by("-created_at", "-id")
        .first()
    )
