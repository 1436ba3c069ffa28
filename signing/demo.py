"""Demo data for signing: the default texts and a rent-subsidy agreement for the first demo
families, open for three days from loading, so a person trying the demo can sign."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from accounts.models import Family
from signing.agreements.seed import texts_seed
from signing.agreements.services import agreement_create, template_newest
from signing.models import Agreement, TemplateKind

DEMO_RANKS = (1, 2, 3)


def demo_signing_load(*, now: datetime | None = None) -> list[Agreement]:
    now = now or timezone.now()
    texts_seed()
    template = template_newest(kind=TemplateKind.RENT_SUBSIDY)  # new agreements: newest version
    assert template is not None  # texts_seed made version 1
    agreements = []
    for family in Family.objects.filter(rank__in=DEMO_RANKS).select_related("main_applicant"):
        existing = (
            Agreement.objects.filter(family=family, template__kind=template.kind)
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
