"""确认正选 ahead of Django (mobile_api/confirm_route.py): the plain win and the plain loss are
answered on the event loop with the view's own answer — body, status and headers compared
with Django's answer to the same request — and every other request reaches Django's view
unchanged, its body replayed."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import time_machine
from asgiref.sync import sync_to_async
from channels.testing import HttpCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.core.asgi import get_asgi_application
from django.db import connections
from django.test import override_settings

from accounts.middleware import DEVICE_SESSION_FLAG
from accounts.privacy import privacy_forget, privacy_reload
from accounts.services import applicant_user_ensure, device_session_end, device_session_start
from accounts.sessions import SessionStore
from core import adb
from mobile_api.confirm_route import ConfirmRoute
from mobile_api.selection_common import AllocationSerializer
from selection.models import Allocation, CartItem, LedgerEntry, Seat, Unit
from signing.models import ConsentKind, ConsentText
from sms.models import SmsMessage
from tests.worlds import CTX, enter, make_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CSRF = "c" * 32
VARYING_HEADERS = {b"date", b"content-length"}  # present in both, their values differ


class Spy:
    """Django's ASGI handler, counting the requests that reach it."""

    def __init__(self):
        self.django = get_asgi_application()
        self.calls = 0

    async def __call__(self, scope, receive, send):
        self.calls += 1
        await self.django(scope, receive, send)

    async def send_response(self, response, send):
        await self.django.send_response(response, send)


def login(family) -> str:
    """A logged-in session of the family's applicant with its active device session, as the
    login writes them."""
    user = applicant_user_ensure(applicant=family.main_applicant).user
    store = SessionStore()
    store.update(
        {
            SESSION_KEY: str(user.pk),
            BACKEND_SESSION_KEY: "django.contrib.auth.backends.ModelBackend",
            HASH_SESSION_KEY: user.get_session_auth_hash(),
            DEVICE_SESSION_FLAG: True,
        }
    )
    store.create()
    device_session_start(user=user, session_key=store.session_key, provider="dev", ctx=CTX)
    return store.session_key


@pytest.fixture
def room():
    """Four families entered in session 1, two of them with unit 0 in the formal cart, one
    with unit 1; time frozen inside the window."""
    world = make_world(families=4, units=3, sessions=1, per_session=4)
    session = world.sessions[0]
    for family in world.families:
        enter(family, world.round, session)
    for family, unit in zip(world.families[:3], [0, 0, 1], strict=True):
        CartItem.objects.create(
            family=family,
            round=world.round,
            kind="formal",
            unit=world.units[unit],
            position=1,
            added_at=session.starts_at,
        )
    keys = [login(family) for family in world.families]
    with time_machine.travel(session.starts_at + timedelta(seconds=20), tick=False):
        privacy_reload()  # the process remembers the current notice, as after any request
        yield world, keys


async def post(app, round_id, body, *, key=None, csrf=CSRF, header_csrf=CSRF, extra=()):
    cookies = [f"csrftoken={csrf}"] + ([f"sessionid={key}"] if key else [])
    headers = [
        (b"host", b"testserver"),
        (b"content-type", b"application/json"),
        (b"cookie", "; ".join(cookies).encode()),
        *([(b"x-csrftoken", header_csrf.encode())] if header_csrf else []),
        *extra,
    ]
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers.append((b"content-length", str(len(raw)).encode()))
    communicator = HttpCommunicator(
        app, "POST", f"/api/v1/selection/{round_id}/confirm/", body=raw, headers=headers
    )
    response = await communicator.get_response(timeout=20)
    return response["status"], json.loads(response["body"] or b"null"), response["headers"]


def confirm_body(unit, key="key-0001"):
    return {"unit_id": unit.pk, "idempotency_key": key}


def headers_of(headers) -> dict:
    """Header names (lower case) and values; the values that differ between two answers
    (the time, the length) only by name."""
    return {
        name.lower(): (b"*" if name.lower() in VARYING_HEADERS else value)
        for name, value in headers
    }


@pytest.fixture
async def pool_closed():
    """This loop's pool closed, and the connections the test's own ORM calls opened in
    asgiref's thread, so that the test database can be dropped."""
    yield
    await adb.close()
    await sync_to_async(connections.close_all)()


