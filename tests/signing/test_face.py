"""Face recognition through the provider interface.

The development provider end to end with the Django test client (its outgoing callback is
routed back into the app through the test client), the callback's signature, replay and
freshness rules, exactly-once application (also under real concurrency on PostgreSQL, after a
control case that shows the race without the row locks), and the Tencent FaceID adapter
against a local fake that verifies TC3 request signatures the way Tencent does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client

from signing.face import (
    FaceCallbackInvalid,
    FaceProviderError,
    FaceResult,
    FaceResultPending,
    get_provider,
    services,
)
from signing.face import dev as dev_module
from signing.face.dev import DevFaceProvider, dev_face_session, dev_signed_headers
from signing.face.services import (
    face_check_apply,
    face_check_begin,
    face_check_refresh,
    face_check_start,
)
from signing.face.tencent import TencentFaceProvider
from signing.models import Agreement, AgreementTemplate, Evidence, FaceCheck
from tests.factories import FamilyFactory
from tests.fakes.tencent_cloud import FakeFaceId

TZ = ZoneInfo("Asia/Shanghai")
# Guide 001's window: 2026-01-20 09:30 to 2026-01-23 18:00.
WINDOW_START = datetime(2026, 1, 20, 9, 30, tzinfo=TZ)
WINDOW_END = datetime(2026, 1, 23, 18, 0, tzinfo=TZ)
NOW = datetime(2026, 1, 21, 10, 0, tzinfo=TZ)
DEV_SECRET = "test-dev-face-secret"
CALLBACK = "/api/v1/face/callback/dev/"
RETURN_URL = "http://testserver/h5/signing/face/done/?agreement=1"
CALLBACK_URL = f"http://testserver{CALLBACK}"
MARKER = b"FAKE-SELFIE-PIXELS-" + secrets.token_hex(8).encode()
IMAGE = b"\xff\xd8\xff\xe0" + MARKER + b"\xff\xd9"  # a "JPEG" we can search for

Step = Agreement.Step


# ------------------------------------------------------------------------------ fixtures


@pytest.fixture
def face(settings, tmp_path):
    settings.DEBUG = True
    settings.SITE_URL = "http://testserver"
    settings.MEDIA_ROOT = tmp_path / "media"
    conf = copy.deepcopy(settings.FACE)
    conf.update(
        PROVIDER="dev",
        DEV_SECRET=DEV_SECRET,
        PASS_SCORE=70,
        MAX_STARTS_PER_ATTEMPT=10,
        CALLBACK_MAX_AGE_SECONDS=300,
    )
    settings.FACE = conf
    return conf


@pytest.fixture
def pinned():
    with time_machine.travel(NOW, tick=False):
        yield


def make_agreement(*, step: int = Step.IDENTITY_CONFIRMED, status: str = "pending") -> Agreement:
    family = FamilyFactory()
    template, _ = AgreementTemplate.objects.get_or_create(
        kind="rent_subsidy", version=1, defaults={"title": "租金补贴协议", "body": "正文"}
    )
    text = f"租金补贴协议 {family.main_applicant.real_name}"
    return Agreement.objects.create(
        family=family,
        template=template,
        title="租金补贴协议",
        rendered_text=text,
        text_hash=hashlib.sha256(text.encode()).hexdigest(),
        signer_name=family.main_applicant.real_name,
        window_starts_at=WINDOW_START,
        window_ends_at=WINDOW_END,
        status=status,
        step=step,
        verification_code=secrets.token_hex(6).upper(),
        created_at=WINDOW_START - timedelta(days=1),
        signed_at=NOW if status in ("signed", "sealed") else None,
        sealed_at=NOW if status == "sealed" else None,
    )


@pytest.fixture
def agreement(db):
    return make_agreement()


class ClientTransport(httpx.BaseTransport):
    """The provider's outgoing HTTP, delivered into this app through the Django test client
    (same database transaction as the test). Records what was sent and answered."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.fail = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        if self.fail:
            raise httpx.ConnectError("connection refused", request=request)
        extra = {k: v for k, v in request.headers.items() if k.lower().startswith("x-")}
        response = Client().generic(
            request.method,
            request.url.raw_path.decode(),
            data=body,
            content_type=request.headers.get("content-type", ""),
            headers=extra,
        )
        self.calls.append(
            {
                "url": str(request.url),
                "headers": dict(request.headers),
                "body": body,
                "status": response.status_code,
                "answer": response.content,
            }
        )
        return httpx.Response(response.status_code, content=response.content)


