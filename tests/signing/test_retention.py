"""The retention schedule (docs/RETENTION.md, signing/retention.py): each kind is deleted exactly
when its period has passed (kept at −1 s, gone at 0 and +1 s), nothing else is touched, and
audit entries and evidence are kept. The clock runs it once a day."""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import call_command
from django.db.models import QuerySet

from accounts.models import AuditEntry, DeviceSession
from core.context import RequestContext
from events.models import Event
from signing import retention
from signing.agreements.evidence import evidence_append
from signing.lease.services import lease_card_photo_upload, lease_start
from signing.models import Agreement, CardPhoto, Evidence, QrScan, QrTicket
from sms.models import Purpose, SmsCode, SmsMessage
from tests.factories import UserFactory
from tests.signing.lease_worlds import NOW, make_lease_world, photo_bytes
from tests.worlds import TZ

T = datetime(2026, 3, 3, 12, 0, tzinfo=TZ)  # every row's reference time
CTX = RequestContext(ip="10.0.0.2", user_agent="pytest")


@pytest.fixture
def lease(db):
    with time_machine.travel(NOW, tick=False):
        world = make_lease_world()
        lease = lease_start(applicant=world.applicant, ctx=CTX, now=NOW)
        lease_card_photo_upload(
            lease=lease,
            applicant=world.applicant,
            side=CardPhoto.Side.FRONT,
            data=photo_bytes(),
            filename="card.jpg",
            declared_type="image/jpeg",
            ctx=CTX,
            now=NOW,
        )
    return lease


def _sms_code(at: datetime) -> QuerySet:
    code = SmsCode.objects.create(
        purpose=Purpose.LOGIN,
        subject=f"id:{uuid.uuid4().hex}",
        phone="13800138000",
        salt="s",
        code_hash="h",
        created_at=at - timedelta(minutes=5),
        expires_at=at,
    )
    return SmsCode.objects.filter(pk=code.pk)


def _sms_message(at: datetime) -> QuerySet:
    message = SmsMessage.objects.create(
        phone="13800138000",
        kind="login_code",
        status=SmsMessage.Status.SENT,
        next_attempt_at=at,
        created_at=at,
        sent_at=at,
    )
    return SmsMessage.objects.filter(pk=message.pk)


def _qr_scan(at: datetime, agreement: Agreement) -> QuerySet:
    ticket = QrTicket.objects.create(
        agreement=agreement,
        token=uuid.uuid4().hex,
        short_code=uuid.uuid4().hex[:12],
        created_at=at,
        expires_at=at + timedelta(days=1),
    )
    scan = QrScan.objects.create(ticket=ticket, at=at, accepted=True)
    return QrScan.objects.filter(pk=scan.pk)


def _device_session(at: datetime) -> QuerySet:
    device = DeviceSession.objects.create(
        user=UserFactory(),
        session_key=uuid.uuid4().hex,
        provider="dev_sms",
        created_at=at - timedelta(hours=1),
        ended_at=at,
        end_reason=DeviceSession.EndReason.LOGOUT,
    )
    return DeviceSession.objects.filter(pk=device.pk)


def _published_event(at: datetime) -> QuerySet:
    event = Event.objects.create(
        stream=f"test.{uuid.uuid4().hex}", seq=1, type="t", data={}, at=at, published_at=at
    )
    return Event.objects.filter(pk=event.pk)


def _card_photo(at: datetime, agreement: Agreement, how: str) -> QuerySet:
    if how == "sealed":
        Agreement.objects.filter(pk=agreement.pk).update(
            status=Agreement.Status.SEALED, signed_at=at - timedelta(hours=1), sealed_at=at
        )
    else:
        Agreement.objects.filter(pk=agreement.pk).update(status=how, closed_at=at)
    return CardPhoto.objects.filter(lease__agreement=agreement)


CASES = [
    ("sms_codes", "sms_code"),
    ("sms_messages", "sms_message"),
    ("qr_scans", "qr_scan"),
    ("device_sessions", "device_session"),
    ("published_events", "published_event"),
    ("card_photos", "sealed"),
    ("card_photos", Agreement.Status.VOID),
    ("card_photos", Agreement.Status.ABANDONED),
]


