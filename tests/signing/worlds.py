"""An agreement ready to sign, with time pinned around its window."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from core.context import RequestContext
from signing.agreements.seed import texts_seed
from signing.agreements.services import agreement_create
from signing.models import AgreementTemplate, TemplateKind
from tests.factories import FamilyFactory

TZ = ZoneInfo("Asia/Shanghai")
OPENS = datetime(2026, 1, 20, 9, 30, tzinfo=TZ)  # guide 001's window
CLOSES = datetime(2026, 1, 23, 18, 0, tzinfo=TZ)
CTX = RequestContext(ip="10.2.0.1", user_agent="pytest-phone")


def strokes(width=300, height=300, t0=0):
    """Two plausible strokes inside a box."""
    return [
        [{"x": 60 + i * 10, "y": 80 + i * 4, "t": t0 + i * 20, "p": 0.5} for i in range(12)],
        [{"x": 150, "y": 40 + i * 15, "t": t0 + 400 + i * 20, "p": 0.6} for i in range(14)],
    ]


def make_agreement(*, name="王小明", now=OPENS):
    texts_seed()
    family = FamilyFactory(main_applicant__real_name=name)
    template = AgreementTemplate.objects.get(kind=TemplateKind.RENT_SUBSIDY, version=1)
    agreement = agreement_create(
        family=family,
        template=template,
        window_starts_at=OPENS,
        window_ends_at=CLOSES,
        actor=None,
        now=now,
    )
    from accounts.services import applicant_user_ensure

    applicant_user_ensure(applicant=family.main_applicant)
    return agreement, family.main_applicant
