"""Agreements with their PDFs for the viewer and the records: signed (the applicant's
signature) and sealed (the organisation's seal) through the real PDF services, without the
phone flow (tests/signing/test_api_journey.py walks that)."""

from __future__ import annotations

from datetime import datetime, timedelta

from accounts.models import User
from signing.agreements import services
from signing.agreements.ca import dev_ca_ensure
from signing.agreements.documents import document_sign
from signing.agreements.signature import character_clean
from signing.models import Agreement, SignatureCharacter
from tests.signing.worlds import CLOSES, make_agreement, strokes

SIGNED_AT = CLOSES - timedelta(hours=2)  # inside the window of tests/signing/worlds.py
SEALED_AT = CLOSES + timedelta(days=1)  # the review may come after the window


def ca_for(settings, directory) -> None:
    """A development CA made before the agreements' times (January 2026)."""
    dev_ca_ensure(directory=directory, now=SIGNED_AT - timedelta(days=60))
    settings.SIGNING = {**settings.SIGNING, "CA_DIR": directory, "DEV_CA_AUTOCREATE": True}


def sign(agreement: Agreement, *, now: datetime = SIGNED_AT) -> Agreement:
    """The characters of the name and the signed PDF, as the submit step leaves them."""
    for index, expected in enumerate(agreement.signer_name):
        clean = character_clean(strokes=strokes(), width=300, height=300)
        SignatureCharacter.objects.create(
            agreement=agreement,
            attempt=agreement.attempt,
            index=index,
            expected=expected,
            strokes=clean.strokes,
            box_width=clean.width,
            box_height=clean.height,
            png=clean.png,
            png_sha256=clean.png_sha256,
            strokes_sha256=clean.strokes_sha256,
            drawn_at=now,
        )
    Agreement.objects.filter(pk=agreement.pk).update(
        status="signed", step=Agreement.Step.SUBMITTED, signed_at=now
    )
    agreement.refresh_from_db()
    document_sign(agreement=agreement, now=now)
    return agreement


def reviewer() -> User:
    return User.objects.get_or_create(username="viewer-reviewer", defaults={"is_staff": True})[0]


def seal(agreement: Agreement, *, now: datetime = SEALED_AT) -> Agreement:
    return services.agreement_approve(agreement_id=agreement.pk, actor=reviewer(), now=now)


def sealed_subsidy(*, name: str = "王小明"):
    """A 租金补贴协议 signed and sealed; returns (agreement, applicant)."""
    agreement, applicant = make_agreement(name=name)
    agreement = seal(sign(agreement))
    agreement.refresh_from_db()
    return agreement, applicant
