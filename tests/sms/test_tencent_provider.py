"""The Tencent Cloud SMS adapter (on tencentcloud-sdk-python) against a local fake SendSms
server (tests.fakes.tencent_cloud).

The fake checks every request the way Tencent does: it recomputes the TC3-HMAC-SHA256
signature from the headers and body it received, with its own code and the test's secret, and
answers AuthFailure when they differ. It then checks action, version, region and body, and
answers as the test told it: success, a Tencent error, a non-Ok send status, HTTP 500, or no
answer.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from sms.models import SmsMessage
from sms.providers import SmsSendError, get_provider
from sms.providers.tencent import TencentSmsProvider, error_is_retryable
from sms.services import RETRY_BACKOFF_SECONDS, sms_message_queue, sms_outbox_run_due
from tests.fakes.tencent_cloud import Answer, FakeSms, reference_signature

SECRET_ID = "AKIDanjuTestSecretId0000000000000000"
SECRET_KEY = "anjuTestSecretKey000000000000000"
SDK_APP_ID = "1400000001"
SIGN_NAME = "安居"
TEMPLATE_ID = "2000001"
REGION = "ap-guangzhou"
PHONE = "13800138000"
CODE = "480317"
PARAMS = [CODE, "5", "登录"]


def new_fake() -> FakeSms:
    return FakeSms(
        secret_id=SECRET_ID,
        secret_key=SECRET_KEY,
        region=REGION,
        sdk_app_id=SDK_APP_ID,
        sign_name=SIGN_NAME,
        template_id=TEMPLATE_ID,
    )


@pytest.fixture
def fake():
    server = new_fake()
    server.start()
    yield server
    server.close()


@pytest.fixture
def tencent(settings, fake, monkeypatch):
    """settings.SMS pointing at the fake, on a copy of the real dict."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    sms = copy.deepcopy(settings.SMS)
    sms["PROVIDER"] = "tencent"
    sms["TENCENT"].update(
        ENDPOINT=fake.url,
        REGION=REGION,
        SECRET_ID=SECRET_ID,
        SECRET_KEY=SECRET_KEY,
        SDK_APP_ID=SDK_APP_ID,
        SIGN_NAME=SIGN_NAME,
        TEMPLATES={"verify_code": TEMPLATE_ID},
        TIMEOUT_SECONDS=5,
    )
    settings.SMS = sms
    return sms["TENCENT"]


def send(*, kind: str = "verify_code") -> str:
    return TencentSmsProvider().send(
        phone=PHONE, kind=kind, params=PARAMS, text="【安居】您正在登录，验证码为480317"
    )


# ------------------------------------------------------------------------------- signing


def test_the_fakes_verifier_matches_tencents_published_example():
    # The worked example of Tencent's "Signature v3" document (CVM DescribeInstances): the
    # fake's independent TC3 code gets Tencent's answer, so what it accepts, Tencent would.
    payload = (
        b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    )
    assert (
        reference_signature(
            secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            timestamp="1551113065",
            service="cvm",
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Host": "cvm.tencentcloudapi.com",
            },
            body=payload,
        )
        == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


def test_a_signed_request_is_accepted_and_returns_the_serial_number(tencent, fake):
    serial = send()

    [request] = fake.requests
    assert request["rejected"] is None
    assert serial == fake.serials()[0] != ""
    headers = request["headers"]
    assert headers["X-TC-Action"] == "SendSms"
    assert headers["X-TC-Version"] == "2021-01-11"
    assert headers["X-TC-Region"] == REGION
    assert headers["Host"] == fake.url.removeprefix("http://")
    assert request["body"] == {
        "PhoneNumberSet": ["+8613800138000"],
        "SmsSdkAppId": SDK_APP_ID,
        "SignName": SIGN_NAME,
        "TemplateId": TEMPLATE_ID,
        "TemplateParamSet": PARAMS,
    }