@pytest.fixture
def transport(monkeypatch):
    t = ClientTransport()
    monkeypatch.setattr(dev_module, "callback_transport", t)
    return t


def signed_post(
    client: Client,
    body: dict | bytes,
    *,
    at: datetime = NOW,
    nonce: str | None = None,
    secret: str = DEV_SECRET,
    path: str = CALLBACK,
    headers: dict | None = None,
):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signed = dev_signed_headers(body=raw, timestamp=int(at.timestamp()), nonce=nonce, secret=secret)
    return client.post(path, data=raw, content_type="application/json", headers=headers or signed)


def result_body(face_check: FaceCheck, *, passed=True, score=88.5, result_id="devres_x1") -> dict:
    return {
        "order_id": face_check.order_id,
        "provider_order_id": "devface_whatever",
        "passed": passed,
        "score": score,
        "result_id": result_id,
    }


def snapshot(face_check: FaceCheck) -> tuple:
    face_check.refresh_from_db()
    return (face_check.status, face_check.score, face_check.result_id, face_check.completed_at)


def face_evidence(agreement: Agreement) -> list[Evidence]:
    return list(Evidence.objects.filter(agreement=agreement, kind="face_check_result"))


def error_code(response) -> str:
    return response.json()["error"]["code"]


# ------------------------------------------------------------- development provider: e2e


@pytest.mark.django_db
def test_dev_provider_end_to_end(face, transport, agreement, pinned, client, settings):
    face_check, start = face_check_begin(
        agreement=agreement, now=NOW, return_url=RETURN_URL, callback_url=CALLBACK_URL
    )
    assert face_check.status == FaceCheck.Status.STARTED
    assert face_check.provider == "dev" and face_check.attempt == agreement.attempt
    assert start.redirect_url == f"http://testserver/dev/face/{start.provider_order_id}/"

    # The provider's page on the phone.
    page = client.get(start.redirect_url)
    html = page.content.decode()
    assert page.status_code == 200
    assert "人脸识别（开发环境模拟）" in html
    assert "模拟通过" in html and "模拟不通过" in html
    # The camera preview is the page's own script (a static file: the CSP allows no inline one).
    assert '<script type="module" src="/static/h5/dev-face.js"></script>' in html
    assert "getUserMedia" in (settings.BASE_DIR / "h5/static/h5/dev-face.js").read_text()
    assert 'type="file" accept="image/*" capture="user"' in html
    assert "不会上传" in html and "不会保存" in html
    # The picker has no name and sits outside the form: a browser cannot submit the picture.
    form = html[html.index('<form method="post"') : html.index("</form>")]
    assert 'type="file"' not in form and "multipart" not in html
    applicant = agreement.family.main_applicant
    assert applicant.id_number not in html and applicant.id_number_masked in html

    # 「模拟通过」, with a picture attached anyway (a hostile or buggy client): ignored.
    response = client.post(
        start.redirect_url,
        {"decision": "pass", "selfie": SimpleUploadedFile("me.jpg", IMAGE, "image/jpeg")},
    )
    assert response.status_code == 302
    assert response["Location"] == f"{RETURN_URL}&token={start.provider_order_id}"

    # One signed server-to-server callback, accepted.
    [call] = transport.calls
    assert call["url"] == CALLBACK_URL
    assert call["status"] == 200 and json.loads(call["answer"]) == {"ok": True}
    headers = {k.lower(): v for k, v in call["headers"].items()}
    assert headers["x-face-timestamp"] == str(int(NOW.timestamp()))
    assert len(headers["x-face-nonce"]) >= 16 and len(headers["x-face-signature"]) == 64
    sent = json.loads(call["body"])
    assert set(sent) == {"order_id", "provider_order_id", "passed", "score", "result_id"}
    assert sent["order_id"] == face_check.order_id and sent["passed"] is True

    assert snapshot(face_check) == (
        FaceCheck.Status.PASSED,
        sent["score"],
        sent["result_id"],
        NOW,
    )
    assert face_check.score >= 70 and face_check.result_id.startswith("devres_")
    [entry] = face_evidence(agreement)
    assert entry.data["order_id"] == face_check.order_id
    assert entry.data["result_id"] == face_check.result_id
    assert entry.data["status"] == "passed" and entry.actor is None
    # Not advanced here: signing/agreements/flow.py's face_verified does that.
    agreement.refresh_from_db()
    assert agreement.step == Step.IDENTITY_CONFIRMED

    # No image anywhere: not in the callback, the database rows, the provider's state, or on disk.
    marker = MARKER
    assert marker not in call["body"]
    for row in [*FaceCheck.objects.values(), *Evidence.objects.values()]:
        assert marker.decode() not in repr(row)
    session = dev_face_session(start.provider_order_id)
    assert marker.decode() not in repr(session)
    media = settings.MEDIA_ROOT
    assert not media.exists() or not any(media.rglob("*"))

    # The page now says it is over and links back with the token.
    done = client.get(start.redirect_url).content.decode()
    assert "已模拟通过" in done and "模拟通过</button>" not in done


