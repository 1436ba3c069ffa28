"""Hostile input (issue 13): each request of the fuzzing and abuse run is a 4xx in the API's
one error body, and nothing changes. Deep JSON, oversized and over-counted bodies, infinite
stroke numbers, ids past 2**63 in paths, junk on the payment webhook, the body cap in front
of Django and the client address from the trusted proxies only (the same through nginx:
tests/deploy/test_hostile_proxy.py; SQLite under concurrent writes: tests/core/
test_sqlite_demo.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from asgiref.testing import ApplicationCommunicator
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import Resolver404, resolve
from django.utils import timezone

from accounts.services import applicant_user_ensure
from core import jsonsafe
from core.asgi import BodyLimit, ClientAddress, client_from_forwarded
from core.converters import MAX_ID
from mobile_api.errors import exception_handler
from mobile_api.signing_api import SignatureCharacterApi
from signing.agreements.signature import character_clean
from signing.lease.payments import dev as pay_dev
from signing.models import (
    Agreement,
    CardPhoto,
    PaymentNotification,
    QrTicket,
    SignatureCharacter,
)
from sms.models import SmsCode
from tests.factories import FamilyFactory
from tests.mobile_api.conftest import ApiClient, error_code
from tests.signing.worlds import make_agreement, strokes

pytestmark = pytest.mark.django_db

DEEP = [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 65 + b"]" * 65]
HUGE = 2**63  # one past the largest id PostgreSQL and SQLite store


@pytest.fixture
async def thread_connections_closed():
    """The ORM calls of an async test run on a worker thread whose connection would outlive
    the test and block the test database's teardown."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


def anonymous() -> Client:
    return Client(raise_request_exception=False)


def logged_in(applicant) -> ApiClient:
    api = ApiClient()
    api.client.force_login(applicant_user_ensure(applicant=applicant).user)
    return api


# ----------------------------------------------------------------------- deeply nested JSON


@pytest.mark.parametrize("body", DEEP, ids=["list-100k", "object-100k", "list-65"])
@pytest.mark.parametrize(
    "url", ["/api/v1/auth/sms-code/", "/api/v1/auth/login/", "/api/v1/signing/qr/open/"]
)
def test_deeply_nested_json_is_malformed_request_on_any_endpoint(url, body):
    response = anonymous().post(url, body, content_type="application/json")
    assert response.status_code == 400 and error_code(response) == "malformed_request"
    assert not SmsCode.objects.exists()


def test_nesting_up_to_the_limit_is_parsed_and_judged_by_the_serializer():
    """Control: 64 levels is JSON like any other (the serializer refuses its content)."""
    body = b"[" * jsonsafe.MAX_DEPTH + b"]" * jsonsafe.MAX_DEPTH
    response = anonymous().post("/api/v1/auth/sms-code/", body, content_type="application/json")
    assert response.status_code == 400 and error_code(response) == "invalid_input"


def test_the_depth_scan_skips_strings_and_refuses_only_real_nesting():
    assert jsonsafe.loads(json.dumps({"s": "[" * 1000 + '\\"{' * 500})) == {
        "s": "[" * 1000 + '\\"{' * 500
    }
    with pytest.raises(jsonsafe.JSONTooDeep):
        jsonsafe.loads(b'{"s": "]]]]"' + b', "a": [' * 70 + b"1" + b"]" * 70 + b"}")
    with pytest.raises(ValueError):
        jsonsafe.loads(b"[NaN]")  # not JSON: refused like any other malformed body
    assert jsonsafe.loads(b"[" * 64 + b"]" * 64) is not None


@pytest.fixture
def platform_key(settings, tmp_path):
    settings.PAYMENT = {**settings.PAYMENT, "PLATFORM_KEY_DIR": tmp_path / "pay"}


def webhook(body: bytes, headers: dict | None = None):
    return anonymous().generic(
        "POST",
        "/api/v1/payments/notify/dev/",
        data=body,
        content_type="application/json",
        headers=headers or {},
    )


