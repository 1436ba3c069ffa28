"""Login through the unified identity platform, against a fake issuer on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import re
import socket
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.identity import oidc
from accounts.identity.base import VerifiedIdentity, applicant_for_identity
from accounts.models import DeviceSession, User
from core.errors import DomainError
from tests.factories import ApplicantFactory, FamilyFactory, id_number_for
from tests.fakes.oidc_issuer import DROP, FakeIssuer, b64url, new_key

START = "/auth/oidc/start/"
CALLBACK = "/auth/oidc/callback/"
CONFIRM = "/auth/oidc/confirm/"


@pytest.fixture(autouse=True)
def _fresh_oidc_cache():
    oidc.oidc_cache_clear()
    yield
    oidc.oidc_cache_clear()


@pytest.fixture
def issuer():
    fake = FakeIssuer().start()
    yield fake
    fake.stop()


def _configure(settings, fake: FakeIssuer) -> None:
    settings.OIDC = {
        **settings.OIDC,
        "ISSUER": fake.url,
        "CLIENT_ID": fake.client_id,
        "CLIENT_SECRET": fake.client_secret,
        "ID_NUMBER_CLAIM": "id_card_no",
        "NAME_CLAIM": "name",
        "TIMEOUT_SECONDS": 2,
    }


@pytest.fixture
def family(settings, issuer):
    """A family whose main applicant is the person who logs in at the fake issuer."""
    _configure(settings, issuer)
    family = FamilyFactory()
    issuer.identity = {
        "sub": "gd-0001",
        "id_card_no": family.main_applicant.id_number,
        "name": family.main_applicant.real_name,
    }
    return family


def start(client: Client, next_url: str = "") -> str:
    response = client.get(START, {"next": next_url} if next_url else {})
    assert response.status_code == 302, response.status_code
    return response["Location"]


def authorize(url: str) -> str:
    """What the browser does at the platform: follow the authorization URL and return the
    callback path and query the platform redirects back to."""
    response = httpx.get(url, follow_redirects=False)
    assert response.status_code == 302, response.text
    parts = urlsplit(response.headers["location"])
    assert parts.path == CALLBACK
    return f"{parts.path}?{parts.query}"


def login(client: Client):
    return client.get(authorize(start(client)))


def assert_logged_in(client: Client, family) -> None:
    family.main_applicant.refresh_from_db()
    assert family.main_applicant.user_id is not None
    assert client.session.get("_auth_user_id") == str(family.main_applicant.user_id)
    device = DeviceSession.objects.get(user=family.main_applicant.user, ended_at__isnull=True)
    assert device.provider == "oidc"
    assert device.session_key == client.session.session_key


def assert_refused(client: Client, response, *, code: str, status: int) -> None:
    assert response.status_code == status
    assert "h5/error.html" in [template.name for template in response.templates]
    assert response.context["code"] == code
    assert response.context["title"]  # the Chinese message
    assert "_auth_user_id" not in client.session
    assert not DeviceSession.objects.filter(session_key=client.session.session_key).exists()


# -- the whole login ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_login_through_the_platform_ends_logged_in_on_this_device(settings, client, alg):
    fake = FakeIssuer(alg=alg).start()
    try:
        _configure(settings, fake)
        # The callback URL is SITE_URL's (core/urls.py), not whatever Host the request named.
        settings.SITE_URL = "https://anju.example.gov.cn:8443"
        family = FamilyFactory()
        fake.identity = {"sub": "gd-42", "id_card_no": family.main_applicant.id_number}

        url = start(client)
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{fake.url}/authorize"
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        assert query["response_type"] == "code"
        assert query["client_id"] == fake.client_id
        assert query["redirect_uri"] == f"https://anju.example.gov.cn:8443{CALLBACK}"
        assert query["scope"] == settings.OIDC["SCOPES"]
        assert query["code_challenge_method"] == "S256"
        assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
        pending = client.session[oidc.STORE_KEY][query["state"]]
        assert query["code_challenge"] == b64url(
            hashlib.sha256(pending["code_verifier"].encode()).digest()
        )

        response = client.get(authorize(url))

        assert response.status_code == 302
        assert response["Location"] == "/h5/"
        assert_logged_in(client, family)
        assert oidc.STORE_KEY not in client.session  # the state is spent
        assert client.get("/h5/").status_code == 200
    finally:
        fake.stop()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "next_url, goes_to",
    [
        ("/h5/selection/1/formal/?from=sms", "/h5/selection/1/formal/?from=sms"),
        ("//evil.example/steal", "/h5/"),
        ("https://evil.example/", "/h5/"),
    ],
)
def test_the_login_page_s_next_survives_the_platform(client, issuer, family, next_url, goes_to):
    """An SMS link to a selection page, then the login page, then the platform: back to that
    page, not home (h5/views.py `_to_login`); a `next` elsewhere is home."""
    page = client.get("/h5/login/", {"next": next_url}).content.decode()
    button = urlsplit(re.search(r'href="([^"]*)"[^>]*id="oidc-login"', page).group(1))
    assert button.path == START
    assert parse_qs(button.query) == ({} if goes_to == "/h5/" else {"next": [goes_to]})
    response = client.get(authorize(start(client, next_url)))
    assert response.status_code == 302 and response["Location"] == goes_to
    assert_logged_in(client, family)


@pytest.mark.django_db
def test_second_login_reuses_discovery_and_keys_and_replaces_the_first_device(issuer, family):
    first, second = Client(), Client()
    assert login(first).status_code == 302
    asked = login(second)  # another device is logged in: asked first (test_oidc_device.py)
    assert "h5/login_confirm.html" in [t.name for t in asked.templates]
    assert second.post(CONFIRM).status_code == 302

    assert issuer.hits["/.well-known/openid-configuration"] == 1
    assert issuer.hits["/jwks"] == 1
    family.main_applicant.refresh_from_db()
    devices = DeviceSession.objects.filter(user=family.main_applicant.user)
    assert devices.filter(ended_at__isnull=True).get().session_key == second.session.session_key
    assert devices.filter(end_reason=DeviceSession.EndReason.REPLACED).count() == 1


@pytest.mark.django_db
def test_id_number_comes_from_userinfo_when_the_id_token_lacks_it(client, issuer, family):
    issuer.claims_update = {"id_card_no": DROP, "name": DROP}
    issuer.userinfo_claims = {"id_card_no": family.main_applicant.id_number.lower()}

    response = login(client)

    assert response.status_code == 302
    assert issuer.hits["/userinfo"] == 1
    assert_logged_in(client, family)


@pytest.mark.django_db
def test_userinfo_about_someone_else_is_refused(client, issuer, family):
    issuer.claims_update = {"id_card_no": DROP}
    issuer.userinfo_claims = {"sub": "someone-else", "id_card_no": "110105194912310021"}

    response = login(client)

    assert_refused(client, response, code="oidc_invalid_id_token", status=400)


@pytest.mark.django_db
def test_login_after_the_platform_rotates_its_key(client, issuer, family):
    assert login(Client()).status_code == 302
    issuer.rotate_key()

    response = login(client)

    assert "h5/login_confirm.html" in [t.name for t in response.templates]  # the key was fine
    assert client.post(CONFIRM).status_code == 302
    assert issuer.hits["/jwks"] == 2  # the unknown kid made the adapter fetch the keys again
    assert_logged_in(client, family)


# -- state ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_callback_with_another_state_is_refused(client, issuer, family):
    callback = authorize(start(client))
    forged = callback.replace("state=", "state=x")

    assert_refused(client, client.get(forged), code="oidc_state_mismatch", status=400)
    assert issuer.hits["/token"] == 0


@pytest.mark.django_db
def test_callback_in_a_browser_that_did_not_start_the_login_is_refused(client, issuer, family):
    # Login CSRF: an attacker's code and state delivered to the victim's browser.
    callback = authorize(start(Client()))

    assert_refused(client, client.get(callback), code="oidc_state_mismatch", status=400)


@pytest.mark.django_db
def test_state_works_once(client, issuer, family):
    callback = authorize(start(client))
    assert client.get(callback).status_code == 302

    replay = client.get(callback)

    assert replay.status_code == 400
    assert replay.context["code"] == "oidc_state_mismatch"
    assert issuer.hits["/token"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize(("minutes", "ok"), [(9, True), (11, False)])
def test_pending_login_expires_after_ten_minutes(client, issuer, family, minutes, ok):
    callback = authorize(start(client))

    with time_machine.travel(timezone.now() + timedelta(minutes=minutes)):
        response = client.get(callback)

    if ok:
        assert response.status_code == 302
        assert_logged_in(client, family)
    else:
        assert_refused(client, response, code="oidc_state_mismatch", status=400)


@pytest.mark.django_db
def test_the_token_endpoint_receives_the_verifier_kept_in_the_session(client, issuer, family):
    url = start(client)
    state = parse_qs(urlsplit(url).query)["state"][0]
    session = client.session
    pending = session[oidc.STORE_KEY]
    pending[state]["code_verifier"] = "x" * 64  # not the one the challenge was made from
    session[oidc.STORE_KEY] = pending
    session.save()

    response = client.get(authorize(url))

    assert_refused(client, response, code="oidc_provider_error", status=400)


# -- the ID token --------------------------------------------------------------------------------


def _unsigned(claims, header):
    head = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{head}.{b64url(json.dumps(claims).encode())}."


def _alg_none_signed(claims, header):
    # alg "none" with a signature part anyway: still refused.
    return _unsigned(claims, header) + b64url(b"sig")


TAMPERED = {
    "expired": lambda fake: fake.claims_update.update(
        exp=int(timezone.now().timestamp()) - 120, iat=int(timezone.now().timestamp()) - 900
    ),
    "issued_in_the_future": lambda fake: fake.claims_update.update(
        iat=int(timezone.now().timestamp()) + 600, exp=int(timezone.now().timestamp()) + 900
    ),
    "without_exp": lambda fake: fake.claims_update.update(exp=DROP),
    "without_iat": lambda fake: fake.claims_update.update(iat=DROP),
    "without_sub": lambda fake: fake.claims_update.update(sub=DROP),
    "wrong_audience": lambda fake: fake.claims_update.update(aud="another-client"),
    "several_audiences_without_azp": lambda fake: fake.claims_update.update(
        aud=[fake.client_id, "another-client"]
    ),
    "azp_another_client": lambda fake: fake.claims_update.update(azp="another-client"),
    "wrong_issuer": lambda fake: fake.claims_update.update(iss="https://idp.example.com"),
    "wrong_nonce": lambda fake: fake.claims_update.update(nonce="not-the-nonce"),
    "without_nonce": lambda fake: fake.claims_update.update(nonce=DROP),
    "signed_by_another_key": lambda fake: setattr(
        fake, "mint", lambda claims, header: fake.sign(claims, header, key=new_key())
    ),
    "alg_none": lambda fake: setattr(fake, "mint", _unsigned),
    "alg_none_with_signature": lambda fake: setattr(fake, "mint", _alg_none_signed),
    "hs256_with_client_secret": lambda fake: setattr(
        fake,
        "mint",
        lambda claims, header: fake.sign(
            claims, header, key=fake.client_secret.encode(), alg="HS256"
        ),
    ),
    "unknown_kid": lambda fake: fake.header_update.update(kid="key-unknown"),
    "not_a_jwt": lambda fake: setattr(fake, "mint", lambda claims, header: "not.a.jwt"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("tamper", TAMPERED.values(), ids=TAMPERED.keys())
def test_id_token_that_fails_a_check_is_refused(client, issuer, family, tamper):
    tamper(issuer)

    response = login(client)

    assert_refused(client, response, code="oidc_invalid_id_token", status=400)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["alg_none", "alg_none_with_signature", "hs256_with_client_secret"]
)
def test_refused_algorithms_are_refused_before_any_key_is_looked_up(client, issuer, family, name):
    TAMPERED[name](issuer)

    assert_refused(client, login(client), code="oidc_invalid_id_token", status=400)
    assert issuer.hits["/jwks"] == 0


@pytest.mark.django_db
def test_id_token_without_kid_is_accepted_when_the_platform_has_one_key(client, issuer, family):
    issuer.header_update = {"kid": DROP}

    assert login(client).status_code == 302
    assert_logged_in(client, family)


@pytest.mark.django_db
def test_unknown_kid_fetches_the_keys_again_once_then_refuses(client, issuer, family):
    assert login(Client()).status_code == 302
    issuer.header_update = {"kid": "key-unknown"}

    response = login(client)

    assert_refused(client, response, code="oidc_invalid_id_token", status=400)
    assert issuer.hits["/jwks"] == 2


@pytest.mark.django_db
def test_id_token_within_the_leeway_is_accepted(client, issuer, family):
    now = int(timezone.now().timestamp())
    issuer.claims_update = {"exp": now - oidc.LEEWAY_SECONDS // 2, "iat": now - 300}

    assert login(client).status_code == 302


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("ahead", "ok"),
    [(oidc.LEEWAY_SECONDS // 2, True), (oidc.LEEWAY_SECONDS + 5, False)],
    ids=["within_the_leeway", "beyond_the_leeway"],
)
def test_a_platform_clock_ahead_of_ours_is_tolerated_up_to_the_leeway(
    client, issuer, family, ahead, ok
):
    # The platform's clock runs `ahead` seconds fast: its token says it was issued then.
    now = int(timezone.now().timestamp())
    issuer.claims_update = {"iat": now + ahead, "exp": now + ahead + 300}

    response = login(client)

    if ok:
        assert response.status_code == 302
        assert_logged_in(client, family)
    else:
        assert_refused(client, response, code="oidc_invalid_id_token", status=400)


# -- the platform --------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db
def test_platform_unreachable_at_start_shows_an_error_page(client, settings):
    settings.OIDC = {
        **settings.OIDC,
        "ISSUER": f"http://127.0.0.1:{_closed_port()}",
        "CLIENT_ID": "anju",
        "CLIENT_SECRET": "secret",
    }

    assert_refused(client, client.get(START), code="oidc_provider_error", status=502)


@pytest.mark.django_db
def test_platform_unreachable_at_callback_shows_an_error_page(client, issuer, family):
    callback = authorize(start(client))
    issuer.stop()

    assert_refused(client, client.get(callback), code="oidc_provider_error", status=502)
    assert oidc.STORE_KEY not in client.session  # spent, although a 5xx skips the usual save


@pytest.mark.django_db
def test_token_endpoint_refusing_the_code_asks_to_start_over(client, issuer, family):
    issuer.token_response = (400, {"error": "invalid_grant"})

    assert_refused(client, login(client), code="oidc_provider_error", status=400)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "answer",
    [(500, {"error": "server_error"}), (200, b"<html>gateway</html>"), (200, {"no": "token"})],
    ids=["server_error", "not_json", "no_id_token"],
)
def test_token_endpoint_failing_is_a_platform_error(client, issuer, family, answer):
    issuer.token_response = answer

    assert_refused(client, login(client), code="oidc_provider_error", status=502)


@pytest.mark.django_db
def test_token_endpoint_checks_the_client_secret(client, settings, issuer, family):
    settings.OIDC = {**settings.OIDC, "CLIENT_SECRET": "wrong"}

    assert_refused(client, login(client), code="oidc_provider_error", status=502)
    assert issuer.hits["/token"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "update",
    [{"issuer": "http://127.0.0.1:1"}, {"token_endpoint": "http://idp.example.com/token"}],
    ids=["another_issuer", "plain_http_endpoint"],
)
def test_discovery_document_that_cannot_be_trusted_is_refused(client, issuer, family, update):
    issuer.discovery_update = update

    assert_refused(client, client.get(START), code="oidc_provider_error", status=502)


@pytest.mark.django_db
def test_plain_http_issuer_is_refused_without_calling_it(client, settings):
    settings.OIDC = {**settings.OIDC, "ISSUER": "http://idp.example.com", "CLIENT_ID": "anju"}

    assert_refused(client, client.get(START), code="oidc_provider_error", status=502)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        ("access_denied", "oidc_access_denied", 403),
        ("temporarily_unavailable", "oidc_provider_error", 502),
        ("login_required", "oidc_provider_error", 400),
    ],
)
def test_error_from_the_platform_is_shown_and_spends_the_state(
    client, issuer, family, error, code, status
):
    issuer.authorize_error = error
    callback = authorize(start(client))
    assert "error=" in callback

    assert_refused(client, client.get(callback), code=code, status=status)
    assert oidc.STORE_KEY not in client.session
    assert issuer.hits["/token"] == 0


# -- claims and applicants -----------------------------------------------------------------------


@pytest.mark.django_db
def test_identity_without_an_id_number_is_refused(client, issuer, family):
    issuer.claims_update = {"id_card_no": DROP}
    issuer.userinfo_claims = {"name": "张三"}

    assert_refused(client, login(client), code="oidc_missing_claim", status=400)


@pytest.mark.django_db
def test_person_without_selection_eligibility_is_not_logged_in(client, issuer, family):
    issuer.identity = {**issuer.identity, "id_card_no": id_number_for(987)}
    users_before = User.objects.count()

    response = login(client)

    assert_refused(client, response, code="identity_unknown_applicant", status=403)
    assert not DeviceSession.objects.exists()
    assert User.objects.count() == users_before
    assert client.get("/h5/").status_code == 302


@pytest.mark.django_db
def test_disabled_when_no_issuer_is_configured(client, settings):
    settings.OIDC = {**settings.OIDC, "ISSUER": ""}

    assert_refused(client, client.get(START), code="oidc_disabled", status=403)
    assert_refused(
        client, client.get(f"{CALLBACK}?code=c&state=s"), code="oidc_disabled", status=403
    )


@pytest.mark.django_db(transaction=True)
def test_the_platform_is_never_called_inside_a_transaction(client, issuer, family, monkeypatch):
    in_transaction: list[bool] = []
    make_client = oidc._http_client

    def recording_client(config):
        http = make_client(config)
        http.hooks["response"].append(
            lambda response, *args, **kwargs: in_transaction.append(connection.in_atomic_block)
        )
        return http

    monkeypatch.setattr(oidc, "_http_client", recording_client)

    assert login(client).status_code == 302
    assert len(in_transaction) == 3  # discovery, token, JWKS
    assert not any(in_transaction)


@pytest.mark.django_db
def test_applicant_for_identity_normalises_the_id_number_and_creates_the_user_once():
    seq = next(n for n in range(1000, 2000) if id_number_for(n).endswith("X"))
    applicant = ApplicantFactory(id_number=id_number_for(seq))
    spaced = f" {applicant.id_number[:6]} {applicant.id_number[6:].lower()} "
    identity = VerifiedIdentity(provider="oidc", subject="s", id_number=spaced)

    first = applicant_for_identity(identity=identity)
    again = applicant_for_identity(identity=identity)

    assert first.pk == again.pk == applicant.pk
    assert first.user_id is not None and again.user_id == first.user_id
    assert not first.user.has_usable_password()
    assert applicant.id_number not in repr(identity)


@pytest.mark.django_db
@pytest.mark.parametrize("number", [id_number_for(555), "not-an-id-number", ""])
def test_applicant_for_identity_refuses_numbers_nobody_holds(number):
    with pytest.raises(DomainError) as caught:
        applicant_for_identity(
            identity=VerifiedIdentity(provider="oidc", subject="s", id_number=number)
        )

    assert caught.value.code == "identity_unknown_applicant"
    assert caught.value.kind == "forbidden"
    assert "选房资格" in caught.value.message