@pytest.mark.django_db
def test_dev_simulated_failure_is_recorded_as_failed(face, transport, agreement, pinned, client):
    face_check, start = face_check_begin(
        agreement=agreement, now=NOW, return_url=RETURN_URL, callback_url=CALLBACK_URL
    )
    response = client.post(start.redirect_url, {"decision": "fail"})
    assert response.status_code == 302
    assert snapshot(face_check)[0] == FaceCheck.Status.FAILED
    assert face_evidence(agreement)[0].data["provider_passed"] is False


@pytest.mark.django_db
def test_the_first_decision_sticks_and_a_redelivery_changes_nothing(
    face, transport, agreement, client
):
    with time_machine.travel(NOW, tick=False):
        face_check, start = face_check_begin(
            agreement=agreement, now=NOW, return_url=RETURN_URL, callback_url=CALLBACK_URL
        )
        client.post(start.redirect_url, {"decision": "pass"})
    first = snapshot(face_check)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        response = client.post(start.redirect_url, {"decision": "fail"})
    assert response.status_code == 302
    assert len(transport.calls) == 2 and all(c["status"] == 200 for c in transport.calls)
    # The second delivery repeats the first decision, signed afresh.
    bodies = [json.loads(c["body"]) for c in transport.calls]
    assert bodies[0] == bodies[1]
    nonces = {c["headers"]["x-face-nonce"] for c in transport.calls}
    assert len(nonces) == 2
    assert snapshot(face_check) == first
    assert first[0] == FaceCheck.Status.PASSED and first[3] == NOW
    assert len(face_evidence(agreement)) == 1


@pytest.mark.django_db
def test_a_lost_callback_is_recovered_by_polling_the_provider(
    face, transport, agreement, pinned, client
):
    face_check, start = face_check_begin(
        agreement=agreement, now=NOW, return_url=RETURN_URL, callback_url=CALLBACK_URL
    )
    assert face_check_refresh(provider_order_id=start.provider_order_id, now=NOW) is None

    transport.fail = True
    response = client.post(start.redirect_url, {"decision": "pass"})
    assert response.status_code == 302  # the phone goes back anyway, like with a real provider
    assert snapshot(face_check)[0] == FaceCheck.Status.STARTED
    assert "结果通知未送达" in client.get(start.redirect_url).content.decode()

    polled = face_check_refresh(provider_order_id=start.provider_order_id, now=NOW)
    assert polled.pk == face_check.pk and polled.status == FaceCheck.Status.PASSED
    assert len(face_evidence(agreement)) == 1
    with pytest.raises(FaceCallbackInvalid):
        face_check_refresh(provider_order_id="devface_" + "x" * 32, now=NOW)


@pytest.mark.django_db
def test_dev_page_is_debug_only_and_refuses_unknown_sessions_and_decisions(
    face, transport, agreement, pinned, client, settings
):
    _, start = face_check_begin(
        agreement=agreement, now=NOW, return_url=RETURN_URL, callback_url=CALLBACK_URL
    )
    assert client.get("/dev/face/devface_" + "n" * 32 + "/").status_code == 404
    assert client.get("/dev/face/not-a-session/").status_code == 404
    bad = client.post(start.redirect_url, {"decision": "maybe"})
    assert bad.status_code == 400 and transport.calls == []
    assert client.put(start.redirect_url).status_code == 405

    settings.DEBUG = False
    assert client.get(start.redirect_url).status_code == 404
    assert client.post(start.redirect_url, {"decision": "pass"}).status_code == 404
    assert transport.calls == []