def test_a_deeply_nested_but_correctly_signed_webhook_body_is_refused_and_recorded(platform_key):
    body = b"[" * 20_000 + b"]" * 20_000  # past the interpreter's recursion limit
    headers = pay_dev.dev_signed_headers(body=body, timestamp=int(timezone.now().timestamp()))
    response = webhook(body, headers)
    assert response.status_code == 400
    assert error_code(response) == "payment_notification_malformed"
    # Signed: a real refusal, kept for the payment log.
    assert PaymentNotification.objects.get().code == "payment_notification_malformed"


# ------------------------------------------------------------ bodies over Django's limits


def test_a_json_body_over_the_upload_limit_is_413(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"id_number": "1" * 2000}).encode()
    response = anonymous().post("/api/v1/auth/sms-code/", body, content_type="application/json")
    assert response.status_code == 413 and error_code(response) == "request_too_large"
    assert not SmsCode.objects.exists()


def multipart(fields: int = 0, files: int = 0) -> bytes:
    from django.core.files.uploadedfile import SimpleUploadedFile

    data: dict = {f"f{i}": "x" for i in range(fields)}
    data.update({f"file{i}": SimpleUploadedFile(f"{i}.txt", b"x") for i in range(files)})
    return encode_multipart(BOUNDARY, data)


def photo_post(body: bytes):
    """To the card-photo upload, the one API view that reads multipart bodies (the others
    are JSON only and answer 415 before reading), as a logged-in applicant."""
    api = logged_in(FamilyFactory().main_applicant)
    return api.client.generic(
        "POST",
        "/api/v1/lease/1/photos/front/",
        body,
        content_type=MULTIPART_CONTENT,
        headers={"X-CSRFToken": api.csrf},
    )


@pytest.mark.parametrize(
    "body", [multipart(fields=1001), multipart(files=101)], ids=["1001-fields", "101-files"]
)
def test_multipart_bodies_with_too_many_fields_or_files_are_400(body):
    response = photo_post(body)
    assert response.status_code == 400 and error_code(response) == "too_many_fields"
    assert not CardPhoto.objects.exists()


def test_a_multipart_body_within_the_counts_is_read_as_before():
    """Control: 999 fields and 99 files are read and reach the view (no such lease)."""
    for body in (multipart(fields=999), multipart(files=99)):
        response = photo_post(body)
        assert response.status_code == 404 and error_code(response) != "too_many_fields"


def test_a_page_form_with_too_many_fields_is_400_too():
    """Pages (not the API) answer Django's own 400 for the same bodies, never a 500 (the CSRF
    check reads the form, as it does for every POST a browser makes)."""
    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    client.cookies["csrftoken"] = "c" * 32
    for body in (multipart(fields=1001), multipart(files=101)):
        response = client.generic("POST", "/h5/login/", body, content_type=MULTIPART_CONTENT)
        assert response.status_code == 400


def test_a_json_body_to_a_json_only_view_is_415_unread():
    agreement, applicant = make_agreement()
    api = logged_in(applicant)
    response = api.client.generic(
        "POST",
        f"/api/v1/signing/agreements/{agreement.pk}/qr/",
        multipart(fields=1001),
        content_type=MULTIPART_CONTENT,
        headers={"X-CSRFToken": api.csrf},
    )
    assert response.status_code == 415 and error_code(response) == "unsupported_media_type"
    assert not QrTicket.objects.exists()


# ------------------------------------------------------------- infinite signature numbers


def signature_put(api: ApiClient, agreement: Agreement, raw: bytes):
    return api.client.generic(
        "PUT",
        f"/api/v1/signing/agreements/{agreement.pk}/signature/0/",
        raw,
        content_type="application/json",
        headers={"X-CSRFToken": api.csrf},
    )


