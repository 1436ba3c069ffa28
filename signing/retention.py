"""The retention schedule (docs/RETENTION.md): what personal and operational data is deleted,
and when. `retention_run(now)` deletes every row that is due; `manage.py data_retention` runs
it once, and the clock runs it once a day (`retention_daily`, in settings.CLOCK_EXTRA_TASKS).

It lives in signing, the highest domain layer, since it deletes rows of every app below.
A row is due when its reference time plus its period is at or before `now` (so at exactly
the period's end it goes, one second earlier it stays). Audit entries, evidence, evidence
heads, agreements and their documents, the allocation log and payment records are never
deleted here: they are kept as the schedule says (the lease's term and after), and deleting
them is a decision taken outside the system with an archive.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

logger = logging.getLogger("anju.retention")

# Days each kind is kept after its reference time (settings.RETENTION overrides any of them).
DEFAULT_DAYS: dict[str, int] = {
    "sms_codes": 30,  # after the code expired
    "sms_messages": 180,  # after the message was created, once sent or given up
    "qr_scans": 180,  # after the scan
    "device_sessions": 180,  # after the login ended (active logins are kept)
    "published_events": 30,  # after the relay published the event
    "card_photos": 30,  # after the lease was approved (sealed) or ended (void / abandoned)
}
BATCH = 1000


def period(kind: str) -> timedelta:
    days = getattr(settings, "RETENTION", {}).get(kind, DEFAULT_DAYS[kind])
    return timedelta(days=days)


@dataclass(frozen=True)
class Rule:
    kind: str
    due: Callable[[datetime], QuerySet]  # the rows due when the cut-off is `cut`


def _sms_codes(cut: datetime) -> QuerySet:
    from sms.models import SmsCode

    return SmsCode.objects.filter(expires_at__lte=cut)


def _sms_messages(cut: datetime) -> QuerySet:
    from sms.models import SmsMessage

    done = [SmsMessage.Status.SENT, SmsMessage.Status.DEAD, SmsMessage.Status.EXPIRED]
    return SmsMessage.objects.filter(status__in=done, created_at__lte=cut)


def _qr_scans(cut: datetime) -> QuerySet:
    from signing.models import QrScan

    return QrScan.objects.filter(at__lte=cut)


def _device_sessions(cut: datetime) -> QuerySet:
    from accounts.models import DeviceSession

    return DeviceSession.objects.filter(ended_at__isnull=False, ended_at__lte=cut)


def _published_events(cut: datetime) -> QuerySet:
    from events.models import Event

    return Event.objects.filter(published_at__isnull=False, published_at__lte=cut)


def _card_photos(cut: datetime) -> QuerySet:
    from signing.models import Agreement, CardPhoto

    sealed = Q(
        lease__agreement__status=Agreement.Status.SEALED, lease__agreement__sealed_at__lte=cut
    )
    ended = Q(
        lease__agreement__status__in=[Agreement.Status.VOID, Agreement.Status.ABANDONED],
        lease__agreement__closed_at__lte=cut,
    )
    return CardPhoto.objects.filter(sealed | ended)


RULES: tuple[Rule, ...] = (
    Rule("sms_codes", _sms_codes),
    Rule("sms_messages", _sms_messages),
    Rule("qr_scans", _qr_scans),
    Rule("device_sessions", _device_sessions),
    Rule("published_events", _published_events),
    Rule("card_photos", _card_photos),
)


def retention_run(*, now: datetime | None = None) -> dict[str, int]:
    """Delete every row that is due at `now`, in batches; returns rows deleted per kind."""
    now = now or timezone.now()
    deleted: dict[str, int] = {}
    for rule in RULES:
        cut = now - period(rule.kind)
        total = 0
        while True:
            with transaction.atomic():
                ids = list(rule.due(cut).order_by("pk").values_list("pk", flat=True)[:BATCH])
                if not ids:
                    break
                model = rule.due(cut).model
                model.objects.filter(pk__in=ids).delete()
            total += len(ids)
        deleted[rule.kind] = total
        if total:
            logger.info("retention: %d %s deleted", total, rule.kind)
    return deleted


def retention_daily(*, now: datetime) -> dict[str, int] | None:
    """The clock's daily run: the first tick at or after settings.RETENTION_HOUR (local
    time) of each day runs `retention_run`, once across every clock process (a cache key
    per day, added atomically). Returns what it deleted, or None when it was not its turn."""
    local = timezone.localtime(now)
    if local.hour < getattr(settings, "RETENTION_HOUR", 3):
        return None
    if not cache.add(f"retention:{local.date().isoformat()}", 1, timeout=2 * 24 * 3600):
        return None
    return retention_run(now=now)