# ---------------------------------------------------------------- the callback's defences


@pytest.fixture
def started(face, agreement, pinned):
    return face_check_start(agreement=agreement, now=NOW)


@pytest.mark.django_db
def test_a_forged_signature_is_refused_and_changes_nothing(started, client, agreement):
    before = snapshot(started)
    body = result_body(started)

    wrong_key = signed_post(client, body, secret="someone-elses-secret")
    assert wrong_key.status_code == 400 and error_code(wrong_key) == "face_callback_invalid"

    raw = json.dumps(body).encode()
    genuine = dev_signed_headers(body=raw, timestamp=int(NOW.timestamp()), secret=DEV_SECRET)
    tampered = json.dumps({**body, "score": 99.9}).encode()
    response = signed_post(client, tampered, headers=genuine)
    assert response.status_code == 400 and error_code(response) == "face_callback_invalid"

    for drop in ("X-Face-Timestamp", "X-Face-Nonce", "X-Face-Signature"):
        partial = {k: v for k, v in genuine.items() if k != drop}
        response = signed_post(client, raw, headers=partial)
        assert response.status_code == 400 and error_code(response) == "face_callback_invalid"
    unsigned = client.post(CALLBACK, data=raw, content_type="application/json")
    assert unsigned.status_code == 400

    not_hex = {**genuine, "X-Face-Signature": "z" * 64}
    assert signed_post(client, raw, headers=not_hex).status_code == 400

    assert snapshot(started) == before and face_evidence(agreement) == []


@pytest.mark.django_db
def test_a_forgery_does_not_use_up_the_nonce_of_a_genuine_callback(started, client):
    nonce = "n" * 24
    forged = signed_post(client, result_body(started), nonce=nonce, secret="forger")
    assert forged.status_code == 400
    genuine = signed_post(client, result_body(started), nonce=nonce)
    assert genuine.status_code == 200
    assert snapshot(started)[0] == FaceCheck.Status.PASSED


@pytest.mark.django_db
def test_a_replayed_callback_is_refused(started, client, agreement):
    raw = json.dumps(result_body(started)).encode()
    headers = dev_signed_headers(body=raw, timestamp=int(NOW.timestamp()), secret=DEV_SECRET)
    first = signed_post(client, raw, headers=headers)
    assert first.status_code == 200
    applied = snapshot(started)

    replay = signed_post(client, raw, headers=headers)
    assert replay.status_code == 400 and error_code(replay) == "face_callback_replayed"
    assert snapshot(started) == applied and len(face_evidence(agreement)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "offset,accepted",
    [
        (timedelta(seconds=-301), False),
        (timedelta(seconds=301), False),
        (timedelta(days=-1), False),
        (timedelta(seconds=-300), True),
        (timedelta(seconds=300), True),
    ],
)
def test_a_stale_timestamp_is_refused(started, client, offset, accepted):
    response = signed_post(client, result_body(started), at=NOW + offset)
    if accepted:
        assert response.status_code == 200
        assert snapshot(started)[0] == FaceCheck.Status.PASSED
    else:
        assert response.status_code == 400 and error_code(response) == "face_callback_stale"
        assert snapshot(started)[0] == FaceCheck.Status.STARTED


