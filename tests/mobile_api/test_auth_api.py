"""Login by ID number + SMS code through the API: happy path and every refusal."""

from __future__ import annotations

import pytest

from accounts.models import DeviceSession
from sms.models import SmsCode, SmsMessage
from sms.services import sms_outbox_run_due
from tests.factories import FamilyFactory, UserFactory, id_number_for
from tests.mobile_api.conftest import error_code, last_code

pytestmark = pytest.mark.django_db(transaction=True)

SEND = "/api/v1/auth/sms-code/"
LOGIN = "/api/v1/auth/login/"
ME = "/api/v1/me/"
LOGOUT = "/api/v1/auth/logout/"


@pytest.fixture
def family():
    return FamilyFactory(rank=7, main_applicant__real_name="王小明")


def test_login_end_to_end(api, family):
    applicant = family.main_applicant
    sent = api.post(SEND, {"id_number": applicant.id_number.lower()})
    assert sent.status_code == 202 and sent.json()["resend_after"] == 60
    response = api.post(
        LOGIN, {"id_number": applicant.id_number, "code": last_code(applicant.mobile)}
    )
    assert response.status_code == 200
    me = api.get(ME).json()
    assert me["real_name"] == "王小明" and me["family"]["rank"] == 7
    assert me["id_number_masked"].count("*") == 11 and applicant.id_number not in str(me)
    applicant.refresh_from_db()
    assert DeviceSession.objects.filter(user=applicant.user, ended_at__isnull=True).count() == 1


def test_unknown_id_number_looks_exactly_like_a_registered_one(api, family):
    known = api.post(SEND, {"id_number": family.main_applicant.id_number})
    unknown = api.post(SEND, {"id_number": id_number_for(999)})
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json())
    login_unknown = api.post(LOGIN, {"id_number": id_number_for(999), "code": "123456"})
    login_wrong = api.post(
        LOGIN,
        {
            "id_number": family.main_applicant.id_number,
            "code": "000000" if last_code(family.main_applicant.mobile) != "000000" else "111111",
        },
    )
    assert login_unknown.status_code == login_wrong.status_code == 400
    assert error_code(login_unknown) == error_code(login_wrong) == "sms_code_invalid"
    # The same rows either way; after the worker's pass only the registered number's
    # message was ever sent.
    sms_outbox_run_due()
    assert SmsCode.objects.count() == SmsMessage.objects.count() == 2
    assert sorted(SmsMessage.objects.values_list("status", "phone")) == [
        (SmsMessage.Status.EXPIRED, ""),
        (SmsMessage.Status.SENT, family.main_applicant.mobile),
    ]


@pytest.mark.parametrize("value", ["", "123", "110105194912310021", "x" * 18])
def test_malformed_id_number_is_400_and_changes_nothing(api, value):
    response = api.post(SEND, {"id_number": value})
    assert response.status_code == 400
    assert error_code(response) in {"invalid_id_number", "invalid_input"}
    assert not SmsCode.objects.exists()


@pytest.mark.parametrize("body", [{}, {"id_number": None}, {"id_number": ["a"]}, [1, 2]])
def test_wrong_shape_is_400(api, body):
    response = api.post(SEND, body)
    assert response.status_code == 400 and error_code(response) == "invalid_input"


def test_malformed_json_and_wrong_content_type(api):
    bad = api.client.post(
        SEND, "{nope", content_type="application/json", headers={"X-CSRFToken": api.csrf}
    )
    assert bad.status_code == 400 and error_code(bad) == "malformed_request"
    form = api.client.post(SEND, {"id_number": "x"}, headers={"X-CSRFToken": api.csrf})
    assert form.status_code == 415 and error_code(form) == "unsupported_media_type"


def test_missing_csrf_token_is_refused_for_anonymous_and_logged_in(api, family):
    response = api.post(SEND, {"id_number": family.main_applicant.id_number}, csrf=False)
    assert response.status_code == 403 and error_code(response) == "csrf_failed"
    assert not SmsCode.objects.exists()
    api.login(family.main_applicant)
    response = api.post(LOGOUT, csrf=False)
    assert response.status_code == 403 and error_code(response) == "csrf_failed"
    assert api.get(ME).status_code == 200  # still logged in


