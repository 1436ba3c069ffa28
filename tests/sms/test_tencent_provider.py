"""The Tencent Cloud SMS adapter against a local fake SendSms server.

The fake checks every request the way Tencent does: it recomputes the TC3-HMAC-SHA256
signature from the headers and body it received, with its own code and the test's secret, and
answers AuthFailure when they differ. It then checks action, version and body, and answers as
the test told it: success, a Tencent error, a non-Ok send status, HTTP 500, or no answer.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.utils import timezone

from sms.models import SmsMessage
from sms.providers import SmsSendError, get_provider
from sms.providers.tencent import (
    TencentSmsProvider,
    error_is_retryable,
    tc3_credential_scope,
    tc3_signature,
)
from sms.services import RETRY_BACKOFF_SECONDS, sms_message_queue, sms_outbox_run_due

SECRET_ID = "AKIDanjuTestSecretId0000000000000000"
SECRET_KEY = "anjuTestSecretKey000000000000000"
SDK_APP_ID = "1400000001"
SIGN_NAME = "安居"
TEMPLATE_ID = "2000001"
REGION = "ap-guangzhou"
PHONE = "13800138000"
CODE = "480317"
PARAMS = [CODE, "5", "登录"]

# ------------------------------------------------------------------ independent reference


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def reference_signature(
    *, secret_key: str, timestamp: str, service: str, headers: dict[str, str], body: bytes
) -> str:
    """TC3-HMAC-SHA256 as Tencent's "Signature v3" document describes it, written apart from
    the adapter: `headers` are the signed headers (any case), as sent."""
    signed = {name.lower(): value.strip().lower() for name, value in headers.items()}
    names = sorted(signed)
    canonical = (
        "POST\n/\n\n"
        + "".join(f"{name}:{signed[name]}\n" for name in names)
        + "\n"
        + ";".join(names)
        + "\n"
        + hashlib.sha256(body).hexdigest()
    )
    day = time.strftime("%Y-%m-%d", time.gmtime(int(timestamp)))
    to_sign = (
        f"TC3-HMAC-SHA256\n{timestamp}\n{day}/{service}/tc3_request\n"
        f"{hashlib.sha256(canonical.encode()).hexdigest()}"
    )
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), day), service), "tc3_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------------------- fake server

AUTH_RE = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<day>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)"
    r"/tc3_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<sig>[0-9a-f]{64})$"
)


@dataclass
class Answer:
    kind: str  # "ok", "error", "status", "http", "hang"
    code: str = ""
    message: str = ""
    status: int = 200


class FakeTencent:
    def __init__(self, *, secret_id: str = SECRET_ID, secret_key: str = SECRET_KEY) -> None:
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.answers: list[Answer] = []  # consumed in order; then "ok"
        self.requests: list[dict] = []  # every request, with what the fake concluded
        self.release = threading.Event()  # lets "hang" answers finish at teardown
        self._lock = threading.Lock()
        self._serial = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.handle(self, body)

            def log_message(self, format, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll interval keeps shutdown() (which waits for the next poll) quick.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._closed = False

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.release.set()
            self.server.shutdown()
            self.server.server_close()
            self._thread.join()

    def queue(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def serials(self) -> list[str]:
        return [r["serial"] for r in self.requests if r.get("serial")]

    # What Tencent checks, in its order: the signature, then the action, then the parameters.
    def _verify(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[str, str] | None:
        auth = AUTH_RE.match(handler.headers.get("Authorization", ""))
        if auth is None:
            return "AuthFailure.InvalidAuthorization", "Authorization header malformed"
        if auth["id"] != self.secret_id:
            return "AuthFailure.SecretIdNotFound", "unknown SecretId"
        timestamp = handler.headers.get("X-TC-Timestamp", "")
        if not timestamp.isdigit():
            return "MissingParameter", "X-TC-Timestamp"
        if auth["day"] != time.strftime("%Y-%m-%d", time.gmtime(int(timestamp))):
            return "AuthFailure.SignatureFailure", "credential date is not the UTC date"
        names = auth["signed"].split(";")
        if auth["service"] != "sms" or not {"content-type", "host"} <= set(names):
            return "AuthFailure.SignatureFailure", "wrong service or signed headers"
        if any(handler.headers.get(name) is None for name in names):
            return "AuthFailure.SignatureFailure", "a signed header is missing"
        expected = reference_signature(
            secret_key=self.secret_key,
            timestamp=timestamp,
            service="sms",
            headers={name: handler.headers[name] for name in names},
            body=body,
        )
        if not hmac.compare_digest(expected, auth["sig"]):
            return "AuthFailure.SignatureFailure", "signature mismatch"
        if handler.headers.get("X-TC-Action") != "SendSms":
            return "InvalidAction", "action"
        if handler.headers.get("X-TC-Version") != "2021-01-11":
            return "NoSuchVersion", "version"
        if handler.headers.get("X-TC-Region") != REGION:
            return "UnsupportedRegion", "region"
        if handler.headers.get("Content-Type") != "application/json; charset=utf-8":
            return "InvalidParameter", "content type"
        try:
            data = json.loads(body.decode("utf-8"))
        except ValueError:
            return "InvalidParameter", "body is not JSON"
        phones = data.get("PhoneNumberSet")
        if not (isinstance(phones, list) and phones and all(p.startswith("+") for p in phones)):
            return "MissingParameter.EmptyPhoneNumberSet", "PhoneNumberSet"
        if data.get("SmsSdkAppId") != SDK_APP_ID:
            return "InvalidParameterValue.SdkAppIdNotExist", "SmsSdkAppId"
        if data.get("SignName") != SIGN_NAME:
            return "FailedOperation.SignatureIncorrectOrUnapproved", "SignName"
        if data.get("TemplateId") != TEMPLATE_ID:
            return "FailedOperation.TemplateIncorrectOrUnapproved", "TemplateId"
        params = data.get("TemplateParamSet")
        if not (isinstance(params, list) and all(isinstance(p, str) for p in params)):
            return "InvalidParameterValue.TemplateParameterFormatError", "TemplateParamSet"
        return None

    def handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        with self._lock:
            answer = self.answers.pop(0) if self.answers else Answer("ok")
            self._serial += 1
            serial_number = self._serial
        request_id = f"fake-{serial_number}"
        record = {
            "headers": dict(handler.headers.items()),
            "body": body,
            "rejected": self._verify(handler, body),
        }
        self.requests.append(record)
        if answer.kind == "hang":
            self.release.wait(10)
            return
        if answer.kind == "http":
            self._reply(handler, answer.status, b"upstream failure", "text/plain")
            return
        if record["rejected"]:
            code, message = record["rejected"]
            answer = Answer("error", code, message)
        if answer.kind == "error":
            payload = {
                "Error": {"Code": answer.code, "Message": answer.message},
                "RequestId": request_id,
            }
        else:
            phone = json.loads(body)["PhoneNumberSet"][0]
            ok = answer.kind == "ok"
            serial = f"2433:{serial_number:024d}" if ok else ""
            record["serial"] = serial
            payload = {
                "SendStatusSet": [
                    {
                        "SerialNo": serial,
                        "PhoneNumber": phone,
                        "Fee": 1 if ok else 0,
                        "SessionContext": "",
                        "Code": "Ok" if ok else answer.code,
                        "Message": "send success" if ok else answer.message,
                        "IsoCode": "CN",
                    }
                ],
                "RequestId": request_id,
            }
        raw = json.dumps({"Response": payload}, ensure_ascii=False).encode()
        self._reply(handler, 200, raw, "application/json")

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, raw: bytes, ctype: str) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", ctype)
            handler.send_header("Content-Length", str(len(raw)))
            handler.end_headers()
            handler.wfile.write(raw)
        except OSError:
            pass  # the client gave up (timeout test)


@pytest.fixture
def fake():
    server = FakeTencent()
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


def send(provider: TencentSmsProvider | None = None, *, kind: str = "verify_code") -> str:
    return (provider or TencentSmsProvider()).send(
        phone=PHONE, kind=kind, params=PARAMS, text="【安居】您正在登录，验证码为480317"
    )


# ------------------------------------------------------------------------------- signing


def test_signature_matches_tencent_published_example():
    # The worked example of Tencent's "Signature v3" document (CVM DescribeInstances).
    payload = (
        b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
    )
    assert (
        tc3_signature(
            secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            service="cvm",
            host="cvm.tencentcloudapi.com",
            timestamp=1551113065,
            payload=payload,
        )
        == "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
    )


def test_signature_known_answer_for_an_sms_request():
    # 1767197400 is 2026-01-01 00:10 in Shenzhen but 2025-12-31 in UTC, and the scope takes
    # the UTC date; the expected value was computed once with reference_signature.
    payload = json.dumps(
        {"PhoneNumberSet": ["+8613800138000"], "SignName": SIGN_NAME}, ensure_ascii=False
    ).encode()
    fixed = dict(secret_key=SECRET_KEY, timestamp=1767197400, payload=payload)
    expected = reference_signature(
        secret_key=SECRET_KEY,
        timestamp="1767197400",
        service="sms",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Host": "sms.tencentcloudapi.com",
        },
        body=payload,
    )
    assert expected == "1dd6da7f34efd51ad46bec07ee7be928361b0aa3ceb8d26b27298ae8133ca010"
    assert tc3_credential_scope(service="sms", timestamp=1767197400) == (
        "2025-12-31/sms/tc3_request"
    )
    assert tc3_signature(service="sms", host="sms.tencentcloudapi.com", **fixed) == expected
    assert tc3_signature(service="sms", host="sms.ap-guangzhou.tencentcloudapi.com", **fixed) != (
        expected
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
    assert json.loads(request["body"]) == {
        "PhoneNumberSet": ["+8613800138000"],
        "SmsSdkAppId": SDK_APP_ID,
        "SignName": SIGN_NAME,
        "TemplateId": TEMPLATE_ID,
        "TemplateParamSet": PARAMS,
    }


def test_the_clock_is_injectable_and_the_scope_uses_the_utc_date(tencent, fake):
    # 2019-02-26 00:44:25 in Shenzhen is 2019-02-25 16:44:25 UTC.
    provider = TencentSmsProvider(clock=lambda: datetime(2019, 2, 25, 16, 44, 25, tzinfo=UTC))
    send(provider)

    [request] = fake.requests
    assert request["rejected"] is None
    headers = request["headers"]
    assert headers["X-TC-Timestamp"] == "1551113065"
    signature = reference_signature(
        secret_key=SECRET_KEY,
        timestamp="1551113065",
        service="sms",
        headers={"Content-Type": headers["Content-Type"], "Host": headers["Host"]},
        body=request["body"],
    )
    assert headers["Authorization"] == (
        f"TC3-HMAC-SHA256 Credential={SECRET_ID}/2019-02-25/sms/tc3_request, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


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
    fake.queue(Answer("http", status=500))
    with pytest.raises(SmsSendError) as caught:
        send()
    assert "HTTP 500" in str(caught.value)
    assert caught.value.retryable is True


def test_a_timeout_is_retryable(tencent, fake):
    tencent["TIMEOUT_SECONDS"] = 0.2  # the fake never answers; the client gives up
    fake.queue(Answer("hang"))
    with pytest.raises(SmsSendError) as caught:
        send()
    assert "timed out" in str(caught.value)
    assert caught.value.retryable is True


def test_a_closed_port_is_retryable(tencent, fake):
    fake.close()
    with pytest.raises(SmsSendError) as caught:
        send()
    assert "ConnectError" in str(caught.value)
    assert caught.value.retryable is True


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
    fake.queue(Answer("http", status=500))
    message = _queue()

    assert message.status == SmsMessage.Status.RETRY
    assert message.attempts == 1
    assert "HTTP 500" in message.last_error
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