async def test_the_win_is_answered_ahead_of_django_with_the_views_answer(room, pool_closed):
    world, keys = room
    spy = Spy()
    status, body, _ = await post(
        ConfirmRoute(spy), world.round.pk, confirm_body(world.units[0]), key=keys[0]
    )
    assert (status, spy.calls) == (201, 0)
    allocation = await sync_to_async(
        lambda: Allocation.objects.select_related("unit", "ledger_entry").get(
            family=world.families[0]
        )
    )()
    expected = await sync_to_async(lambda: AllocationSerializer(allocation).data)()
    assert {k: v for k, v in body.items() if not k.startswith("server_time")} == expected
    assert body["server_time"] and body["server_time_ms"]
    # The same rows as the view's claim: the entry (pending a log index), the unit taken, the
    # seat confirmed, the result SMS queued, the family's event.
    unit = await Unit.objects.aget(pk=world.units[0].pk)
    seat = await Seat.objects.aget(family=world.families[0])
    entry = await LedgerEntry.objects.aget(pk=allocation.ledger_entry_id)
    assert (unit.status, seat.outcome, entry.kind, entry.index) == (
        "taken",
        "confirmed",
        "confirm",
        None,
    )
    assert await SmsMessage.objects.filter(kind="selection_result").acount() == 1


async def test_the_loss_is_answered_ahead_of_django_exactly_as_django_answers_it(room, pool_closed):
    world, keys = room
    spy = Spy()
    route = ConfirmRoute(spy)
    assert (await post(route, world.round.pk, confirm_body(world.units[0]), key=keys[0]))[0] == 201
    fast = await post(route, world.round.pk, confirm_body(world.units[0], "key-0002"), key=keys[1])
    assert spy.calls == 0
    slow = await post(spy, world.round.pk, confirm_body(world.units[0], "key-0002"), key=keys[1])
    assert spy.calls == 1
    assert fast[0] == slow[0] == 409
    assert fast[1] == slow[1]
    assert fast[1]["error"]["code"] == "unit_taken"
    assert headers_of(fast[2]) == headers_of(slow[2])


async def test_the_wins_headers_are_djangos(room, pool_closed):
    """A win through the route and a win through Django (another family, another unit):
    the same headers."""
    world, keys = room
    spy = Spy()
    fast = await post(ConfirmRoute(spy), world.round.pk, confirm_body(world.units[0]), key=keys[0])
    slow = await post(spy, world.round.pk, confirm_body(world.units[1]), key=keys[2])
    assert fast[0] == slow[0] == 201
    assert headers_of(fast[2]) == headers_of(slow[2])
    assert set(fast[1]) == set(slow[1])


@pytest.mark.parametrize(
    "case",
    [
        "anonymous",
        "no_csrf_header",
        "csrf_mismatch",
        "foreign_origin",
        "not_json",
        "string_unit",
        "bad_key",
        "unit_not_in_cart",
        "not_entered",
        "repeat",
        "device_ended",
        "other_round",
        "privacy_not_acknowledged",
        "privacy_not_remembered",
    ],
)
async def test_every_other_case_reaches_djangos_view_and_gets_its_answer(room, pool_closed, case):
    world, keys = room
    spy = Spy()
    route = ConfirmRoute(spy)
    rid, key, body, kwargs = world.round.pk, keys[0], confirm_body(world.units[0]), {}
    if case == "anonymous":
        key = None
    elif case == "no_csrf_header":
        kwargs["header_csrf"] = None
    elif case == "csrf_mismatch":
        kwargs["header_csrf"] = "d" * 32
    elif case == "foreign_origin":
        kwargs["extra"] = [(b"origin", b"https://evil.example")]
    elif case == "not_json":
        body = b"unit_id=1"
    elif case == "string_unit":
        body = {"unit_id": str(world.units[0].pk), "idempotency_key": "key-0001"}
    elif case == "bad_key":
        body = confirm_body(world.units[0], "short")
    elif case == "unit_not_in_cart":
        body = confirm_body(world.units[2])
    elif case == "not_entered":
        await Seat.objects.filter(family=world.families[0]).aupdate(entered_at=None)
    elif case == "repeat":
        assert (await post(route, rid, body, key=key))[0] == 201
        spy.calls = 0
    elif case == "device_ended":
        await sync_to_async(device_session_end)(session_key=key)
    elif case == "other_round":
        rid = world.round.pk + 1000
    elif case == "privacy_not_acknowledged":
        await ConsentText.objects.acreate(
            kind=ConsentKind.PRIVACY, version=2, title="个人信息保护政策", body="第二版"
        )
        await sync_to_async(privacy_reload)()
    elif case == "privacy_not_remembered":
        privacy_forget()  # answering would need a query: Django's view asks (and answers 201)
    through_route = await post(route, rid, body, key=key, **kwargs)
    assert spy.calls == 1  # Django answered
    expected = {
        "anonymous": 401,
        "no_csrf_header": 403,
        "csrf_mismatch": 403,
        "foreign_origin": 403,
        "not_json": 400,
        "string_unit": 201,  # DRF reads "12" as 12: Django's answer, not the route's
        "bad_key": 400,
        "unit_not_in_cart": 403,
        "not_entered": 403,
        "repeat": 200,
        "device_ended": 401,
        "other_round": 404,
        "privacy_not_acknowledged": 403,
        "privacy_not_remembered": 201,
    }[case]
    assert through_route[0] == expected, through_route


