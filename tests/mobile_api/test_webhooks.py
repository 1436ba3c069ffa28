# ruff: noqa: F811  (fixtures imported from tests/signing/test_face.py are test arguments)
"""The two provider webhooks (the face callback and the payment notification) hold the same
line against anonymous callers: the provider in the path is one of a fixed set (an enum in
the schema; any other value is the API's 404), junk is refused before anything is checked,
asked or stored, each is throttled per address (429 with Retry-After), real refusals keep
their trace, and every status they answer is in the schema. The payment side's junk and
audit rules are tested in test_hostile_input.py; the face callback's signature rules in
tests/signing/test_face.py."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client
from drf_spectacular.generators import SchemaGenerator

from signing.face import PROVIDERS as FACE_PROVIDERS
from signing.face.base import CALLBACK_MAX_BYTES
from signing.face.dev import dev_signed_headers
from signing.lease.payments import PROVIDERS as PAYMENT_PROVIDERS
from signing.models import Evidence, FaceCheck, PaymentNotification
from tests.mobile_api.conftest import error_code
from tests.signing.test_face import (  # noqa: F401  (fixtures)
    CALLBACK,
    DEV_SECRET,
    NOW,
    agreement,
    face,
    fake_faceid,
    pinned,
    result_body,
    signed_post,
    started,
    tencent,
)

FACE_PATH = "/api/v1/face/callback/{provider}/"
PAY_PATH = "/api/v1/payments/notify/{provider}/"
# Not a provider: unknown names, a near miss, case, traversal-looking and non-ASCII text.
NOT_PROVIDERS = ["wechat", "Dev", "dev2", "..", "%E4%BA%BA", "x" * 300]


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _face_rows() -> tuple:
    return (
        list(FaceCheck.objects.values_list("status", "score", "result_id", "completed_at")),
        Evidence.objects.count(),
    )


def _throttle(settings, scope: str, rate: str) -> None:
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            scope: rate,
        },
    }


# ------------------------------------------------------------ the provider is an enum


@pytest.mark.parametrize(
    ("path", "values"),
    [
        ("/api/v1/face/callback/{provider}/", set(FACE_PROVIDERS)),
        ("/api/v1/payments/notify/{provider}/", set(PAYMENT_PROVIDERS)),
    ],
)
def test_the_provider_path_parameter_is_an_enum_of_the_known_providers(schema, path, values):
    (parameter,) = [
        p for p in schema["paths"][path]["post"]["parameters"] if p["name"] == "provider"
    ]
    assert parameter["in"] == "path" and parameter["required"]
    assert set(parameter["schema"]["enum"]) == values
    assert {"dev", "tencent"} <= set(FACE_PROVIDERS) and "dev" in PAYMENT_PROVIDERS


@pytest.mark.django_db
@pytest.mark.parametrize("provider", NOT_PROVIDERS)
def test_an_unknown_face_provider_is_the_api_404_and_changes_nothing(started, provider):
    raw = json.dumps(result_body(started)).encode()
    headers = dev_signed_headers(body=raw, timestamp=int(NOW.timestamp()), secret=DEV_SECRET)
    before = _face_rows()
    response = Client().post(
        FACE_PATH.format(provider=provider), raw, content_type="application/json", headers=headers
    )
    assert response.status_code == 404 and error_code(response) == "face_provider_unknown"
    assert _face_rows() == before
    # Control: the configured provider's path takes the same signed body.
    response = Client().post(CALLBACK, raw, content_type="application/json", headers=headers)
    assert response.status_code == 200, response.content


@pytest.mark.django_db
@pytest.mark.parametrize("provider", [*NOT_PROVIDERS, "tencent"])
def test_an_unknown_payment_provider_is_the_api_404_and_records_nothing(provider):
    response = Client().post(
        PAY_PATH.format(provider=provider), b"{}", content_type="application/json"
    )
    assert response.status_code == 404 and error_code(response) == "payment_provider_unknown"
    assert not PaymentNotification.objects.exists()


# ------------------------------------------------------- face callback: junk is cheap


JUNK_HEADERS = [
    {},
    {"X-Face-Nonce": "n" * 24},
    {"X-Face-Timestamp": "soon", "X-Face-Nonce": "n" * 24, "X-Face-Signature": "a" * 64},
    {"X-Face-Timestamp": "1768960800", "X-Face-Nonce": "bad nonce!", "X-Face-Signature": "a" * 64},
    {"X-Face-Timestamp": "1768960800", "X-Face-Nonce": "n" * 24, "X-Face-Signature": "xyz"},
]


@pytest.mark.django_db
@pytest.mark.parametrize("headers", JUNK_HEADERS, ids=range(len(JUNK_HEADERS)))
def test_unsigned_or_malformed_face_callbacks_are_refused_unlogged_and_store_nothing(
    started, headers, caplog
):
    before = _face_rows()
    with caplog.at_level(logging.INFO, logger="anju.face"):
        for body in (b"", b"junk", b"{}", json.dumps(result_body(started)).encode(), b"[" * 10_000):
            response = Client().post(
                CALLBACK, body, content_type="application/json", headers=headers
            )
            assert response.status_code == 400 and error_code(response) == "face_callback_invalid"
    assert _face_rows() == before
    assert not [r for r in caplog.records if r.name == "anju.face"]


@pytest.mark.django_db
def test_an_oversized_face_callback_is_refused_unread(started, caplog):
    body = json.dumps({**result_body(started), "pad": " " * CALLBACK_MAX_BYTES}).encode()
    headers = dev_signed_headers(body=body, timestamp=int(NOW.timestamp()), secret=DEV_SECRET)
    before = _face_rows()
    with caplog.at_level(logging.INFO, logger="anju.face"):
        response = Client().post(CALLBACK, body, content_type="application/json", headers=headers)
    assert response.status_code == 400 and error_code(response) == "face_callback_invalid"
    assert _face_rows() == before
    assert not [r for r in caplog.records if r.name == "anju.face"]


@pytest.mark.django_db
def test_a_signed_but_refused_face_callback_is_logged_with_its_code(started, caplog):
    """Control for the two above: what is shaped like the provider's callback and refused
    (a forgery, an unknown order) keeps its trace, as before nothing is applied."""
    before = _face_rows()
    with caplog.at_level(logging.WARNING, logger="anju.face"):
        forged = signed_post(Client(), result_body(started), secret="someone-elses-secret")
        unknown = signed_post(Client(), {**result_body(started), "order_id": "fc_" + "0" * 32})
    assert forged.status_code == 400 and error_code(forged) == "face_callback_invalid"
    assert unknown.status_code == 404 and error_code(unknown) == "face_order_unknown"
    assert _face_rows() == before
    logged = [r.getMessage() for r in caplog.records if r.name == "anju.face"]
    assert len(logged) == 2
    assert "face_callback_invalid" in logged[0] and "127.0.0.1" in logged[0]
    assert "face_order_unknown" in logged[1]


@pytest.mark.django_db
def test_a_valid_signed_face_callback_is_still_applied(started):
    response = signed_post(Client(), result_body(started))
    assert response.status_code == 200 and response.json() == {"ok": True}
    started.refresh_from_db()
    assert started.status == FaceCheck.Status.PASSED and started.result_id == "devres_x1"
    assert Evidence.objects.filter(kind="face_check_result").count() == 1


@pytest.mark.django_db
def test_tencent_junk_is_refused_without_asking_tencent(tencent, fake_faceid, started):
    deep = b'{"token":' * 20_000
    for body, content_type in (
        (deep, "application/json"),
        (b"[" * 20_000, "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"token=a&token=b", "application/x-www-form-urlencoded"),
    ):
        response = Client().post("/api/v1/face/callback/tencent/", body, content_type=content_type)
        assert response.status_code == 400 and error_code(response) == "face_callback_invalid"
    assert fake_faceid.requests == []
    assert FaceCheck.objects.get(pk=started.pk).status == FaceCheck.Status.STARTED


# ------------------------------------------------------------------ face callback: throttle


@pytest.mark.django_db
def test_the_face_callback_is_throttled_per_address(started, settings):
    _throttle(settings, "face_callback", "3/min")
    junk = [Client().post(CALLBACK, b"junk", content_type="application/json") for _ in range(3)]
    assert [r.status_code for r in junk] == [400, 400, 400]
    over = Client().post(CALLBACK, b"junk", content_type="application/json")
    assert over.status_code == 429 and error_code(over) == "throttled"
    assert int(over["Retry-After"]) > 0
    # A genuine callback from the same address waits too, and changes nothing meanwhile.
    assert signed_post(Client(), result_body(started)).status_code == 429
    assert FaceCheck.objects.get(pk=started.pk).status == FaceCheck.Status.STARTED
    # Another address has its own budget: the provider's own delivery goes through.
    other = Client(REMOTE_ADDR="10.9.9.9")
    assert signed_post(other, result_body(started)).status_code == 200
    assert FaceCheck.objects.get(pk=started.pk).status == FaceCheck.Status.PASSED


@pytest.mark.django_db
def test_the_face_callback_has_a_default_rate_without_a_setting(started, settings):
    rates = dict(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    rates.pop("face_callback", None)
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    assert signed_post(Client(), result_body(started)).status_code == 200


# ------------------------------------------------------------ every answer is documented


@pytest.mark.parametrize(
    ("path", "statuses"),
    [
        ("/api/v1/face/callback/{provider}/", {"200", "400", "404", "409", "429", "503"}),
        ("/api/v1/payments/notify/{provider}/", {"200", "400", "404", "429", "503"}),
    ],
)
def test_the_webhooks_document_every_status_they_answer(schema, path, statuses):
    responses = schema["paths"][path]["post"]["responses"]
    assert set(responses) == statuses
    for code in statuses - {"200"}:
        ref = responses[code]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/Error"), (path, code)
    assert "Retry-After" in responses["429"]["description"]
