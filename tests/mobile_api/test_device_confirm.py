"""A second device is asked before it ends the first (mobile_api/accounts_api.py LoginApi,
LoginConfirmApi, LoginCancelApi): 409 `device_active` with nothing changed, then a
confirmation bound to the same browser, once, within PENDING_LOGIN_SECONDS."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.db import transaction
from django.utils import timezone

from accounts.models import DeviceSession
from accounts.services import PENDING_LOGIN_SECONDS, applicant_user_ensure, device_session_start
from accounts.signals import device_session_ended
from core.context import RequestContext
from tests.factories import FamilyFactory
from tests.mobile_api.conftest import error_code, last_code

pytestmark = pytest.mark.django_db(transaction=True)

SEND = "/api/v1/auth/sms-code/"
LOGIN = "/api/v1/auth/login/"
CONFIRM = "/api/v1/auth/login/confirm/"
CANCEL = "/api/v1/auth/login/cancel/"
LOGOUT = "/api/v1/auth/logout/"
ME = "/api/v1/me/"
MESSAGE = "该账号已在其他设备登录。在此设备继续登录，另一设备将退出"


def code_login(client, applicant):
    """Send a code and log in with it; returns the login answer (200 or 409)."""
    sent = client.post(SEND, {"id_number": applicant.id_number})
    assert sent.status_code == 202, sent.content
    return client.post(
        LOGIN, {"id_number": applicant.id_number, "code": last_code(applicant.mobile)}
    )


def active_keys(applicant) -> list[str]:
    applicant.refresh_from_db()
    return list(
        DeviceSession.objects.filter(user=applicant.user, ended_at__isnull=True).values_list(
            "session_key", flat=True
        )
    )


@pytest.fixture
def family():
    return FamilyFactory()


@pytest.fixture
def desktop(make_api, family):
    """The first device, logged in."""
    client = make_api("10.0.0.1")
    assert code_login(client, family.main_applicant).status_code == 200
    return client


def later(seconds: float = 61):
    """After the 60 s resend cooldown of the desktop's code."""
    return time_machine.travel(timezone.now() + timedelta(seconds=seconds), tick=False)


def test_the_first_login_is_not_asked(make_api, family):
    phone = make_api()
    response = code_login(phone, family.main_applicant)
    assert response.status_code == 200
    assert active_keys(family.main_applicant) == [phone.client.session.session_key]


def test_a_second_login_is_asked_first_and_changes_nothing(make_api, family, desktop):
    applicant = family.main_applicant
    before = active_keys(applicant)
    phone = make_api("10.0.0.2")
    with later():
        response = code_login(phone, applicant)
        assert response.status_code == 409
        assert error_code(response) == "device_active"
        assert response.json()["error"]["message"] == MESSAGE
        # Nothing changed: the desktop is still the one device, and works.
        assert active_keys(applicant) == before
        assert DeviceSession.objects.count() == 1
        assert desktop.get(ME).status_code == 200
        # The phone is not logged in.
        me = phone.get(ME)
        assert me.status_code == 401 and error_code(me) == "not_authenticated"


def test_the_code_is_spent_by_the_409(make_api, family, desktop):
    applicant = family.main_applicant
    phone, stranger = make_api("10.0.0.2"), make_api("10.0.0.3")
    with later():
        assert code_login(phone, applicant).status_code == 409
        code = last_code(applicant.mobile)
        for client in (phone, stranger):
            again = client.post(LOGIN, {"id_number": applicant.id_number, "code": code})
            assert again.status_code == 400 and error_code(again) == "sms_code_used"
    assert stranger.post(CONFIRM).status_code == 401  # and the held login is not theirs


