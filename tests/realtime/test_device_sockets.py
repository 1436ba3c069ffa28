"""A login's open sockets are closed the moment the login ends (realtime/device_notices.py):
4409 when a login on another device is confirmed, 4411 on logout; a 409 that was not
confirmed, and another family's login, close nothing. Every wait is on a socket's own
message (the close, a pong), never on time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from sms.models import SmsCode
from tests.mobile_api.conftest import ApiClient, last_code
from tests.realtime.conftest import aio, connected, socket
from tests.realtime.test_sockets import open_session_world

pytestmark = pytest.mark.django_db(transaction=True)

CONFIRM = "/api/v1/auth/login/confirm/"
ACCOUNT = "/ws/account/"


def code_login(client: ApiClient, applicant):
    """Log in through the API with a fresh code (the previous codes are moved past the
    resend cooldown); returns the answer, 200 or 409."""
    SmsCode.objects.update(created_at=timezone.now() - timedelta(seconds=61))
    assert client.post("/api/v1/auth/sms-code/", {"id_number": applicant.id_number}).status_code
    return client.post(
        "/api/v1/auth/login/",
        {"id_number": applicant.id_number, "code": last_code(applicant.mobile)},
    )


def logged_in(applicant, ip: str = "10.0.0.1") -> tuple[ApiClient, str]:
    """A browser logged in through the API; returns it and its session cookie."""
    client = ApiClient(ip)
    response = code_login(client, applicant)
    assert response.status_code == 200, response.content
    return client, client.client.cookies["sessionid"].value


def second_device_confirms(applicant) -> ApiClient:
    phone = ApiClient("10.0.0.2")
    asked = code_login(phone, applicant)
    assert asked.status_code == 409, asked.content
    assert phone.post(CONFIRM).status_code == 200
    return phone


async def still_open(ws) -> None:
    await ws.send_json_to({"type": "ping", "t0": 7})
    pong = await ws.receive_json_from(timeout=5)
    assert pong["type"] == "pong" and pong["t0"] == 7


async def closed_with(ws, code: int, reason: str) -> None:
    message = await ws.receive_output(timeout=5)
    assert message == {"type": "websocket.close", "code": code, "reason": reason}


async def test_confirmed_login_elsewhere_closes_the_first_devices_sockets_at_once(flushed_layer):
    world = await aio(open_session_world)()
    a, b = world.families[0], world.families[1]
    rid = world.round.pk
    _, desktop = await aio(logged_in)(a.main_applicant)
    _, unrelated = await aio(logged_in)(b.main_applicant, "10.0.0.9")
    account, hello = await connected(ACCOUNT, cookie=desktop)
    assert hello["streams"] == [] and hello["heads"] == {}  # follows nothing, reads nothing
    selection, _ = await connected(f"/ws/selection/{rid}/", cookie=desktop)
    control, _ = await connected(ACCOUNT, cookie=unrelated)
    control_selection, _ = await connected(f"/ws/selection/{rid}/", cookie=unrelated)

    phone = await aio(second_device_confirms)(a.main_applicant)

    await closed_with(account, 4409, "session_replaced")
    await closed_with(selection, 4409, "session_replaced")
    # Control: another family's sockets are untouched …
    await still_open(control)
    await still_open(control_selection)
    # … and so are the new device's.
    phone_cookie = phone.client.cookies["sessionid"].value
    phone_socket, _ = await connected(ACCOUNT, cookie=phone_cookie)
    await still_open(phone_socket)
    for ws in (control, control_selection, phone_socket):
        await ws.disconnect()


async def test_an_unconfirmed_second_login_closes_nothing(flushed_layer):
    world = await aio(open_session_world)()
    applicant = world.families[0].main_applicant
    _, desktop = await aio(logged_in)(applicant)
    account, _ = await connected(ACCOUNT, cookie=desktop)

    def asked_only():
        phone = ApiClient("10.0.0.2")
        assert code_login(phone, applicant).status_code == 409
        assert phone.post("/api/v1/auth/login/cancel/").status_code == 204

    await aio(asked_only)()

    await still_open(account)
    await account.disconnect()


async def test_logout_closes_the_sessions_other_sockets(flushed_layer):
    world = await aio(open_session_world)()
    a, b = world.families[0], world.families[1]
    client, cookie = await aio(logged_in)(a.main_applicant)
    _, unrelated = await aio(logged_in)(b.main_applicant, "10.0.0.9")
    account, _ = await connected(ACCOUNT, cookie=cookie)
    selection, _ = await connected(f"/ws/selection/{world.round.pk}/", cookie=cookie)
    control, _ = await connected(ACCOUNT, cookie=unrelated)

    assert (await aio(client.post)("/api/v1/auth/logout/")).status_code == 204

    await closed_with(account, 4411, "logged_out")
    await closed_with(selection, 4411, "logged_out")
    await still_open(control)
    await control.disconnect()


async def test_a_socket_of_a_replaced_login_is_closed_with_the_code_when_it_connects(
    flushed_layer,
):
    """A socket that was down when the notice went out (a sleeping phone) learns it on its
    reconnect: accepted, then closed with 4409, so the browser sees the code."""
    world = await aio(open_session_world)()
    applicant = world.families[0].main_applicant
    _, desktop = await aio(logged_in)(applicant)
    await aio(second_device_confirms)(applicant)

    for path in (ACCOUNT, f"/ws/selection/{world.round.pk}/"):
        ws = socket(path, cookie=desktop)
        assert await ws.connect() == (True, None)
        await closed_with(ws, 4409, "session_replaced")


async def test_the_account_socket_refuses_pages_without_a_device_login(flushed_layer):
    world = await aio(open_session_world)()
    anonymous = socket(ACCOUNT)
    assert await anonymous.connect() == (False, 4401)

    def forced_cookie():
        from tests.realtime.conftest import session_cookie_for

        return session_cookie_for(world.families[0])  # logged in, but not a device login

    no_device = socket(ACCOUNT, cookie=await aio(forced_cookie)())
    assert await no_device.connect() == (False, 4401)
    foreign = socket(ACCOUNT, origin=b"https://evil.example")
    assert (await foreign.connect())[0] is False


async def test_the_account_socket_answers_pings_and_refuses_junk(flushed_layer):
    world = await aio(open_session_world)()
    _, cookie = await aio(logged_in)(world.families[0].main_applicant)
    ws, _ = await connected(ACCOUNT, cookie=cookie)
    await still_open(ws)
    await ws.send_to(text_data="not json")
    assert (await ws.receive_json_from())["code"] == "bad_frame"
    await ws.disconnect()
