"""The outbox: sent after commit, failures recorded and retried, never sent twice."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction

from sms.models import DevInboxMessage, SmsMessage
from sms.providers import SmsSendError
from sms.services import (
    STALE_CLAIM_SECONDS,
    sms_message_deliver,
    sms_message_queue,
    sms_outbox_run_due,
)

pytestmark = pytest.mark.django_db(transaction=True)
T0 = datetime(2026, 1, 20, 9, 30, tzinfo=ZoneInfo("Asia/Shanghai"))


class FlakyProvider:
    """Refuses the first `failures` sends, then delivers to the dev inbox."""

    name = "flaky"
    failures = 0
    retryable = True
    sent: list[str] = []

    def send(self, *, phone, kind, params, text):
        if FlakyProvider.failures > 0:
            FlakyProvider.failures -= 1
            raise SmsSendError("gateway said no", retryable=FlakyProvider.retryable)
        FlakyProvider.sent.append(text)
        return "flaky-1"


@pytest.fixture
def flaky(settings):
    settings.SMS = {**settings.SMS, "PROVIDER": "tests.sms.test_outbox.FlakyProvider"}
    FlakyProvider.failures, FlakyProvider.retryable, FlakyProvider.sent = 0, True, []
    return FlakyProvider


def queue(now=T0, expires_at=None):
    with time_machine.travel(now, tick=False), transaction.atomic():
        return sms_message_queue(
            phone="13800138000",
            kind="verify_code",
            params=["123456", "5", "登录"],
            expires_at=expires_at,
            now=now,
        )


def test_failure_is_recorded_then_retried_after_backoff(flaky):
    flaky.failures = 1
    message = queue()
    message.refresh_from_db()
    assert message.status == SmsMessage.Status.RETRY
    assert message.last_error == "SmsSendError: gateway said no" and message.attempts == 1
    assert message.next_attempt_at == T0 + timedelta(seconds=5)
    assert sms_outbox_run_due(now=T0 + timedelta(seconds=4)) == 0
    assert sms_outbox_run_due(now=T0 + timedelta(seconds=5)) == 1
    message.refresh_from_db()
    assert message.status == SmsMessage.Status.SENT and message.attempts == 2
    assert message.payload == "" and len(flaky.sent) == 1


def test_gives_up_after_max_attempts_and_keeps_the_record(flaky, settings):
    settings.SMS = {**settings.SMS, "MAX_SEND_ATTEMPTS": 2}
    flaky.failures = 5
    message = queue()
    sms_outbox_run_due(now=T0 + timedelta(seconds=5))
    message.refresh_from_db()
    assert message.status == SmsMessage.Status.DEAD and message.attempts == 2
    assert message.payload == "" and message.last_error


def test_non_retryable_error_is_dead_at_once(flaky):
    flaky.failures, flaky.retryable = 1, False
    message = queue()
    message.refresh_from_db()
    assert message.status == SmsMessage.Status.DEAD and message.attempts == 1


def test_a_code_message_is_not_sent_after_the_code_expired(flaky):
    flaky.failures = 1
    message = queue(expires_at=T0 + timedelta(seconds=4))
    sms_outbox_run_due(now=T0 + timedelta(seconds=5))
    message.refresh_from_db()
    assert message.status == SmsMessage.Status.EXPIRED and not flaky.sent


def test_delivering_twice_sends_once():
    message = queue()
    assert sms_message_deliver(message_id=message.pk, now=T0 + timedelta(seconds=1)) is None
    assert DevInboxMessage.objects.count() == 1


def test_a_claim_left_by_a_dead_process_is_taken_back(flaky, monkeypatch):
    import sms.services

    # A worker claims the message and dies before calling the provider.
    monkeypatch.setattr(sms.services, "sms_message_deliver", lambda **kw: None)
    message = queue()
    monkeypatch.undo()
    assert sms.services._claim(message.pk, T0) is not None
    assert sms_outbox_run_due(now=T0 + timedelta(seconds=STALE_CLAIM_SECONDS - 1)) == 0
    assert sms_outbox_run_due(now=T0 + timedelta(seconds=STALE_CLAIM_SECONDS + 1)) == 1
    message.refresh_from_db()
    assert message.status == SmsMessage.Status.SENT and len(flaky.sent) == 1


def test_a_provider_crash_is_a_recorded_retryable_failure_not_an_error(flaky, monkeypatch):
    def crash(self, **kwargs):
        raise KeyError("bug in provider")

    monkeypatch.setattr(FlakyProvider, "send", crash)
    message = queue()  # the after-commit delivery must not raise into the request
    message.refresh_from_db()
    assert message.status == SmsMessage.Status.RETRY
    assert message.last_error.startswith("KeyError")
