"""Asking for a login code tells nothing about the ID number, not even by its time: the
request does the same work whether or not the number is registered and never waits on the
SMS provider; the outbox worker delivers after the response (issue 15, item 6)."""

from __future__ import annotations

import copy
import statistics
import threading
import time

import pytest
from django.db import connection
from django.test import Client

from sms import services
from sms.models import DevInboxMessage, SmsCode, SmsMessage
from sms.services import sms_outbox_loop, sms_outbox_run_due
from tests.factories import FamilyFactory, id_number_for
from tests.fakes.tencent_cloud import FakeSms

pytestmark = pytest.mark.django_db(transaction=True)

SEND = "/api/v1/auth/sms-code/"
GATEWAY_DELAY = 0.15  # seconds the slow fake gateway takes to answer SendSms
ROUNDS = 15  # requests per kind, interleaved


def ask(id_number: str, *, ip: str) -> float:
    """POST a code request from `ip`; the seconds the answer took."""
    client = Client(REMOTE_ADDR=ip)
    started = time.perf_counter()
    response = client.post(SEND, {"id_number": id_number}, content_type="application/json")
    took = time.perf_counter() - started
    assert response.status_code == 202, response.content
    return took


def test_registered_and_unknown_write_the_same_rows_and_send_nothing_in_the_request():
    applicant = FamilyFactory().main_applicant
    ask(applicant.id_number, ip="10.9.0.1")
    ask(id_number_for(991), ip="10.9.0.2")

    # Two codes and two outbox rows, neither delivered by the request.
    assert SmsCode.objects.count() == 2
    assert sorted(SmsMessage.objects.values_list("phone", "status")) == [
        ("", SmsMessage.Status.QUEUED),
        (applicant.mobile, SmsMessage.Status.QUEUED),
    ]
    assert not DevInboxMessage.objects.exists()

    # The worker's pass sends the registered one and retires the other unsent.
    assert sms_outbox_run_due() == 2
    assert [m.phone for m in DevInboxMessage.objects.all()] == [applicant.mobile]
    unknown = SmsMessage.objects.get(phone="")
    assert unknown.status == SmsMessage.Status.EXPIRED
    assert (unknown.payload, unknown.attempts, unknown.provider) == ("", 0, "")
    assert "unknown subject" in unknown.last_error
    assert SmsMessage.objects.get(phone=applicant.mobile).status == SmsMessage.Status.SENT


def test_the_outbox_loop_in_this_process_is_woken_at_commit(monkeypatch):
    """The quick start's outbox thread delivers a login code at once, not at the end of its
    interval (here 60 s, far beyond the test's patience)."""
    applicant = FamilyFactory().main_applicant
    passes: list[int] = []
    passed = threading.Condition()
    real_run_due = services.sms_outbox_run_due

    def counting_run_due(**kwargs) -> int:
        count = real_run_due(**kwargs)
        with passed:
            passes.append(count)
            passed.notify_all()
        return count

    monkeypatch.setattr(services, "sms_outbox_run_due", counting_run_due)
    stop = threading.Event()

    def worker() -> None:
        try:
            sms_outbox_loop(stop=stop, interval=60)
        finally:
            connection.close()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        with passed:
            assert passed.wait_for(lambda: len(passes) >= 1, timeout=10)
        ask(applicant.id_number, ip="10.9.0.3")
        with passed:
            assert passed.wait_for(lambda: sum(passes) >= 1, timeout=10), passes
        assert [m.phone for m in DevInboxMessage.objects.all()] == [applicant.mobile]
    finally:
        stop.set()
        services.sms_outbox_wake()
        thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.fixture
def slow_gateway(settings, monkeypatch):
    """The Tencent SMS adapter pointed at a local fake that takes GATEWAY_DELAY to answer."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    fake = FakeSms(
        secret_id="AKIDanjuTimingTest",
        secret_key="anjuTimingTestSecretKey",
        region="ap-guangzhou",
        sdk_app_id="1400000002",
        sign_name="安居",
        template_id="2000002",
    )
    fake.delay = GATEWAY_DELAY
    fake.start()
    sms = copy.deepcopy(settings.SMS)
    sms["PROVIDER"] = "tencent"
    sms["TENCENT"].update(
        ENDPOINT=fake.url,
        REGION="ap-guangzhou",
        SECRET_ID="AKIDanjuTimingTest",
        SECRET_KEY="anjuTimingTestSecretKey",
        SDK_APP_ID="1400000002",
        SIGN_NAME="安居",
        TEMPLATES={"verify_code": "2000002"},
        TIMEOUT_SECONDS=5,
    )
    settings.SMS = sms
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "sms_send": "10000/min",
        },
    }
    yield fake
    fake.close()


def test_code_request_takes_the_same_time_for_registered_and_unknown_numbers(slow_gateway):
    """Medians over many requests against a gateway that takes 150 ms: when the first
    delivery ran inside the request (after commit), a registered number's median was the
    gateway's delay above an unknown one's. Each request comes from its own address and
    names its own number, so no cooldown or cap answers instead."""
    registered = [FamilyFactory().main_applicant for _ in range(ROUNDS + 1)]
    unknown = [id_number_for(700 + n) for n in range(ROUNDS + 1)]
    # Warm-up (first queries, imports, the SDK's first client): not measured.
    ask(registered[ROUNDS].id_number, ip="10.8.0.1")
    ask(unknown[ROUNDS], ip="10.8.0.2")
    times: dict[str, list[float]] = {"registered": [], "unknown": []}
    for n in range(ROUNDS):
        times["registered"].append(ask(registered[n].id_number, ip=f"10.8.1.{n}"))
        times["unknown"].append(ask(unknown[n], ip=f"10.8.2.{n}"))

    difference = abs(statistics.median(times["registered"]) - statistics.median(times["unknown"]))
    assert difference < GATEWAY_DELAY / 3, {k: sorted(v) for k, v in times.items()}
    assert slow_gateway.requests == []  # not one request waited on the gateway

    # After the answers, the worker delivers every registered number's code and no other.
    sms_outbox_run_due()
    sent = sorted(body["PhoneNumberSet"][0] for body in slow_gateway.sent())
    assert sent == sorted(f"+86{a.mobile}" for a in registered)
    assert all(r["rejected"] is None for r in slow_gateway.requests)
