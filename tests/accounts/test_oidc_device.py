"""The identity platform's login when another device is logged in: a confirmation page,
then confirm (the other device is logged out) or cancel (it stays), bound to this browser."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.models import DeviceSession
from accounts.services import PENDING_LOGIN_SECONDS
from tests.accounts import test_oidc
from tests.accounts.test_oidc import assert_logged_in, authorize, login, start

# The fake platform and its family, as in test_oidc.py.
_fresh_oidc_cache = test_oidc._fresh_oidc_cache
issuer = test_oidc.issuer
family = test_oidc.family

CONFIRM = "/auth/oidc/confirm/"
CANCEL = "/auth/oidc/cancel/"
ME = "/api/v1/me/"

pytestmark = pytest.mark.django_db


def templates(response) -> list[str]:
    return [t.name for t in response.templates]


@pytest.fixture
def desktop(family):
    client = Client()
    assert login(client).status_code == 302
    return client


def test_a_second_device_sees_the_confirmation_page_and_nothing_changes(desktop, family):
    desktop_key = desktop.session.session_key
    phone = Client()

    page = login(phone)

    assert page.status_code == 200
    assert "h5/login_confirm.html" in templates(page)
    text = page.content.decode()
    assert "该账号已在其他设备登录" in text and "在此设备继续登录，另一设备将退出" in text
    assert 'action="/auth/oidc/confirm/"' in text and "继续登录" in text and "取消" in text
    assert page["Cache-Control"].startswith("max-age=0")  # never_cache
    assert "_auth_user_id" not in phone.session
    assert DeviceSession.objects.get(ended_at__isnull=True).session_key == desktop_key
    assert desktop.get(ME).status_code == 200


def test_confirming_logs_this_device_in_and_the_other_out(desktop, family):
    phone = Client()
    phone.get(authorize(start(phone, "/h5/signing/")))  # from the login page's `next`

    response = phone.post(CONFIRM)

    assert response.status_code == 302 and response["Location"] == "/h5/signing/"
    assert_logged_in(phone, family)
    told = desktop.get(ME)
    assert told.status_code == 401 and told.json()["error"]["code"] == "session_replaced"


def test_cancelling_keeps_the_other_device(desktop, family):
    phone = Client()
    login(phone)

    response = phone.post(CANCEL)

    assert response.status_code == 302 and response["Location"] == "/h5/login/"
    refused = phone.post(CONFIRM)
    assert refused.status_code == 401 and refused.context["code"] == "login_pending_missing"
    assert desktop.get(ME).status_code == 200
    assert "_auth_user_id" not in phone.session


def test_confirm_from_another_browser_is_refused(desktop, family):
    phone, other = Client(), Client()
    login(phone)

    refused = other.post(CONFIRM)

    assert refused.status_code == 401
    assert "h5/error.html" in templates(refused)
    assert refused.context["code"] == "login_pending_missing"
    assert "_auth_user_id" not in other.session
    assert desktop.get(ME).status_code == 200
    assert phone.post(CONFIRM).status_code == 302  # the phone's own still works


def test_an_expired_confirmation_is_refused(desktop, family):
    phone = Client()
    login(phone)

    with time_machine.travel(timezone.now() + timedelta(seconds=PENDING_LOGIN_SECONDS + 1)):
        refused = phone.post(CONFIRM)

    assert refused.status_code == 401 and refused.context["code"] == "login_pending_expired"
    assert desktop.get(ME).status_code == 200


def test_confirm_and_cancel_are_post_only_and_need_the_csrf_token(desktop, family):
    phone = Client(enforce_csrf_checks=True)
    page = login(phone)
    assert "h5/login_confirm.html" in templates(page)

    assert phone.get(CONFIRM).status_code == 405
    assert phone.get(CANCEL).status_code == 405
    assert phone.post(CONFIRM).status_code == 403  # no token: Django's CSRF check
    assert phone.post(CANCEL).status_code == 403
    assert desktop.get(ME).status_code == 200
    token = phone.cookies["csrftoken"].value
    response = phone.post(CONFIRM, {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert_logged_in(phone, family)