def test_confirming_ends_the_first_device_and_logs_this_one_in(make_api, family, desktop):
    applicant = family.main_applicant
    desktop_key = desktop.client.session.session_key
    phone = make_api("10.0.0.2")
    with later():
        assert code_login(phone, applicant).status_code == 409
        confirmed = phone.post(CONFIRM)
        assert confirmed.status_code == 200
        assert confirmed.json()["real_name"] == applicant.real_name
        assert phone.get(ME).status_code == 200
        told = desktop.get(ME)
        assert told.status_code == 401 and error_code(told) == "session_replaced"
    assert active_keys(applicant) == [phone.client.session.session_key]
    old = DeviceSession.objects.get(session_key=desktop_key)
    assert old.end_reason == DeviceSession.EndReason.REPLACED
    assert DeviceSession.objects.get(session_key=phone.client.session.session_key).ip == "10.0.0.2"


def test_a_confirmation_is_used_once(make_api, family, desktop):
    phone = make_api("10.0.0.2")
    with later():
        assert code_login(phone, family.main_applicant).status_code == 409
        assert phone.post(CONFIRM).status_code == 200
        again = phone.post(CONFIRM)
    assert again.status_code == 401 and error_code(again) == "login_pending_missing"
    assert phone.get(ME).status_code == 200  # the refused repeat logged nobody out


def test_a_confirmation_from_another_browser_is_refused(make_api, family, desktop):
    applicant = family.main_applicant
    phone, other = make_api("10.0.0.2"), make_api("10.0.0.2")
    with later():
        assert code_login(phone, applicant).status_code == 409
        refused = other.post(CONFIRM)
        assert refused.status_code == 401 and error_code(refused) == "login_pending_missing"
        assert other.get(ME).status_code == 401
        assert desktop.get(ME).status_code == 200
        # … and the phone that holds the login still can.
        assert phone.post(CONFIRM).status_code == 200


def test_a_confirmation_with_nothing_held_is_refused(api):
    response = api.post(CONFIRM)
    assert response.status_code == 401 and error_code(response) == "login_pending_missing"
    assert not DeviceSession.objects.exists()


@pytest.mark.parametrize(
    ("after", "ok"), [(PENDING_LOGIN_SECONDS - 1, True), (PENDING_LOGIN_SECONDS, False)]
)
def test_a_held_login_expires(make_api, family, desktop, after, ok):
    applicant = family.main_applicant
    phone = make_api("10.0.0.2")
    start = timezone.now() + timedelta(seconds=61)
    with time_machine.travel(start, tick=False):
        assert code_login(phone, applicant).status_code == 409
    with time_machine.travel(start + timedelta(seconds=after), tick=False):
        response = phone.post(CONFIRM)
        if ok:
            assert response.status_code == 200
            assert desktop.get(ME).status_code == 401
        else:
            assert response.status_code == 401
            assert error_code(response) == "login_pending_expired"
            assert desktop.get(ME).status_code == 200
            assert phone.get(ME).status_code == 401
            # The expired one is gone, not waiting to be retried.
            assert error_code(phone.post(CONFIRM)) == "login_pending_missing"


def test_cancelling_keeps_the_first_device(make_api, family, desktop):
    phone = make_api("10.0.0.2")
    with later():
        assert code_login(phone, family.main_applicant).status_code == 409
        assert phone.post(CANCEL).status_code == 204
        refused = phone.post(CONFIRM)
        assert refused.status_code == 401 and error_code(refused) == "login_pending_missing"
        assert desktop.get(ME).status_code == 200
        assert phone.get(ME).status_code == 401
    assert len(active_keys(family.main_applicant)) == 1


def test_cancel_with_nothing_held_is_harmless(api):
    assert api.post(CANCEL).status_code == 204


def test_confirm_and_cancel_need_the_csrf_token(make_api, family, desktop):
    phone = make_api("10.0.0.2")
    with later():
        assert code_login(phone, family.main_applicant).status_code == 409
        for url in (CONFIRM, CANCEL):
            response = phone.post(url, csrf=False)
            assert response.status_code == 403 and error_code(response) == "csrf_failed"
        assert desktop.get(ME).status_code == 200
        assert phone.post(CONFIRM).status_code == 200  # nothing was consumed


def test_confirm_is_post_only(api):
    response = api.get(CONFIRM)
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"


def test_after_a_logout_the_next_device_is_not_asked(make_api, family, desktop):
    assert desktop.post(LOGOUT).status_code == 204
    phone = make_api("10.0.0.2")
    with later():
        assert code_login(phone, family.main_applicant).status_code == 200


