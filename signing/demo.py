"""Demo data for signing: the default texts and a rent-subsidy agreement for the first demo
families, open for three days from loading, so a person trying the demo can sign."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from accounts.models import Family
from signing.models import Agreement, AgreementTemplate, TemplateKind
from signing.seed import texts_seed
from signing.services import agreement_create

DEMO_RANKS = (1, 2, 3)


def demo_signing_load(*, now: datetime | None = None) -> list[Agreement]:
    now = now or timezone.now()
    texts_seed()
    template = AgreementTemplate.objects.get(kind=TemplateKind.RENT_SUBSIDY, version=1)
    agreements = []
    for family in Family.objects.filter(rank__in=DEMO_RANKS).select_related("main_applicant"):
        existing = (
            Agreement.objects.filter(family=family, template=template)
            .order_by("-created_at")
            .first()
        )
        if existing is None or (existing.status == Agreement.Status.VOID):
            existing = agreement_create(
                family=family,
                template=template,
                window_starts_at=now - timedelta(minutes=5),
                window_ends_at=now + timedelta(days=3),
                actor=None,
                now=now,
            )
        agreements.append(existing)
    return agreements