def stroke_body(t: str) -> bytes:
    body = json.dumps({"strokes": strokes(), "width": 300, "height": 300})
    return body.replace('"t": 0,', f'"t": {t},', 1).encode()


def agreement_at_read_step():
    now = timezone.now()
    agreement, applicant = make_agreement(now=now)
    Agreement.objects.filter(pk=agreement.pk).update(
        window_starts_at=now - timedelta(hours=1),
        window_ends_at=now + timedelta(days=1),
        step=Agreement.Step.AGREEMENT_READ,
    )
    return Agreement.objects.get(pk=agreement.pk), applicant


def test_an_infinite_stroke_time_is_invalid_input_and_nothing_is_saved():
    agreement, applicant = agreement_at_read_step()
    api = logged_in(applicant)
    assert b'"t": 1e400' in stroke_body("1e400")
    response = signature_put(api, agreement, stroke_body("1e400"))
    assert response.status_code == 400 and error_code(response) == "invalid_input"
    assert "strokes" in response.json()["error"]["fields"]
    response = signature_put(api, agreement, stroke_body("-1e400"))
    assert response.status_code == 400 and error_code(response) == "invalid_input"
    # NaN and Infinity literals are not JSON at all.
    response = signature_put(api, agreement, stroke_body("NaN"))
    assert response.status_code == 400 and error_code(response) == "malformed_request"
    assert not SignatureCharacter.objects.exists()
    # Control: the same character with a finite time is saved.
    response = signature_put(api, agreement, stroke_body("0"))
    assert response.status_code == 200, response.content
    assert SignatureCharacter.objects.count() == 1


def test_an_infinite_stroke_time_on_a_sealed_agreement_is_4xx_and_changes_nothing():
    agreement, applicant = agreement_at_read_step()
    Agreement.objects.filter(pk=agreement.pk).update(
        status=Agreement.Status.SIGNED, step=Agreement.Step.SUBMITTED
    )
    response = signature_put(logged_in(applicant), agreement, stroke_body("1e400"))
    assert 400 <= response.status_code < 500 and error_code(response)
    assert not SignatureCharacter.objects.exists()
    assert Agreement.objects.get(pk=agreement.pk).status == Agreement.Status.SIGNED


def test_the_serializer_and_the_domain_both_refuse_non_finite_numbers():
    points = strokes()
    points[0][3]["x"] = float("inf")
    data = SignatureCharacterApi.InputSerializer(
        data={"strokes": points, "width": 300, "height": 300}
    )
    assert not data.is_valid() and "strokes" in data.errors
    points[0][3]["x"] = float("nan")
    from core.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as refused:
        character_clean(strokes=points, width=300, height=300)
    assert refused.value.code == "signature_invalid"


# --------------------------------------------------------------------- ids past 2**63


HUGE_PATHS = [
    f"/api/v1/selection/{HUGE}/state/",
    f"/api/v1/selection/{HUGE}/cart/pre/items/{HUGE}/",
    f"/api/v1/broadcast/{HUGE}/",
    f"/api/v1/signing/agreements/{HUGE}/",
    f"/api/v1/signing/agreements/1/signature/{HUGE}/",
    f"/api/v1/signing/agreements/{HUGE}/steps/read/",
    f"/api/v1/lease/{HUGE}/",
    f"/api/v1/lease/1/receipt/pages/{HUGE}/",
    f"/api/v1/streams/round.{HUGE}/events/?after=0",
    f"/api/v1/streams/family.{HUGE}/events/?after=0",
    "/api/v1/streams/round.²/events/?after=0",
    f"/h5/selection/{HUGE}/",
    f"/h5/lease/{HUGE}/",
    f"/h5/signing/{HUGE}/view/",
]


@pytest.mark.parametrize("path", HUGE_PATHS)
def test_ids_past_2_63_in_a_path_are_404_on_every_database(path):
    family = FamilyFactory()
    api = logged_in(family.main_applicant)
    for client in (anonymous(), api.client):
        response = client.get(path)
        assert response.status_code == 404, (path, response.content[:200])
        if path.startswith("/api/"):
            assert error_code(response) in ("not_found", "stream_not_found")


