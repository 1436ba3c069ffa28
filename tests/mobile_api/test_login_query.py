"""One query for the login (issue 14, item 4): the session row, its device session, the user,
the applicant and the family are read by one statement, which authentication, the
one-active-device check and the applicant views share (accounts/sessions.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import HASH_SESSION_KEY
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import DeviceSession, User
from accounts.sessions import SessionStore
from tests.factories import FamilyFactory
from tests.mobile_api.conftest import error_code

pytestmark = pytest.mark.django_db(transaction=True)
ME = "/api/v1/me/"


@pytest.fixture
def family_api(make_api):
    family = FamilyFactory()
    api = make_api()
    api.login(family.main_applicant)
    family.main_applicant.refresh_from_db()  # its user was made by the login
    return family, api


def test_an_authenticated_api_request_logs_in_with_one_query(family_api, django_assert_num_queries):
    family, api = family_api
    with django_assert_num_queries(1) as captured:
        response = api.get(ME)
    assert response.status_code == 200
    assert response.json()["family"]["rank"] == family.rank
    sql = captured.captured_queries[0]["sql"]
    for table in (
        "django_session",
        "accounts_devicesession",
        "accounts_user",
        "accounts_applicant",
    ):
        assert table in sql
    assert "accounts_family" in sql


def test_control_django_sessions_and_authentication_cost_four_queries(family_api, settings):
    """Control: Django's own database sessions and authentication middleware (what the
    project used before) answer the same request with four queries (session, user, device
    session, applicant with family), so the test above measures the join, not a request that
    needs fewer queries anyway."""
    family, api = family_api
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    settings.MIDDLEWARE = [
        "django.contrib.auth.middleware.AuthenticationMiddleware"
        if name == "accounts.middleware.SessionAuthenticationMiddleware"
        else name
        for name in settings.MIDDLEWARE
    ]
    plain = Client(HTTP_USER_AGENT="pytest")  # a new handler: the middleware are read anew
    plain.cookies = api.client.cookies
    with CaptureQueriesContext(connection) as captured:
        response = plain.get(ME)
    assert response.status_code == 200
    assert response.json()["family"]["rank"] == family.rank
    assert len(captured) == 4


def test_a_replaced_device_is_told_at_once_from_the_same_query(make_api, django_assert_num_queries):
    family = FamilyFactory()
    first, second = make_api("10.0.0.1"), make_api("10.0.0.2")
    first.login(family.main_applicant)
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        second.login(family.main_applicant, confirm=True)
    # The one query finds the device session ended; Django's logout then reads and deletes
    # the session row.
    with django_assert_num_queries(3):
        told = first.get(ME)
    assert told.status_code == 401 and error_code(told) == "session_replaced"
    assert second.get(ME).status_code == 200


def test_a_session_hash_that_no_longer_matches_is_not_a_login(family_api):
    """The fast path checks the session's auth hash like Django does: changing the user's
    password (here: a new unusable one) ends every session of that user."""
    family, api = family_api
    user = family.main_applicant.user
    user.set_unusable_password()
    user.save(update_fields=["password"])
    response = api.get(ME)
    assert response.status_code == 401 and error_code(response) == "not_authenticated"


def test_an_inactive_user_is_not_logged_in(family_api):
    family, api = family_api
    User.objects.filter(pk=family.main_applicant.user_id).update(is_active=False)
    response = api.get(ME)
    assert response.status_code == 401


def test_a_session_without_its_device_session_is_ended(family_api):
    """The device flag with no device session row (deleted): 'unknown', logged out, as
    before the join."""
    family, api = family_api
    DeviceSession.objects.filter(user_id=family.main_applicant.user_id).delete()
    response = api.get(ME)
    assert response.status_code == 401
    assert api.get(ME).status_code == 401


def test_the_session_model_sees_the_same_rows_as_django(family_api):
    """LoginSession is django.contrib.sessions' table: the session written at login decodes
    through it, and `clearsessions` (the engine's clear_expired) removes expired rows."""
    from django.contrib.sessions.models import Session

    from accounts.models import LoginSession

    family, api = family_api
    key = api.client.cookies["sessionid"].value
    row = LoginSession.objects.select_related("device__user").get(session_key=key)
    assert row.device.user_id == family.main_applicant.user_id
    assert HASH_SESSION_KEY in row.get_decoded()
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(1))
    SessionStore.clear_expired()
    assert not Session.objects.filter(session_key=key).exists()


def test_an_async_view_gets_the_same_user_from_the_same_row(family_api):
    """`request.auser()` (async views) answers from the session's one query too."""
    from asgiref.sync import async_to_sync
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.test import RequestFactory

    from accounts.middleware import SessionAuthenticationMiddleware

    family, api = family_api
    request = RequestFactory().get(ME)
    request.COOKIES["sessionid"] = api.client.cookies["sessionid"].value
    SessionMiddleware(lambda r: None).process_request(request)
    SessionAuthenticationMiddleware(lambda r: None).process_request(request)
    # async_to_sync: the worker thread's query runs on this thread's connection (none leaks)
    user = async_to_sync(request.auser)()
    assert user.pk == family.main_applicant.user_id
    assert User.applicant.related.is_cached(user)  # loaded with the session row
    assert user.applicant.family.pk == family.pk
