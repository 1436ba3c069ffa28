"""Every SMS code rule, with pinned time at its boundaries."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import transaction

from core.errors import Throttled, ValidationFailed
from sms.models import DevInboxMessage, Purpose, SmsCode, SmsMessage
from sms.services import sms_code_send, sms_code_verify

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 1, 20, 9, 30, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
PHONE = "13800138000"


def send(now=T0, *, subject="s1", phone=PHONE, ip="10.0.0.1", purpose=Purpose.LOGIN):
    # The clock is frozen too: delivery after commit reads timezone.now().
    with time_machine.travel(now, tick=False):
        return sms_code_send(purpose=purpose, subject=subject, phone=phone, ip=ip, now=now)


def last_code(phone=PHONE) -> str:
    text = DevInboxMessage.objects.filter(phone=phone).order_by("-id").first().text
    return re.search(r"验证码为(\d{6})", text).group(1)


def verify(
    code, now=T0 + timedelta(seconds=10), *, subject="s1", phone=PHONE, purpose=Purpose.LOGIN
):
    sms_code_verify(purpose=purpose, subject=subject, phone=phone, code=code, now=now)


def error_code(fn, *args, **kwargs) -> str:
    with pytest.raises((ValidationFailed, Throttled)) as caught:
        fn(*args, **kwargs)
    return caught.value.code


def test_code_is_six_digits_sent_after_commit_and_stored_only_hashed():
    with time_machine.travel(T0, tick=False), transaction.atomic():
        send()
        assert not DevInboxMessage.objects.exists()  # nothing leaves inside the transaction
        assert SmsMessage.objects.get().status == SmsMessage.Status.QUEUED
    code = last_code()
    assert re.fullmatch(r"\d{6}", code)
    row = SmsCode.objects.get()
    assert code not in row.code_hash and len(row.code_hash) == 64
    message = SmsMessage.objects.get()
    assert message.status == SmsMessage.Status.SENT and message.payload == ""
    verify(code)


def test_rolled_back_send_sends_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        send()
        raise RuntimeError
    assert not DevInboxMessage.objects.exists() and not SmsMessage.objects.exists()


def test_expires_after_five_minutes():
    send()
    code = last_code()
    assert error_code(verify, code, now=T0 + timedelta(seconds=300)) == "sms_code_expired"
    send(subject="s2", now=T0 + timedelta(seconds=1))
    verify(last_code(), subject="s2", now=T0 + timedelta(seconds=300))  # 299 s old: still live


def test_resend_cooldown_sixty_seconds():
    send()
    assert error_code(send, T0 + timedelta(seconds=59)) == "sms_resend_too_soon"
    send(T0 + timedelta(seconds=60))
    assert SmsCode.objects.count() == 2


def test_cooldown_error_says_how_long_to_wait():
    send()
    with pytest.raises(Throttled) as caught:
        send(T0 + timedelta(seconds=45))
    assert caught.value.retry_after == 15


def test_newer_code_replaces_older():
    send()
    old = last_code()
    send(T0 + timedelta(seconds=60))
    new = last_code()
    if old != new:
        assert error_code(verify, old, now=T0 + timedelta(seconds=61)) == "sms_code_invalid"
    verify(new, now=T0 + timedelta(seconds=62))


def test_dead_after_five_wrong_attempts_even_for_the_right_code():
    send()
    code = last_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(4):
        assert error_code(verify, wrong) == "sms_code_invalid"
    assert error_code(verify, wrong) == "sms_code_locked"
    assert error_code(verify, code) == "sms_code_locked"
    assert SmsCode.objects.get().attempts == 5


def test_four_wrong_attempts_then_the_right_one_works():
    send()
    code = last_code()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(4):
        error_code(verify, wrong)
    verify(code)


def test_code_is_single_use():
    send()
    code = last_code()
    verify(code)
    assert error_code(verify, code) == "sms_code_used"


def test_a_code_never_requested_is_asked_for_first():
    """No code was sent for this purpose and person: the answer says to request one, once,
    not 「验证码错误」 with 「验证码不正确」 beside it (nothing was wrong with a code yet)."""
    send(purpose=Purpose.LOGIN)  # a code for another purpose does not count
    with pytest.raises(ValidationFailed) as caught:
        verify("123456", purpose=Purpose.SIGN)
    assert caught.value.code == "sms_code_invalid"
    assert caught.value.message == "请先获取验证码"
    assert caught.value.fields == {"code": ["请先获取验证码"]}


def test_bound_to_purpose():
    send(purpose=Purpose.LOGIN)
    assert error_code(verify, last_code(), purpose=Purpose.SIGN) == "sms_code_invalid"


def test_bound_to_phone():
    send()
    assert error_code(verify, last_code(), phone="13900139000") == "sms_code_invalid"


def test_daily_cap_per_phone_resets_at_local_midnight(settings):
    settings.SMS = {**settings.SMS, "DAILY_CAP_PER_PHONE": 3}
    day = datetime(2026, 1, 20, 8, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    for i in range(3):  # different subjects, same phone
        send(day + timedelta(minutes=i), subject=f"s{i}")
    assert error_code(send, day + timedelta(minutes=5), subject="s9") == "sms_daily_cap"
    last_second = datetime(2026, 1, 20, 23, 59, 59, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert error_code(send, last_second, subject="s9") == "sms_daily_cap"
    send(last_second + timedelta(seconds=1), subject="s9")  # a new day in Shenzhen


def test_daily_cap_applies_to_unknown_subjects_too(settings):
    settings.SMS = {**settings.SMS, "DAILY_CAP_PER_PHONE": 2}
    send(phone="", subject="ghost")
    send(T0 + timedelta(minutes=1), phone="", subject="ghost")
    assert error_code(send, T0 + timedelta(minutes=2), phone="", subject="ghost") == "sms_daily_cap"


def test_hourly_cap_per_ip(settings):
    settings.SMS = {**settings.SMS, "HOURLY_CAP_PER_IP": 2}
    send(subject="a", phone="13800000001")
    send(T0 + timedelta(minutes=1), subject="b", phone="13800000002")
    blocked = T0 + timedelta(minutes=59, seconds=59)
    assert error_code(send, blocked, subject="c", phone="13800000003") == "sms_ip_throttled"
    send(T0 + timedelta(hours=1, seconds=1), subject="c", phone="13800000003")
    send(T0 + timedelta(minutes=2), subject="d", phone="13800000004", ip="10.0.0.2")


def test_unknown_subject_gets_a_row_and_no_message_and_never_verifies():
    send(phone="", subject="ghost")
    assert SmsCode.objects.get().phone == ""
    assert not SmsMessage.objects.exists()
    assert error_code(verify, "000000", subject="ghost", phone="") == "sms_code_invalid"
    assert error_code(send, T0 + timedelta(seconds=30), phone="", subject="ghost") == (
        "sms_resend_too_soon"
    )


def test_verify_without_any_code():
    assert error_code(verify, "123456", subject="nobody") == "sms_code_invalid"


def test_comparison_is_constant_time(monkeypatch):
    """The hash comparison goes through hmac.compare_digest, not ==."""
    import sms.crypto

    calls = []
    real = sms.crypto.hmac.compare_digest
    monkeypatch.setattr(
        sms.crypto.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b)
    )
    send()
    verify(last_code())
    assert calls