def test_the_id_converter_refuses_past_2_63_and_takes_everything_below():
    """Routing alone, no database: the converter is what answers, on SQLite as on
    PostgreSQL."""
    assert resolve(f"/api/v1/selection/{MAX_ID}/state/").kwargs == {"round_id": MAX_ID}
    assert resolve("/api/v1/selection/0000000000000000007/state/").kwargs == {"round_id": 7}
    for bad in (HUGE, 10**19 - 1, 10**30):
        with pytest.raises(Resolver404):
            resolve(f"/api/v1/selection/{bad}/state/")
    assert resolve(f"/api/v1/streams/round.{MAX_ID}/events/").kwargs["stream"] == (
        f"round.{MAX_ID}"
    )
    # Names that are not numeric go on to the view's own stream_not_found.
    assert resolve("/api/v1/streams/round.abc/events/").kwargs["stream"] == "round.abc"
    with pytest.raises(Resolver404):
        resolve(f"/api/v1/streams/session.{HUGE}/events/")


def test_an_overflowing_number_that_reaches_a_query_is_404_not_500():
    """The net under every unbounded number field: SQLite's OverflowError is no row."""
    response = exception_handler(
        OverflowError("Python int too large to convert to SQLite INTEGER"), {"request": None}
    )
    assert response.status_code == 404 and response.data["error"]["code"] == "not_found"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", [f"/ws/selection/{HUGE}/", f"/ws/broadcast/{HUGE}/", "/ws/nope/"])
async def test_a_socket_path_with_an_id_past_2_63_is_refused_as_not_found(
    path, thread_connections_closed
):
    from config.asgi import application
    from realtime.consumers import CLOSE_NOT_FOUND

    communicator = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    )
    connected, code = await communicator.connect(timeout=5)
    assert (connected, code) == (False, CLOSE_NOT_FOUND)
    # The client's side of the close: the application then ends at once. (A bare wait()
    # would idle out its whole timeout, the application waiting for this message.)
    await communicator.disconnect(timeout=5)


# ------------------------------------------------------------------ the payment webhook


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Wechatpay-Nonce": "x"},
        {
            "Wechatpay-Timestamp": "soon",
            "Wechatpay-Nonce": "N" * 32,
            "Wechatpay-Serial": "ABC",
            "Wechatpay-Signature": "sig",
        },
    ],
    ids=["no-headers", "partial", "malformed"],
)
def test_unsigned_junk_on_the_webhook_is_refused_and_not_recorded(platform_key, headers):
    for body in (b"", b"junk", b"{}", b"[" * 100_000):
        response = webhook(body, headers)
        assert response.status_code == 400
        assert error_code(response).startswith("payment_notification_")
    assert not PaymentNotification.objects.exists()


def test_an_oversized_webhook_body_is_refused_unread_and_not_recorded(platform_key):
    body = b"{" + b" " * (256 * 1024) + b"}"
    headers = pay_dev.dev_signed_headers(body=body, timestamp=int(timezone.now().timestamp()))
    response = webhook(body, headers)
    assert response.status_code == 400 and error_code(response) == "payment_notification_malformed"
    assert not PaymentNotification.objects.exists()


