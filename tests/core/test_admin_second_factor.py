"""Staff two-factor login (django-otp TOTP, core/admin_site.py) and the admin's idle timeout.

Reviewers and supervisors reach no admin page, the review page among them, until they have
bound an authenticator and given its code in this session; operators may bind one and are
then asked for it too. A staff session idle past ADMIN_IDLE_TIMEOUT_SECONDS is logged out."""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.test import Client
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditEntry, User

pytestmark = [pytest.mark.django_db, pytest.mark.real_second_factor]

PASSWORD = "安居-staff-2fa-pw"
REVIEW = "/admin/signing/agreement/{}/review/"


def staff(role: str | None, username: str | None = None) -> User:
    user = User.objects.create_user(
        username=username or f"s-{role}", password=PASSWORD, is_staff=True
    )
    if role:
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        from accounts.roles import roles_sync

        roles_sync()
    return user


def password_login(user: User, next_url: str = "/admin/") -> tuple[Client, object]:
    """The admin's login form with the password; returns the client and the answer."""
    client = Client()
    response = client.post(
        f"/admin/login/?next={next_url}",
        {"username": user.username, "password": PASSWORD, "next": next_url},
    )
    assert response.status_code == 302, response.content.decode()[:500]
    return client, response


def code_for(key: bytes, offset: int = 0) -> str:
    return f"{totp(key, drift=offset):06d}"


def audited(user: User | None = None) -> list[str]:
    return list(
        AuditEntry.objects.filter(actor=user).order_by("id").values_list("action", flat=True)
    )


def bound(user: User) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="管理后台", confirmed=True)


@pytest.fixture
def agreement():
    from tests.signing.worlds import make_agreement

    return make_agreement()[0]