def test_the_signature_scope_takes_the_utc_date(tencent, fake):
    # 2019-02-26 00:44:25 in Shenzhen is 2019-02-25 16:44:25 UTC: a local date would fail.
    with time_machine.travel(datetime(2019, 2, 25, 16, 44, 25, tzinfo=UTC), tick=False):
        send()

    [request] = fake.requests
    assert request["rejected"] is None
    headers = request["headers"]
    assert headers["X-TC-Timestamp"] == "1551113065"
    signature = reference_signature(
        secret_key=SECRET_KEY,
        timestamp="1551113065",
        service="sms",
        headers={"Content-Type": headers["Content-Type"], "Host": headers["Host"]},
        body=request["raw"],
    )
    assert headers["Authorization"] == (
        f"TC3-HMAC-SHA256 Credential={SECRET_ID}/2019-02-25/sms/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


def test_the_sdk_never_logs_the_code_even_at_debug(tencent, fake, caplog):
    caplog.set_level(logging.DEBUG)
    send()
    assert fake.serials()
    assert all(CODE not in record.getMessage() for record in caplog.records)


def test_a_wrong_secret_key_is_refused_and_not_retried(tencent, fake):
    tencent["SECRET_KEY"] = "notTheRightKey000000000000000000"
    with pytest.raises(SmsSendError) as caught:
        send()
    assert "AuthFailure.SignatureFailure" in str(caught.value)
    assert caught.value.retryable is False
    assert fake.requests[0]["rejected"][0] == "AuthFailure.SignatureFailure"


def test_an_unknown_secret_id_is_refused_and_not_retried(tencent, fake):
    tencent["SECRET_ID"] = "AKIDsomeoneElse"
    with pytest.raises(SmsSendError) as caught:
        send()
    assert "AuthFailure.SecretIdNotFound" in str(caught.value)
    assert caught.value.retryable is False


def test_the_provider_is_found_by_name(tencent):
    assert isinstance(get_provider(), TencentSmsProvider)


# -------------------------------------------------------------------- error classification

CLASSIFIED = [
    ("InternalError", True),
    ("InternalError.Timeout", True),
    ("InternalError.OtherError", True),
    ("RequestLimitExceeded", True),
    ("RequestLimitExceeded.UinLimitExceeded", True),
    ("LimitExceeded.PhoneNumberThirtySecondLimit", True),
    ("LimitExceeded.PhoneNumberOneHourLimit", True),
    ("LimitExceeded.DeliveryFrequencyLimit", True),
    ("LimitExceeded.PhoneNumberDailyLimit", False),
    ("LimitExceeded.AppDailyLimit", False),
    ("LimitExceeded.PhoneNumberCountLimit", False),
    ("AuthFailure.SignatureExpire", False),
    ("AuthFailure.SecretIdNotFound", False),
    ("InvalidParameter", False),
    ("InvalidParameterValue.IncorrectPhoneNumber", False),
    ("InvalidParameterValue.TemplateParameterFormatError", False),
    ("MissingParameter.EmptyPhoneNumberSet", False),
    ("UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber", False),
    ("UnauthorizedOperation.SmsSdkAppIdVerifyFail", False),
    ("FailedOperation.PhoneNumberInBlacklist", False),
    ("FailedOperation.TemplateIncorrectOrUnapproved", False),
    ("FailedOperation.InsufficientBalanceInSmsPackage", False),
]


@pytest.mark.parametrize("where", ["error", "status"])
@pytest.mark.parametrize("code,retryable", CLASSIFIED)
def test_tencent_errors_are_classified(tencent, fake, where, code, retryable):
    fake.queue(Answer(where, code, f"模拟错误 {code}"))
    with pytest.raises(SmsSendError) as caught:
        send()
    assert fake.requests[0]["rejected"] is None
    assert code in str(caught.value)
    assert caught.value.retryable is retryable
    assert error_is_retryable(code) is retryable


def test_error_text_never_carries_the_parameters(tencent, fake):
    fake.queue(
        Answer("error", "InvalidParameterValue.TemplateParameterFormatError", f"参数{CODE}有误")
    )
    with pytest.raises(SmsSendError) as caught:
        send()
    assert CODE not in str(caught.value)
    assert "TemplateParameterFormatError" in str(caught.value)


def test_http_500_is_retryable(tencent, fake):
    fake.http_failures = 1
    with pytest.raises(SmsSendError) as caught:
        send()
    assert "ServerNetworkError" in str(caught.value)
    assert caught.value.retryable is True


def test_an_unreadable_answer_is_retryable(tencent, fake):
    # A 200 that is not Tencent's JSON (a gateway's page): it may or may not have been sent,
    # and a duplicate beats a lost code.
    fake.garbage = 1
    with pytest.raises(SmsSendError) as caught:
        send()
    assert "JSONDecodeError" in str(caught.value)
    assert caught.value.retryable is True


def test_a_timeout_is_retryable(tencent, fake):
    tencent["TIMEOUT_SECONDS"] = 0.2  # the fake never answers; the client gives up
    fake.queue(Answer("hang"))
    with pytest.raises(SmsSendError) as caught:
        send()
    assert "ClientNetworkError" in str(caught.value) and "timed out" in str(caught.value)
    assert caught.value.retryable is True


def test_a_closed_port_is_retryable(tencent, fake):
    fake.close()
    with pytest.raises(SmsSendError) as caught:
        send()
    assert "ClientNetworkError" in str(caught.value)
    assert caught.value.retryable is True


@pytest.mark.parametrize("endpoint", ["sms.tencentcloudapi.com", "ftp://x", "http://h/a/b"])
def test_an_endpoint_that_is_not_a_url_is_not_retryable_and_not_sent(tencent, fake, endpoint):
    tencent["ENDPOINT"] = endpoint
    with pytest.raises(SmsSendError) as caught:
        send()
    assert caught.value.retryable is False
    assert fake.requests == []


def test_a_kind_without_template_is_not_retryable_and_not_sent(tencent, fake):
    with pytest.raises(SmsSendError) as caught:
        send(kind="contract_ready")
    assert caught.value.retryable is False
    assert fake.requests == []


def test_missing_credentials_are_not_retryable(tencent, fake):
    tencent["SECRET_KEY"] = ""
    with pytest.raises(SmsSendError) as caught:
        send()
    assert "SECRET_KEY" in str(caught.value)
    assert caught.value.retryable is False
    assert fake.requests == []


# ---------------------------------------------------------------------- outbox integration


def _queue() -> SmsMessage:
    with transaction.atomic():
        message = sms_message_queue(phone=PHONE, kind="verify_code", params=PARAMS)
    # Delivered after commit, at the real time: the first attempt has been made.
    message.refresh_from_db()
    return message


@pytest.mark.django_db(transaction=True)
def test_outbox_retries_a_500_at_the_backoff_boundary_then_sends(tencent, fake):
    fake.http_failures = 1
    message = _queue()

    assert message.status == SmsMessage.Status.RETRY
    assert message.attempts == 1
    assert "ServerNetworkError" in message.last_error
    assert message.payload != ""
    due = message.next_attempt_at
    assert due == message.claimed_at + timedelta(seconds=RETRY_BACKOFF_SECONDS[0])

    assert sms_outbox_run_due(now=due - timedelta(seconds=1)) == 0
    assert len(fake.requests) == 1

    assert sms_outbox_run_due(now=due) == 1
    message.refresh_from_db()
    assert message.status == SmsMessage.Status.SENT
    assert message.attempts == 2
    assert message.sent_at == due
    assert message.payload == ""
    assert message.last_error == ""
    assert message.provider == "tencent"
    assert message.provider_message_id == fake.serials()[0]
    assert [r["rejected"] for r in fake.requests] == [None, None]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("where", ["error", "status"])
def test_outbox_gives_up_on_a_non_retryable_error(tencent, fake, caplog, where):
    fake.queue(Answer(where, "FailedOperation.PhoneNumberInBlacklist", f"号码拒收 {CODE}"))
    message = _queue()

    assert message.status == SmsMessage.Status.DEAD
    assert message.attempts == 1
    assert message.payload == ""
    assert "FailedOperation.PhoneNumberInBlacklist" in message.last_error
    assert CODE not in message.last_error
    assert all(CODE not in record.getMessage() for record in caplog.records)
    assert sms_outbox_run_due(now=timezone.now() + timedelta(days=1)) == 0
    assert len(fake.requests) == 1