def _make(case: str, at: datetime, agreement: Agreement) -> QuerySet:
    if case in ("sealed", Agreement.Status.VOID, Agreement.Status.ABANDONED):
        return _card_photo(at, agreement, case)
    if case == "qr_scan":
        return _qr_scan(at, agreement)
    return {
        "sms_code": _sms_code,
        "sms_message": _sms_message,
        "device_session": _device_session,
        "published_event": _published_event,
    }[case](at)


@pytest.mark.parametrize(("kind", "case"), CASES)
@pytest.mark.parametrize(("offset", "kept"), [(-1, True), (0, False), (1, False)])
def test_each_kind_goes_exactly_when_its_period_ends(lease, kind, case, offset, kept):
    rows = _make(case, T, lease.agreement)
    assert rows.exists()
    with time_machine.travel(T + retention.period(kind) + timedelta(seconds=offset), tick=False):
        deleted = retention.retention_run()
    assert rows.exists() is kept
    assert deleted[kind] == (0 if kept else 1)  # one row (one photo) made per case


def test_what_is_not_due_or_never_pruned_stays(lease):
    agreement = lease.agreement
    long_after = T + timedelta(days=3650)
    # Not due whatever the time: an active login, an unpublished event, a queued message,
    # the photo of a lease still in progress.
    active = DeviceSession.objects.create(
        user=UserFactory(), session_key="active", provider="dev_sms", created_at=T
    )
    unpublished = Event.objects.create(stream="test.kept", seq=1, type="t", data={}, at=T)
    queued = SmsMessage.objects.create(
        phone="13800138000", kind="k", next_attempt_at=T, created_at=T
    )
    # Kept as the schedule says: audit entries and the evidence chain.
    audit = AuditEntry.objects.create(action="test.kept", at=T)
    with time_machine.travel(T, tick=False):
        evidence_append(agreement=agreement, kind="contract_viewed", actor=None, ctx=CTX, now=T)
    evidence_count = Evidence.objects.filter(agreement=agreement).count()
    with time_machine.travel(long_after, tick=False):
        retention.retention_run()
    assert DeviceSession.objects.filter(pk=active.pk).exists()
    assert Event.objects.filter(pk=unpublished.pk).exists()
    assert SmsMessage.objects.filter(pk=queued.pk).exists()
    assert CardPhoto.objects.filter(lease=lease).exists()  # pending agreement
    assert AuditEntry.objects.filter(pk=audit.pk).exists()
    assert Evidence.objects.filter(agreement=agreement).count() == evidence_count
    assert Agreement.objects.filter(pk=agreement.pk).exists()


def test_the_command_runs_it_and_a_second_run_deletes_nothing(lease):
    rows = _sms_code(T)
    out = io.StringIO()
    with time_machine.travel(T + timedelta(days=31), tick=False):
        call_command("data_retention", stdout=out)
        assert "sms_codes: 1 deleted" in out.getvalue()
        assert not rows.exists()
        again = io.StringIO()
        call_command("data_retention", stdout=again)
        assert "sms_codes: 0 deleted" in again.getvalue()


def test_the_clock_runs_it_once_a_day_from_the_configured_hour(db, settings):
    settings.RETENTION_HOUR = 3
    cache.clear()
    day = datetime(2026, 6, 1, 2, 59, 59, tzinfo=TZ)
    rows = _sms_code(day - timedelta(days=40))
    assert retention.retention_daily(now=day) is None  # before the hour
    assert rows.exists()
    at_three = day + timedelta(seconds=1)
    assert retention.retention_daily(now=at_three)["sms_codes"] == 1
    assert not rows.exists()
    later = _sms_code(day - timedelta(days=40))
    assert retention.retention_daily(now=at_three + timedelta(hours=5)) is None  # done today
    assert later.exists()
    assert retention.retention_daily(now=at_three + timedelta(days=1))["sms_codes"] == 1
    assert "signing.retention.retention_daily" in settings.CLOCK_EXTRA_TASKS