async def test_nothing_is_answered_ahead_of_django_when_the_route_is_off(room, pool_closed):
    world, keys = room
    spy = Spy()
    with override_settings(CONFIRM_ROUTE=False):
        status, body, _ = await post(
            ConfirmRoute(spy), world.round.pk, confirm_body(world.units[0]), key=keys[0]
        )
    assert (status, spy.calls) == (201, 1), body


async def test_a_crowd_through_the_route_takes_each_unit_once(pool_closed):
    """Thirty families, three units, all at once through the route: three 201s, every other
    answer a 409 `unit_taken`, each unit allocated once."""
    world = await sync_to_async(make_world)(families=30, units=3, sessions=1, per_session=30)
    session = world.sessions[0]

    def prepare():
        for i, family in enumerate(world.families):
            enter(family, world.round, session)
            CartItem.objects.create(
                family=family,
                round=world.round,
                kind="formal",
                unit=world.units[i % 3],
                position=1,
                added_at=session.starts_at,
            )
        return [login(family) for family in world.families]

    keys = await sync_to_async(prepare)()
    spy = Spy()
    route = ConfirmRoute(spy)
    with time_machine.travel(session.starts_at + timedelta(seconds=20), tick=False):
        await sync_to_async(privacy_reload)()
        answers = await asyncio.gather(
            *(
                post(route, world.round.pk, confirm_body(world.units[i % 3], f"key-{i:04d}"), key=k)
                for i, k in enumerate(keys)
            )
        )
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [201] * 3 + [409] * 27
    assert {body["error"]["code"] for status, body, _ in answers if status == 409} == {"unit_taken"}
    assert await Allocation.objects.filter(round=world.round).acount() == 3
    assert spy.calls == 0
    assert settings.CONFIRM_ROUTE


class _Counting:
    """A pool connection that counts the statements run on it."""

    def __init__(self, conn, seen):
        self._conn, self._seen = conn, seen

    async def execute(self, sql, params=None):
        self._seen.append(sql)
        return await self._conn.execute(sql, params)


async def test_the_loss_is_three_statements_and_the_win_four(room, pool_closed, monkeypatch):
    """The login, the family's seats, the cart line — and for the win the claim: no other
    statement, and none on Django's connections."""
    world, keys = room
    seen: list[str] = []
    real = adb.connection

    class Counted:
        async def __aenter__(self):
            self._cm = real()
            return _Counting(await self._cm.__aenter__(), seen)

        async def __aexit__(self, *exc):
            return await self._cm.__aexit__(*exc)

    monkeypatch.setattr(adb, "connection", Counted)
    spy = Spy()
    route = ConfirmRoute(spy)
    assert (await post(route, world.round.pk, confirm_body(world.units[0]), key=keys[0]))[0] == 201
    assert len(seen) == 4 and "selection_claim" in seen[-1]
    seen.clear()
    loss = await post(route, world.round.pk, confirm_body(world.units[0], "key-0002"), key=keys[1])
    assert loss[0] == 409 and len(seen) == 3
    assert spy.calls == 0