def test_the_same_browser_logging_in_again_is_not_asked(family, desktop):
    key = desktop.client.session.session_key
    with later():
        assert code_login(desktop, family.main_applicant).status_code == 200
    assert active_keys(family.main_applicant) == [key] == [desktop.client.session.session_key]
    assert DeviceSession.objects.count() == 1
    assert desktop.get(ME).status_code == 200


def test_another_familys_device_does_not_count(make_api, family, desktop):
    other = FamilyFactory()
    phone = make_api("10.0.0.2")
    assert code_login(phone, other.main_applicant).status_code == 200
    assert desktop.get(ME).status_code == 200


def test_a_wrong_code_on_the_second_device_is_refused_before_anything_is_held(
    make_api, family, desktop
):
    applicant = family.main_applicant
    phone = make_api("10.0.0.2")
    with later():
        phone.post(SEND, {"id_number": applicant.id_number})
        wrong = "000000" if last_code(applicant.mobile) != "000000" else "111111"
        response = phone.post(LOGIN, {"id_number": applicant.id_number, "code": wrong})
        assert response.status_code == 400 and error_code(response) == "sms_code_invalid"
        assert error_code(phone.post(CONFIRM)) == "login_pending_missing"


# -- the hook the sockets hear, after the commit only ---------------------------------------------


@pytest.fixture
def heard():
    calls: list[tuple[str, str]] = []

    def receiver(sender, *, session_key, reason, **kwargs):
        calls.append((session_key, reason))

    device_session_ended.connect(receiver, dispatch_uid="test-heard")
    yield calls
    device_session_ended.disconnect(dispatch_uid="test-heard")


def test_an_ended_device_is_announced_after_the_commit(heard, family):
    user = applicant_user_ensure(applicant=family.main_applicant).user
    ctx = RequestContext()
    device_session_start(user=user, session_key="one", provider="t", ctx=ctx)
    assert heard == []
    with transaction.atomic():
        device_session_start(user=user, session_key="two", provider="t", ctx=ctx)
        assert heard == []  # not before the commit
    assert heard == [("one", "replaced")]


def test_a_rolled_back_login_announces_nothing(heard, family):
    user = applicant_user_ensure(applicant=family.main_applicant).user
    ctx = RequestContext()
    device_session_start(user=user, session_key="one", provider="t", ctx=ctx)
    with pytest.raises(RuntimeError), transaction.atomic():
        device_session_start(user=user, session_key="two", provider="t", ctx=ctx)
        raise RuntimeError("rolled back")
    assert heard == []
    assert DeviceSession.objects.get(session_key="one").ended_at is None


def test_reasons_announced_for_replace_and_logout(heard, family, make_api):
    applicant = family.main_applicant
    desktop, phone = make_api("10.0.0.1"), make_api("10.0.0.2")
    assert code_login(desktop, applicant).status_code == 200
    first = desktop.client.session.session_key
    with later(61):
        assert code_login(desktop, applicant).status_code == 200  # the same browser again
        assert desktop.client.session.session_key == first
    with later(122):
        assert code_login(phone, applicant).status_code == 409
        assert heard == []  # neither the same browser's login nor the 409 ended anything
        assert phone.post(CONFIRM).status_code == 200
    second = phone.client.session.session_key
    assert phone.post(LOGOUT).status_code == 204
    assert heard == [(first, "replaced"), (second, "logout")]


def test_a_failing_receiver_does_not_fail_the_login(family, make_api):
    def broken(sender, **kwargs):
        raise RuntimeError("the layer is away")

    device_session_ended.connect(broken, dispatch_uid="test-broken")
    try:
        desktop, phone = make_api("10.0.0.1"), make_api("10.0.0.2")
        assert code_login(desktop, family.main_applicant).status_code == 200
        with later():
            assert code_login(phone, family.main_applicant).status_code == 409
            assert phone.post(CONFIRM).status_code == 200
            assert desktop.get(ME).status_code == 401
    finally:
        device_session_ended.disconnect(dispatch_uid="test-broken")