def test_foreign_origin_is_refused(api, family):
    response = api.post(
        SEND,
        {"id_number": family.main_applicant.id_number},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403 and error_code(response) == "csrf_failed"
    assert not SmsCode.objects.exists()


@pytest.mark.parametrize("code", ["", "12345", "1234567", "abcdef"])
def test_malformed_code_is_400_and_burns_no_attempt(api, family, code):
    api.post(SEND, {"id_number": family.main_applicant.id_number})
    response = api.post(LOGIN, {"id_number": family.main_applicant.id_number, "code": code})
    assert response.status_code == 400 and error_code(response) == "invalid_input"
    assert SmsCode.objects.get().attempts == 0


def test_reused_code_is_refused(make_api, family):
    first = make_api()
    first.login(family.main_applicant)
    second = make_api()
    response = second.post(
        LOGIN,
        {
            "id_number": family.main_applicant.id_number,
            "code": last_code(family.main_applicant.mobile),
        },
    )
    assert response.status_code == 400 and error_code(response) == "sms_code_used"


def test_resend_too_soon_is_429_with_retry_after(api, family):
    api.post(SEND, {"id_number": family.main_applicant.id_number})
    response = api.post(SEND, {"id_number": family.main_applicant.id_number})
    assert response.status_code == 429 and error_code(response) == "sms_resend_too_soon"
    assert 0 < int(response["Retry-After"]) <= 60


def test_too_many_requests_from_one_ip_are_throttled(api, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"login": "3/min", "sms_send": "3/min"},
    }
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        codes = [
            api.post(LOGIN, {"id_number": id_number_for(i), "code": "123456"}).status_code
            for i in range(4)
        ]
        assert codes == [400, 400, 400, 429]
        assert (
            error_code(api.post(LOGIN, {"id_number": id_number_for(5), "code": "1"})) == "throttled"
        )
    finally:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK}
        api_settings.reload()
        SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES


def test_me_requires_login(api):
    response = api.get(ME)
    assert response.status_code == 401 and error_code(response) == "not_authenticated"


def test_me_is_forbidden_to_staff_without_a_family(api):
    staff = UserFactory(is_staff=True)
    api.client.force_login(staff)
    response = api.get(ME)
    assert response.status_code == 403 and error_code(response) == "forbidden"


def test_logout_ends_the_session_and_the_device(api, family):
    api.login(family.main_applicant)
    assert api.post(LOGOUT).status_code == 204
    assert api.get(ME).status_code == 401
    device = DeviceSession.objects.get()
    assert device.end_reason == DeviceSession.EndReason.LOGOUT


def test_logout_requires_login(api):
    response = api.post(LOGOUT)
    assert response.status_code == 401 and error_code(response) == "not_authenticated"


def test_unknown_api_path_is_a_json_404(api):
    response = api.get("/api/v1/nothing-here/")
    assert response.status_code == 404 and error_code(response) == "not_found"


def test_wrong_method_is_405(api):
    response = api.get(LOGIN)
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"


def test_dev_login_can_be_switched_off(api, family, settings):
    settings.DEV_LOGIN_ENABLED = False
    response = api.post(SEND, {"id_number": family.main_applicant.id_number})
    assert response.status_code == 403 and error_code(response) == "dev_login_disabled"
    assert not SmsCode.objects.exists()


def test_login_still_works_when_the_throttle_cache_is_down(api, family, settings):
    """Redis away: the per-IP API throttle fails open; the database caps still apply."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.2},
        }
    }
    sent = api.post(SEND, {"id_number": family.main_applicant.id_number})
    assert sent.status_code == 202
    response = api.post(
        LOGIN,
        {
            "id_number": family.main_applicant.id_number,
            "code": last_code(family.main_applicant.mobile),
        },
    )
    assert response.status_code == 200
