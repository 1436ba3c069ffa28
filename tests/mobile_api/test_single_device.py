"""One active device per family: a second login ends the first once the applicant confirms
it on the second device (tests/mobile_api/test_device_confirm.py), and the first is told
why."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from accounts.models import DeviceSession
from accounts.services import device_session_start
from core.context import RequestContext
from tests.factories import FamilyFactory
from tests.mobile_api.conftest import error_code

pytestmark = pytest.mark.django_db(transaction=True)
ME = "/api/v1/me/"


def later_login(client, family) -> None:
    """Log in again after the 60 s resend cooldown of the first login's code, confirming
    that the other device is to be logged out."""
    with time_machine.travel(timezone.now() + timedelta(seconds=61)):
        client.login(family.main_applicant, confirm=True)


def test_second_login_replaces_the_first_and_the_first_is_told_once(make_api):
    family = FamilyFactory()
    phone_a, phone_b = make_api("10.0.0.1"), make_api("10.0.0.2")
    phone_a.login(family.main_applicant)
    assert phone_a.get(ME).status_code == 200
    later_login(phone_b, family)

    told = phone_a.get(ME)
    assert told.status_code == 401 and error_code(told) == "session_replaced"
    assert "其他设备" in told.json()["error"]["message"]
    later = phone_a.get(ME)
    assert later.status_code == 401 and error_code(later) == "not_authenticated"
    assert phone_b.get(ME).status_code == 200

    devices = DeviceSession.objects.order_by("id")
    assert [d.end_reason for d in devices] == ["replaced", ""]
    assert devices[1].ip == "10.0.0.2"


def test_a_replaced_page_load_redirects_to_login_with_the_reason(make_api):
    family = FamilyFactory()
    phone_a, phone_b = make_api(), make_api()
    phone_a.login(family.main_applicant)
    later_login(phone_b, family)
    response = phone_a.get("/h5/")
    assert response.status_code == 302 and response["Location"] == "/h5/login/?reason=replaced"
    page = phone_a.get(response["Location"])
    assert "其他设备" in page.content.decode()


def test_other_families_are_not_affected(make_api):
    one, two = FamilyFactory(), FamilyFactory()
    a, b = make_api(), make_api()
    a.login(one.main_applicant)
    b.login(two.main_applicant)
    assert a.get(ME).status_code == 200 and b.get(ME).status_code == 200


@pytest.mark.postgres
def test_simultaneous_logins_leave_exactly_one_active_device():
    family = FamilyFactory()
    from accounts.services import applicant_user_ensure

    user = applicant_user_ensure(applicant=family.main_applicant).user
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def login(i: int) -> None:
        try:
            barrier.wait()
            device_session_start(
                user=user, session_key=f"key-{i}", provider="test", ctx=RequestContext()
            )
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=login, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert DeviceSession.objects.filter(user=user).count() == 8
    assert DeviceSession.objects.filter(user=user, ended_at__isnull=True).count() == 1


def test_the_database_refuses_two_active_devices():
    """The constraint is the last guard: a service bug must fail, not leave two devices."""
    from django.db import IntegrityError

    family = FamilyFactory()
    from accounts.services import applicant_user_ensure

    user = applicant_user_ensure(applicant=family.main_applicant).user
    DeviceSession.objects.create(
        user=user, session_key="a", provider="t", created_at=timezone.now()
    )
    with pytest.raises(IntegrityError):
        DeviceSession.objects.create(
            user=user, session_key="b", provider="t", created_at=timezone.now()
        )


@pytest.mark.postgres
def test_control_without_the_user_lock_two_logins_collide(monkeypatch):
    """Control case: remove the row lock and let both logins pass the 'end the active device'
    step before either inserts. The second insert then hits the one-active-device constraint,
    so the test above would fail if the lock were gone."""
    from django.db.models import QuerySet

    family = FamilyFactory()
    from accounts.services import applicant_user_ensure

    user = applicant_user_ensure(applicant=family.main_applicant).user
    both_updated = threading.Barrier(2, timeout=10)
    real_update = QuerySet.update

    def update_then_wait(self, **kwargs):
        result = real_update(self, **kwargs)
        if self.model is DeviceSession:
            both_updated.wait()
        return result

    monkeypatch.setattr(QuerySet, "select_for_update", lambda self, **kw: self)
    monkeypatch.setattr(QuerySet, "update", update_then_wait)
    errors: list[BaseException] = []

    def login(i: int) -> None:
        try:
            device_session_start(
                user=user, session_key=f"c-{i}", provider="t", ctx=RequestContext()
            )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=login, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    from django.db import IntegrityError

    assert len(errors) == 1 and isinstance(errors[0], IntegrityError)