def test_a_well_formed_but_forged_notice_is_still_recorded(platform_key):
    """Control: a real refusal keeps its audit row (tests/signing/test_deposit_notifications
    covers the others)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    body = b'{"id": "x"}'
    headers = pay_dev.dev_signed_headers(
        body=body, timestamp=int(timezone.now().timestamp()), sign_with=forger
    )
    response = webhook(body, headers)
    assert error_code(response) == "payment_signature_invalid"
    assert PaymentNotification.objects.get().code == "payment_signature_invalid"


def test_the_webhook_is_throttled_per_address(platform_key, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "payment_notify": "3/min",
        },
    }
    codes = [webhook(b"junk").status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    assert error_code(webhook(b"junk")) == "throttled"
    other = Client(REMOTE_ADDR="10.9.9.9").generic(
        "POST", "/api/v1/payments/notify/dev/", b"junk", content_type="application/json"
    )
    assert other.status_code == 400  # another address has its own budget
    assert not PaymentNotification.objects.exists()


# ------------------------------------------------------- the body cap in front of Django


def http_scope(headers: list[tuple[bytes, bytes]]) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/auth/sms-code/",
        "raw_path": b"/api/v1/auth/sms-code/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), *headers],
        "client": ("10.0.0.9", 40000),
        "server": ("127.0.0.1", 8000),
    }


async def response_of(communicator: ApplicationCommunicator) -> tuple[int, dict]:
    start = await communicator.receive_output(timeout=5)
    body = await communicator.receive_output(timeout=5)
    assert start["type"] == "http.response.start"
    return start["status"], json.loads(body["body"])


class Recorder:
    """An inner application that reads the whole body, as Django does, and says 200."""

    def __init__(self):
        self.called = False
        self.body = b""

    async def __call__(self, scope, receive, send):
        self.called = True
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


async def test_a_declared_length_over_the_cap_is_413_before_the_application_runs():
    inner = Recorder()
    app = BodyLimit(inner, lambda: 1000)
    # 200 MB announced; not a byte of it is sent or read.
    communicator = ApplicationCommunicator(app, http_scope([(b"content-length", b"209715200")]))
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": True})
    status, body = await response_of(communicator)
    assert status == 413 and body["error"]["code"] == "request_too_large"
    assert body["error"]["message"] and body["error"]["fields"] == {}
    assert not inner.called


async def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_cap():
    inner = Recorder()
    app = BodyLimit(inner, lambda: 1000)
    communicator = ApplicationCommunicator(app, http_scope([]))  # no length: chunked
    for _ in range(3):
        await communicator.send_input(
            {"type": "http.request", "body": b"x" * 400, "more_body": True}
        )
    status, body = await response_of(communicator)
    assert status == 413 and body["error"]["code"] == "request_too_large"
    assert inner.body == b"x" * 800  # the chunk that passed the cap was never handed on
    await communicator.wait(timeout=5)


async def test_bodies_within_the_cap_pass_and_a_bad_length_is_400():
    inner = Recorder()
    communicator = ApplicationCommunicator(
        BodyLimit(inner, lambda: 1000), http_scope([(b"content-length", b"1000")])
    )
    await communicator.send_input({"type": "http.request", "body": b"y" * 1000})
    status, _ = await response_of(communicator)
    assert status == 200 and inner.body == b"y" * 1000
    communicator = ApplicationCommunicator(
        BodyLimit(Recorder(), lambda: 1000), http_scope([(b"content-length", b"12, 12")])
    )
    status, body = await response_of(communicator)
    assert status == 400 and body["error"]["code"] == "malformed_request"


@pytest.mark.django_db(transaction=True)
async def test_the_shipped_application_caps_bodies_at_the_setting(
    settings, thread_connections_closed
):
    from config.asgi import application

    settings.REQUEST_BODY_MAX_BYTES = 5000
    length = str(settings.REQUEST_BODY_MAX_BYTES + 1).encode()
    communicator = ApplicationCommunicator(application, http_scope([(b"content-length", length)]))
    status, body = await response_of(communicator)
    assert status == 413 and body["error"]["code"] == "request_too_large"
    from asgiref.sync import sync_to_async

    assert not await sync_to_async(SmsCode.objects.exists)()


def test_the_cap_answers_as_the_api_does():
    from core import asgi
    from mobile_api import errors

    assert asgi.REQUEST_TOO_LARGE == errors.REQUEST_TOO_LARGE


def test_the_cap_fits_the_largest_legitimate_upload(settings):
    assert settings.REQUEST_BODY_MAX_BYTES > settings.UPLOADS["MAX_BYTES"]
    assert settings.REQUEST_BODY_MAX_BYTES >= settings.DATA_UPLOAD_MAX_MEMORY_SIZE


# ---------------------------------------------- the client's address, from trusted proxies


@pytest.mark.parametrize(
    ("forwarded", "trusted", "client"),
    [
        ("203.0.113.1", 0, None),  # no proxy: the header is the client's own text
        ("203.0.113.1, 198.51.100.7", 1, "198.51.100.7"),  # nginx appended what it saw
        ("198.51.100.7", 1, "198.51.100.7"),  # nginx set it (the shipped config)
        ("203.0.113.1, 198.51.100.7, 10.0.0.2", 2, "198.51.100.7"),
        ("198.51.100.7", 2, "198.51.100.7"),
        ("not-an-address", 1, None),
        ("", 1, None),
    ],
)
def test_the_client_is_the_entry_the_trusted_proxies_wrote(forwarded, trusted, client):
    assert client_from_forwarded(forwarded, trusted) == client


async def test_the_scope_client_is_replaced_only_behind_trusted_proxies():
    seen = []

    async def inner(scope, receive, send):
        seen.append(scope["client"])

    spoofed = [(b"x-forwarded-for", b"203.0.113.1, 198.51.100.7")]
    for trusted, expected in ((0, "10.0.0.9"), (1, "198.51.100.7")):
        await ClientAddress(inner, lambda t=trusted: t)(http_scope(spoofed), None, None)
        assert seen[-1][0] == expected
    await ClientAddress(inner, lambda: 1)(http_scope([]), None, None)
    assert seen[-1][0] == "10.0.0.9"  # straight to daphne: the peer


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("trusted", "recorded"), [(0, "10.7.7.7"), (1, "198.51.100.7")])
async def test_the_address_recorded_through_the_asgi_application(
    settings, trusted, recorded, thread_connections_closed
):
    """Through config.asgi: with no trusted proxy (the demo) the peer is recorded and a
    spoofed X-Forwarded-For ignored; behind one, the entry that proxy wrote."""
    from asgiref.sync import sync_to_async

    from config.asgi import application

    settings.TRUSTED_PROXY_COUNT = trusted
    family = await sync_to_async(FamilyFactory)()
    body = json.dumps({"id_number": family.main_applicant.id_number}).encode()
    token = "t" * 32  # a CSRF secret, as the login page's cookie carries it
    scope = http_scope(
        [
            (b"content-length", str(len(body)).encode()),
            (b"x-forwarded-for", b"203.0.113.1, 198.51.100.7"),
            (b"cookie", f"csrftoken={token}".encode()),
            (b"x-csrftoken", token.encode()),
        ]
    )
    communicator = ApplicationCommunicator(application, {**scope, "client": ("10.7.7.7", 1)})
    await communicator.send_input({"type": "http.request", "body": body})
    status, answer = await response_of(communicator)
    assert status in (200, 202), answer
    assert await sync_to_async(lambda: SmsCode.objects.get().ip)() == recorded


def test_a_huge_id_in_a_staff_review_url_is_a_404(client, django_user_model):
    from django.contrib.auth.models import Group

    staff = django_user_model.objects.create(username="rev-huge", is_staff=True)
    staff.groups.set([Group.objects.get(name="reviewer")])
    client.force_login(staff)
    huge = 2**63
    for tail in ("review/", "document/", "card/front/"):
        # the id converter refuses the tool route; the admin's own catch-all then says the
        # agreement does not exist (a redirect with a message), never a 500
        response = client.get(f"/admin/signing/agreement/{huge}/{tail}", follow=True)
        assert response.status_code in (200, 404)
        assert response.redirect_chain == [] or "不存在" in response.content.decode()