@pytest.mark.parametrize("role", ["reviewer", "supervisor"])
def test_staff_without_a_second_factor_cannot_reach_review(role, agreement):
    user = staff(role)
    client, response = password_login(user, REVIEW.format(agreement.pk))
    # The password alone: every admin page, the review page first, sends them to bind one.
    for path in (REVIEW.format(agreement.pk), "/admin/", "/admin/signing/agreement/"):
        response = client.get(path, follow=True)
        assert response.status_code == 200
        assert response.redirect_chain[-1][0].startswith("/admin/otp/setup/?next=")
        assert "绑定两步验证" in response.content.decode()
        assert "签名" not in response.content.decode()
    # A POST to the review page does not reach it either.
    response = client.post(REVIEW.format(agreement.pk), {"action": "approve", "confirm_seal": "1"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    agreement.refresh_from_db()
    assert agreement.status == "pending"


def test_binding_an_authenticator_opens_the_review_page(agreement):
    user = staff("reviewer")
    client, _ = password_login(user, REVIEW.format(agreement.pk))
    page = client.get(f"/admin/otp/setup/?next={REVIEW.format(agreement.pk)}")
    text = page.content.decode()
    assert page.status_code == 200
    assert 'src="data:image/png;base64,' in text and "审核员、主管" in text
    secret = re.search(r'id="otp-secret">([A-Z2-7 ]+)<', text).group(1).replace(" ", "")
    key = base64.b32decode(secret)
    assert TOTPDevice.objects.get(user=user).confirmed is False
    # The QR code carries the same secret for the issuer 安居管理后台.
    assert TOTPDevice.objects.get(user=user).bin_key == key

    wrong = client.post(
        "/admin/otp/setup/", {"code": "000000" if code_for(key) != "000000" else "111111"}
    )
    assert "验证码不正确或已过期" in wrong.content.decode()
    assert client.get(REVIEW.format(agreement.pk)).status_code == 302

    TOTPDevice.objects.get(user=user).throttle_reset()  # django-otp's wait after a failure
    done = client.post(
        "/admin/otp/setup/", {"code": code_for(key), "next": REVIEW.format(agreement.pk)}
    )
    assert done.status_code == 302 and done["Location"] == REVIEW.format(agreement.pk)
    assert TOTPDevice.objects.get(user=user).confirmed is True
    review = client.get(REVIEW.format(agreement.pk))
    assert review.status_code == 200 and "手写签名" in review.content.decode()
    assert audited(user) == ["staff.login", "staff.otp_failed", "staff.otp_bound"]


def test_a_bound_reviewer_gives_the_code_at_every_login(agreement):
    user = staff("reviewer")
    device = bound(user)
    client, response = password_login(user, REVIEW.format(agreement.pk))
    response = client.get(REVIEW.format(agreement.pk), follow=True)
    assert response.redirect_chain[-1][0].startswith("/admin/otp/?next=")
    assert "两步验证" in response.content.decode() and "验证并登录" in response.content.decode()
    # The setup page cannot replace the bound phone with the password alone.
    setup = client.get("/admin/otp/setup/")
    assert setup.status_code == 302 and setup["Location"].startswith("/admin/otp/?next=")
    assert TOTPDevice.objects.filter(user=user).count() == 1

    for bad in ("12345", "abcdef", ""):
        answer = client.post("/admin/otp/", {"code": bad})
        assert answer.status_code == 200 and "errornote" in answer.content.decode()
    wrong = client.post(
        "/admin/otp/", {"code": "000000" if code_for(device.bin_key) != "000000" else "111111"}
    )
    assert "验证码不正确或已过期" in wrong.content.decode()
    # django-otp throttles after a failure: the next try, even right, waits.
    throttled = client.post("/admin/otp/", {"code": code_for(device.bin_key)})
    assert "错误次数过多" in throttled.content.decode()
    assert client.get(REVIEW.format(agreement.pk)).status_code == 302

    device.refresh_from_db()
    device.throttle_reset()
    session_before = client.session.session_key
    ok = client.post(
        "/admin/otp/", {"code": code_for(device.bin_key), "next": REVIEW.format(agreement.pk)}
    )
    assert ok.status_code == 302 and ok["Location"] == REVIEW.format(agreement.pk)
    assert client.session.session_key != session_before  # a new session id for the privilege
    assert client.get(REVIEW.format(agreement.pk)).status_code == 200
    # A code is good once: a second login with the same code is refused.
    again, _ = password_login(user)
    reused = again.post("/admin/otp/", {"code": code_for(device.bin_key)})
    assert "验证码不正确或已过期" in reused.content.decode()


def test_a_member_waiting_for_the_code_can_log_out():
    user = staff("reviewer")
    client, _ = password_login(user)
    response = client.post("/admin/logout/")
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert client.get("/admin/otp/setup/").status_code == 302


def test_operators_may_go_without_or_bind_one():
    user = staff("operator")
    client, _ = password_login(user)
    assert client.get("/admin/").status_code == 200  # optional: no device, no code
    page = client.get("/admin/otp/setup/")
    assert page.status_code == 200 and "两步验证对操作员为可选" in page.content.decode()
    key = TOTPDevice.objects.get(user=user).bin_key
    assert client.post("/admin/otp/setup/", {"code": code_for(key)}).status_code == 302
    # Bound: the next login asks for it.
    other, _ = password_login(user)
    response = other.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/admin/otp/?next=")


def test_an_open_redirect_is_refused():
    user = staff("operator")
    client, _ = password_login(user)
    key = client.get("/admin/otp/setup/") and TOTPDevice.objects.get(user=user).bin_key
    response = client.post(
        "/admin/otp/setup/", {"code": code_for(key), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/admin/"


def test_the_second_factor_pages_need_a_staff_login():
    for path in ("/admin/otp/", "/admin/otp/setup/"):
        response = Client().get(path)  # nobody
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    applicant = User.objects.create_user(username="family", password=PASSWORD)
    client = Client()
    client.force_login(applicant)
    for path in ("/admin/otp/", "/admin/otp/setup/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    assert not TOTPDevice.objects.exists()


def test_superusers_need_it_too():
    user = User.objects.create_superuser(username="root", password=PASSWORD)
    client, _ = password_login(user)
    response = client.get("/admin/", follow=True)
    assert response.redirect_chain[-1][0].startswith("/admin/otp/setup/")


def test_staff_otp_reset_removes_the_devices():
    user = staff("reviewer")
    bound(user)
    call_command("staff_otp_reset", user.username)
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert AuditEntry.objects.get(action="staff.otp_reset").target == user.username


# ---- idle timeout ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("idle", "logged_out"),
    [
        (timedelta(minutes=30) - timedelta(seconds=1), False),
        (timedelta(minutes=30), False),
        (timedelta(minutes=30) + timedelta(seconds=1), True),
    ],
)
def test_admin_sessions_time_out_after_30_idle_minutes(settings, idle, logged_out):
    assert settings.ADMIN_IDLE_TIMEOUT_SECONDS == 30 * 60
    user = staff("operator")
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        client, _ = password_login(user)
        assert client.get("/admin/").status_code == 200
        clock.shift(idle)
        response = client.get("/admin/selection/round/")
        if not logged_out:
            assert response.status_code == 200
            # Each request restarts the clock.
            clock.shift(timedelta(minutes=29))
            assert client.get("/admin/").status_code == 200
            return
        assert response.status_code == 302
        assert response["Location"] == "/admin/login/?next=/admin/selection/round/"
        login_page = client.get(response["Location"])
        assert "已超过 30 分钟未操作" in login_page.content.decode()
        assert "_auth_user_id" not in client.session
        assert audited(user) == ["staff.login", "staff.idle_logout"]
        assert client.get("/admin/").status_code == 302


def test_the_idle_timeout_is_a_setting(settings):
    settings.ADMIN_IDLE_TIMEOUT_SECONDS = 60
    user = staff("operator")
    with time_machine.travel(timezone.now(), tick=False) as clock:
        client, _ = password_login(user)
        assert client.get("/admin/").status_code == 200
        clock.shift(timedelta(seconds=61))
        assert client.get("/admin/").status_code == 302