@pytest.mark.django_db
def test_the_same_result_delivered_twice_is_applied_once(started, client, agreement):
    body = result_body(started)
    assert signed_post(client, body).status_code == 200
    applied = snapshot(started)
    with time_machine.travel(NOW + timedelta(minutes=2), tick=False):
        again = signed_post(client, body, at=NOW + timedelta(minutes=2))
        assert again.status_code == 200 and again.json() == {"ok": True}
        # A conflicting later answer does not overturn the first either.
        contrary = result_body(started, passed=False, score=10.0, result_id="devres_other")
        assert signed_post(client, contrary, at=NOW + timedelta(minutes=2)).status_code == 200
    assert snapshot(started) == applied
    assert applied[0] == FaceCheck.Status.PASSED and applied[3] == NOW
    assert len(face_evidence(agreement)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "passed,score,status",
    [
        (True, 70.0, "passed"),
        (True, 69.99, "failed"),
        (True, None, "failed"),
        (False, 99.0, "failed"),
    ],
)
def test_pass_needs_the_provider_verdict_and_the_pass_score(started, client, passed, score, status):
    response = signed_post(client, result_body(started, passed=passed, score=score))
    assert response.status_code == 200
    assert snapshot(started)[:2] == (status, score)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b"not json",
        lambda b: b"[]",
        lambda b: b"\xff\xfe",
        lambda b: {**b, "passed": "yes"},
        lambda b: {**b, "score": 101},
        lambda b: {**b, "score": -1},
        lambda b: {**b, "score": True},
        lambda b: {**b, "score": "88"},
        lambda b: {k: v for k, v in b.items() if k != "result_id"},
        lambda b: {**b, "result_id": ""},
        lambda b: {**b, "order_id": "x" * 65},
        lambda b: {**b, "order_id": 42},
    ],
)
def test_a_malformed_but_signed_body_is_refused(started, client, mutate):
    response = signed_post(client, mutate(result_body(started)))
    assert response.status_code == 400 and error_code(response) == "face_callback_invalid"
    assert snapshot(started)[0] == FaceCheck.Status.STARTED


@pytest.mark.django_db
def test_unknown_orders_and_providers_are_refused(started, client):
    unknown = signed_post(client, {**result_body(started), "order_id": "fc_" + "0" * 32})
    assert unknown.status_code == 404 and error_code(unknown) == "face_order_unknown"

    # An order started with another provider cannot be completed by this one.
    FaceCheck.objects.filter(pk=started.pk).update(provider="tencent")
    other = signed_post(client, result_body(started))
    assert other.status_code == 404 and error_code(other) == "face_order_unknown"
    FaceCheck.objects.filter(pk=started.pk).update(provider="dev")

    # Only the configured provider's path exists.
    wrong_path = signed_post(client, result_body(started), path="/api/v1/face/callback/tencent/")
    assert wrong_path.status_code == 404 and error_code(wrong_path) == "face_provider_unknown"

    assert client.get(CALLBACK).status_code == 405
    assert snapshot(started)[0] == FaceCheck.Status.STARTED


@pytest.mark.django_db
def test_the_callback_needs_no_session_or_csrf_token(started):
    client = Client(enforce_csrf_checks=True)
    assert signed_post(client, result_body(started)).status_code == 200


def test_apply_refuses_an_unknown_order(db, face):
    result = FaceResult(order_id="fc_nope", passed=True, score=90.0, result_id="r", provider="dev")
    with pytest.raises(FaceCallbackInvalid) as caught:
        face_check_apply(result=result, now=NOW)
    assert caught.value.code == "face_order_unknown"


# --------------------------------------------------------------------- starting a check


@pytest.mark.django_db
@pytest.mark.parametrize(
    "step,status,now,code",
    [
        (Step.ECERT_CONSENTED, "pending", NOW, "step_out_of_order"),
        (Step.FACE_VERIFIED, "pending", NOW, "step_out_of_order"),
        (Step.IDENTITY_CONFIRMED, "signed", NOW, "agreement_not_pending"),
        (Step.IDENTITY_CONFIRMED, "void", NOW, "agreement_not_pending"),
        (
            Step.IDENTITY_CONFIRMED,
            "pending",
            WINDOW_START - timedelta(seconds=1),
            "signing_not_open",
        ),
        (Step.IDENTITY_CONFIRMED, "pending", WINDOW_END, "signing_closed"),
    ],
)
def test_a_check_starts_only_at_the_face_step_of_an_open_agreement(face, step, status, now, code):
    agreement = make_agreement(step=step, status=status)
    with pytest.raises(Exception) as caught:
        face_check_start(agreement=agreement, now=now)
    assert caught.value.code == code
    assert not FaceCheck.objects.exists()


@pytest.mark.django_db
def test_each_start_is_a_new_order_and_starts_are_capped(face, agreement):
    face["MAX_STARTS_PER_ATTEMPT"] = 3
    orders = {face_check_start(agreement=agreement, now=NOW).order_id for _ in range(3)}
    assert len(orders) == 3
    with pytest.raises(Exception) as caught:
        face_check_start(agreement=agreement, now=NOW)
    assert caught.value.code == "face_attempts_exceeded"


def test_the_provider_is_found_by_name(face, settings):
    assert isinstance(get_provider(), DevFaceProvider)
    settings.FACE = {**settings.FACE, "PROVIDER": "tencent"}
    assert isinstance(get_provider(), TencentFaceProvider)


# ------------------------------------------------------------------ concurrency (PostgreSQL)


def _race(monkeypatch, results: list[FaceResult], *, locked: bool):
    """Two deliveries at once. Each waits after taking its locks until the other has taken
    them too (at most a second): with the row locks the second cannot get there while the
    first holds them, so the wait times out and they run one after the other."""
    original = services._lock_for_apply
    barrier = threading.Barrier(len(results))
    writers: list[str] = []
    record = services._record

    def unlocked(order_id, provider):
        return FaceCheck.objects.select_related("agreement").get(
            order_id=order_id, provider=provider
        )

    def lock_then_meet(order_id, provider):
        face_check = (original if locked else unlocked)(order_id, provider)
        try:
            barrier.wait(timeout=1)
        except threading.BrokenBarrierError:
            pass
        return face_check

    def counting_record(face_check, result, now):
        writers.append(result.result_id)
        record(face_check, result, now)

    monkeypatch.setattr(services, "_lock_for_apply", lock_then_meet)
    monkeypatch.setattr(services, "_record", counting_record)

    def deliver(result):
        try:
            return face_check_apply(result=result, now=NOW)
        except Exception as exc:  # the control case may trip over the evidence constraint
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(len(results)) as pool:
        return writers, list(pool.map(deliver, results))


def _two_results(face_check: FaceCheck) -> list[FaceResult]:
    return [
        FaceResult(
            order_id=face_check.order_id,
            passed=True,
            score=91.0,
            result_id="r-pass",
            provider="dev",
        ),
        FaceResult(
            order_id=face_check.order_id,
            passed=False,
            score=12.0,
            result_id="r-fail",
            provider="dev",
        ),
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_control_without_the_row_locks_both_deliveries_apply(face, monkeypatch):
    agreement = make_agreement()
    face_check = face_check_start(agreement=agreement, now=NOW)
    writers, _ = _race(monkeypatch, _two_results(face_check), locked=False)
    assert sorted(writers) == ["r-fail", "r-pass"]  # the race: both saw STARTED and wrote


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_are_applied_once(face, monkeypatch):
    agreement = make_agreement()
    face_check = face_check_start(agreement=agreement, now=NOW)
    writers, outcomes = _race(monkeypatch, _two_results(face_check), locked=True)
    assert len(writers) == 1
    assert all(isinstance(o, FaceCheck) for o in outcomes)
    face_check.refresh_from_db()
    assert face_check.result_id == writers[0]
    assert {o.result_id for o in outcomes} == {writers[0]}
    assert len(face_evidence(agreement)) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_http_deliveries_with_fresh_nonces_are_applied_once(face):
    agreement = make_agreement()
    face_check = face_check_start(agreement=agreement, now=NOW)
    raw = json.dumps(result_body(face_check)).encode()
    workers = 8
    start = threading.Barrier(workers)

    def deliver(_):
        headers = dev_signed_headers(body=raw, timestamp=int(time.time()), secret=DEV_SECRET)
        start.wait()
        try:
            response = Client().post(
                CALLBACK, data=raw, content_type="application/json", headers=headers
            )
            return response.status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(workers) as pool:
        statuses = list(pool.map(deliver, range(workers)))
    assert statuses == [200] * workers
    face_check.refresh_from_db()
    assert face_check.status == FaceCheck.Status.PASSED
    assert len(face_evidence(agreement)) == 1


# ------------------------------------------------------------------- Tencent FaceID adapter

T_SECRET_ID = "AKIDanjuFaceTestSecretId000000000000"
T_SECRET_KEY = "anjuFaceTestSecretKey00000000000"
RULE_ID = "7"


@pytest.fixture
def fake_faceid():
    server = FakeFaceId(secret_id=T_SECRET_ID, secret_key=T_SECRET_KEY, rule_id=RULE_ID)
    server.start()
    yield server
    server.close()


@pytest.fixture
def tencent(face, fake_faceid, monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    face["PROVIDER"] = "tencent"
    face["TENCENT"].update(
        ENDPOINT=fake_faceid.url,
        REGION="",
        SECRET_ID=T_SECRET_ID,
        SECRET_KEY=T_SECRET_KEY,
        RULE_ID=RULE_ID,
        TIMEOUT_SECONDS=5,
    )
    return face["TENCENT"]


def tencent_callback(client: Client, token: str, *, as_json: bool = False):
    if as_json:
        return client.post(
            "/api/v1/face/callback/tencent/", data={"token": token}, content_type="application/json"
        )
    return client.post(
        "/api/v1/face/callback/tencent/",
        data=f"token={token}",
        content_type="application/x-www-form-urlencoded",
    )


@pytest.mark.django_db
def test_tencent_start_is_a_signed_detect_auth(tencent, fake_faceid, agreement, pinned):
    face_check, start = face_check_begin(
        agreement=agreement, now=NOW, return_url=RETURN_URL, callback_url=CALLBACK_URL
    )
    [request] = fake_faceid.requests
    assert request["rejected"] is None
    assert request["action"] == "DetectAuth"
    assert request["headers"]["Host"] == fake_faceid.url.removeprefix("http://")
    assert request["headers"]["X-TC-Timestamp"] == str(int(NOW.timestamp()))
    assert "X-TC-Region" not in request["headers"]
    applicant = agreement.family.main_applicant
    assert request["body"] == {
        "RuleId": RULE_ID,
        "IdCard": applicant.id_number,
        "Name": applicant.real_name,
        "RedirectUrl": RETURN_URL,
        "Extra": face_check.order_id,
    }
    assert start.provider_order_id in fake_faceid.sessions
    assert start.redirect_url.startswith("https://open.weixin.qq.com/")
    assert face_check.provider == "tencent"


@pytest.mark.django_db
@pytest.mark.parametrize("as_json", [False, True])
def test_tencent_result_is_fetched_by_biz_token(
    tencent, fake_faceid, agreement, pinned, client, as_json
):
    face_check, start = face_check_begin(
        agreement=agreement, now=NOW, return_url=RETURN_URL, callback_url=CALLBACK_URL
    )
    token = start.provider_order_id

    pending = tencent_callback(client, token, as_json=as_json)
    assert pending.status_code == 409 and error_code(pending) == "face_result_pending"
    assert snapshot(face_check)[0] == FaceCheck.Status.STARTED

    fake_faceid.finish(token, err_code=0, sim="95.51")
    done = tencent_callback(client, token, as_json=as_json)
    assert done.status_code == 200 and done.json() == {"ok": True}
    assert snapshot(face_check) == (FaceCheck.Status.PASSED, 95.51, token, NOW)

    fetches = [r for r in fake_faceid.requests if r["action"] == "GetDetectInfoEnhanced"]
    assert len(fetches) == 2 and all(r["rejected"] is None for r in fetches)
    # Text only: no ID card images, best frame or video ever asked for.
    assert all(
        r["body"] == {"BizToken": token, "RuleId": RULE_ID, "InfoType": "1"} for r in fetches
    )

    again = tencent_callback(client, token, as_json=as_json)
    assert again.status_code == 200 and len(face_evidence(agreement)) == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "err_code,sim,status",
    [
        (0, "70.00", "passed"),
        (0, "69.90", "failed"),
        (-1001, "88.00", "failed"),
        (3, None, "failed"),
    ],
)
def test_tencent_verdict_and_score(tencent, fake_faceid, agreement, pinned, err_code, sim, status):
    face_check, start = face_check_begin(
        agreement=agreement, now=NOW, return_url=RETURN_URL, callback_url=CALLBACK_URL
    )
    fake_faceid.finish(start.provider_order_id, err_code=err_code, sim=sim)
    polled = face_check_refresh(provider_order_id=start.provider_order_id, now=NOW)
    assert polled.status == status
    assert polled.score == (float(sim) if sim else None)


@pytest.mark.django_db
def test_tencent_forged_or_malformed_tokens_are_refused(tencent, fake_faceid, started, client):
    unknown = tencent_callback(client, str(uuid.uuid4()).upper())
    assert unknown.status_code == 400 and error_code(unknown) == "face_callback_invalid"
    asked = len(fake_faceid.requests)
    for bad in ("", "short", "../../etc", "A" * 65):
        response = tencent_callback(client, bad)
        assert response.status_code == 400 and error_code(response) == "face_callback_invalid"
    assert (
        client.post(
            "/api/v1/face/callback/tencent/", data=b"{", content_type="application/json"
        ).status_code
        == 400
    )
    assert len(fake_faceid.requests) == asked  # nothing malformed is sent on to Tencent
    assert snapshot(started)[0] == FaceCheck.Status.STARTED


@pytest.mark.django_db
def test_tencent_result_for_an_order_we_do_not_know(tencent, fake_faceid, pinned, client):
    provider = TencentFaceProvider()
    start = provider.start(
        order_id="fc_" + "e" * 32,
        real_name="张三",
        id_number="44030419900101001X",
        return_url=RETURN_URL,
        callback_url=CALLBACK_URL,
    )
    fake_faceid.finish(start.provider_order_id)
    response = tencent_callback(client, start.provider_order_id)
    assert response.status_code == 404 and error_code(response) == "face_order_unknown"


@pytest.mark.django_db
def test_tencent_outage_answers_503_and_changes_nothing(
    tencent, fake_faceid, agreement, pinned, client
):
    face_check, start = face_check_begin(
        agreement=agreement, now=NOW, return_url=RETURN_URL, callback_url=CALLBACK_URL
    )
    fake_faceid.finish(start.provider_order_id)
    fake_faceid.http_failures = 1
    response = tencent_callback(client, start.provider_order_id)
    assert response.status_code == 503 and error_code(response) == "face_provider_unavailable"
    assert response["Retry-After"] == "5"  # a domain Unavailable, mapped in one place
    assert snapshot(face_check)[0] == FaceCheck.Status.STARTED
    assert tencent_callback(client, start.provider_order_id).status_code == 200
    assert snapshot(face_check)[0] == FaceCheck.Status.PASSED


def test_tencent_wrong_key_is_refused_and_not_retryable(tencent, fake_faceid):
    tencent["SECRET_KEY"] = "notTheRightKey000000000000000000"
    with pytest.raises(FaceProviderError) as caught:
        TencentFaceProvider().start(
            order_id="fc_1",
            real_name="张三",
            id_number="44030419900101001X",
            return_url=RETURN_URL,
            callback_url=CALLBACK_URL,
        )
    assert "AuthFailure.SignatureFailure" in str(caught.value)
    assert caught.value.retryable is False


def test_tencent_errors_never_echo_the_id_number_or_name(tencent, fake_faceid):
    fake_faceid.error = (
        "InvalidParameterValue.IdCard",
        "身份证号44030419900101001X与姓名张三不匹配",
    )
    with pytest.raises(FaceProviderError) as caught:
        TencentFaceProvider().start(
            order_id="fc_1",
            real_name="张三",
            id_number="44030419900101001X",
            return_url=RETURN_URL,
            callback_url=CALLBACK_URL,
        )
    text = str(caught.value)
    assert "44030419900101001X" not in text and "张三" not in text
    assert "InvalidParameterValue.IdCard" in text


def test_tencent_missing_configuration_is_not_retryable(tencent, fake_faceid):
    tencent["RULE_ID"] = ""
    with pytest.raises(FaceProviderError) as caught:
        TencentFaceProvider().fetch_result(provider_order_id=str(uuid.uuid4()))
    assert "RULE_ID" in str(caught.value) and caught.value.retryable is False
    assert fake_faceid.requests == []


def test_tencent_pending_result_raises_pending_from_parse_callback(tencent, fake_faceid):
    provider = TencentFaceProvider()
    start = provider.start(
        order_id="fc_2",
        real_name="李四",
        id_number="44030419900101001X",
        return_url=RETURN_URL,
        callback_url=CALLBACK_URL,
    )
    assert provider.fetch_result(provider_order_id=start.provider_order_id) is None
    with pytest.raises(FaceResultPending):
        provider.parse_callback(body=f"token={start.provider_order_id}".encode(), headers={})
