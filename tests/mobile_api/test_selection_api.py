"""The selection API end to end, and for every endpoint the unauthenticated, forbidden
(staff, another family's round) and invalid cases: a 4xx in the one error body."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from accounts.services import applicant_user_ensure
from selection.models import Allocation, CartItem, Declaration, GiveUp, LedgerEntry
from tests.factories import UserFactory
from tests.mobile_api.conftest import ApiClient, error_code
from tests.worlds import PRE_START, make_world

pytestmark = pytest.mark.django_db


def as_family(family) -> ApiClient:
    api = ApiClient()
    api.client.force_login(applicant_user_ensure(applicant=family.main_applicant).user)
    return api


def endpoints(rid: int, uid: int):
    """(method, path, valid body) for every applicant operation of a round."""
    return [
        ("get", f"/api/v1/selection/{rid}/state/", None),
        ("get", f"/api/v1/selection/{rid}/declaration/pre/", None),
        (
            "post",
            f"/api/v1/selection/{rid}/declaration/pre/",
            {"text_version": "a" * 64, "acknowledged": True},
        ),
        ("get", f"/api/v1/selection/{rid}/units/", None),
        ("get", f"/api/v1/selection/{rid}/unit-filters/", None),
        ("get", f"/api/v1/selection/{rid}/cart/pre/", None),
        ("post", f"/api/v1/selection/{rid}/cart/pre/items/", {"unit_id": uid}),
        ("delete", f"/api/v1/selection/{rid}/cart/pre/items/{uid}/", None),
        ("post", f"/api/v1/selection/{rid}/cart/pre/items/{uid}/move/", {"direction": "up"}),
        ("post", f"/api/v1/selection/{rid}/formal/enter/", {}),
        ("get", f"/api/v1/selection/{rid}/formal/sync/", None),
        ("post", f"/api/v1/selection/{rid}/formal/sync/", {}),
        (
            "post",
            f"/api/v1/selection/{rid}/confirm/",
            {"unit_id": uid, "idempotency_key": "k" * 10},
        ),
        ("post", f"/api/v1/selection/{rid}/give-up/intent/", {}),
        ("post", f"/api/v1/selection/{rid}/give-up/", {"token": "x"}),
        ("post", f"/api/v1/selection/{rid}/supplementary/", {}),
        ("get", f"/api/v1/selection/{rid}/result/", None),
        ("get", f"/api/v1/selection/{rid}/result/receipt/", None),
    ]


def call(api: ApiClient, method: str, path: str, body):
    if method == "get":
        return api.get(path)
    if method == "delete":
        return api.client.delete(path, headers={"X-CSRFToken": api.csrf})
    return api.post(path, body)


def snapshot():
    return (
        CartItem.objects.count(),
        Declaration.objects.count(),
        Allocation.objects.count(),
        GiveUp.objects.count(),
        LedgerEntry.objects.count(),
    )


def test_every_endpoint_refuses_anonymous_staff_and_other_families(world):
    rid, uid = world.round.pk, world.units[0].pk
    other = make_world(families=1, units=1, sessions=1)
    anonymous, staff = ApiClient(), ApiClient()
    staff.client.force_login(UserFactory(is_staff=True))
    outsider = as_family(other.families[0])
    before = snapshot()
    with time_machine.travel(PRE_START + timedelta(hours=1), tick=False):
        for method, path, body in endpoints(rid, uid):
            response = call(anonymous, method, path, body)
            assert response.status_code == 401 and error_code(response) == "not_authenticated", path
            response = call(staff, method, path, body)
            assert response.status_code == 403 and error_code(response) == "forbidden", path
            response = call(outsider, method, path, body)
            assert response.status_code == 404 and error_code(response) == "round_not_found", path
            response = call(
                as_family(world.families[0]), method, path.replace(f"/{rid}/", "/999999/"), body
            )
            assert response.status_code == 404, path
    assert snapshot() == before


@pytest.mark.parametrize(
    "method,suffix,body,code",
    [
        (
            "post",
            "declaration/pre/",
            {"text_version": "nothex", "acknowledged": True},
            "invalid_input",
        ),
        ("post", "declaration/pre/", {"text_version": "a" * 64}, "invalid_input"),
        (
            "post",
            "declaration/pre/",
            {"text_version": "a" * 64, "acknowledged": False},
            "not_acknowledged",
        ),
        (
            "post",
            "declaration/pre/",
            {"text_version": "a" * 64, "acknowledged": True},
            "declaration_outdated",
        ),
        ("get", "declaration/lunch/", None, "not_found"),
        ("get", "units/?layout=castle", None, "invalid_input"),
        ("get", "units/?orientation=UP", None, "invalid_input"),
        ("get", "cart/other/", None, "not_found"),
        ("post", "cart/pre/items/", {}, "invalid_input"),
        ("post", "cart/pre/items/", {"unit_id": "one"}, "invalid_input"),
        ("post", "cart/pre/items/", {"unit_id": -3}, "invalid_input"),
        ("post", "cart/pre/items/", {"unit_id": 99999999}, "declaration_required"),
        ("post", "cart/pre/items/UNIT/move/", {"direction": "sideways"}, "invalid_input"),
        ("post", "confirm/", {"unit_id": "UNIT"}, "invalid_input"),
        ("post", "confirm/", {"unit_id": "UNIT", "idempotency_key": "short"}, "invalid_input"),
        (
            "post",
            "confirm/",
            {"unit_id": "UNIT", "idempotency_key": "bad key with spaces"},
            "invalid_input",
        ),
        ("post", "confirm/", {"unit_id": "UNIT", "idempotency_key": "k" * 10}, "window_not_open"),
        ("post", "give-up/", {}, "invalid_input"),
        ("post", "give-up/", {"token": "forged"}, "give_up_token_invalid"),
        ("post", "formal/enter/", {}, "window_not_open"),
        ("get", "formal/sync/", None, "window_not_open"),
        ("post", "supplementary/", {}, "supplementary_not_open"),
    ],
)
def test_invalid_input_and_out_of_phase_requests_change_nothing(world, method, suffix, body, code):
    rid, uid = world.round.pk, world.units[0].pk
    api = as_family(world.families[0])
    path = f"/api/v1/selection/{rid}/" + suffix.replace("UNIT", str(uid))
    if isinstance(body, dict):
        body = {k: (uid if v == "UNIT" else v) for k, v in body.items()}
    before = snapshot()
    with time_machine.travel(PRE_START + timedelta(hours=1), tick=False):
        response = call(api, method, path, body)
    assert 400 <= response.status_code < 500, response.content
    assert error_code(response) == code
    assert snapshot() == before


def test_malformed_json_is_400(world):
    api = as_family(world.families[0])
    response = api.client.post(
        f"/api/v1/selection/{world.round.pk}/confirm/",
        "{",
        content_type="application/json",
        headers={"X-CSRFToken": api.csrf},
    )
    assert response.status_code == 400 and error_code(response) == "malformed_request"


def test_missing_csrf_is_refused_on_a_write(world):
    api = as_family(world.families[0])
    response = api.post(f"/api/v1/selection/{world.round.pk}/formal/enter/", {}, csrf=False)
    assert response.status_code == 403 and error_code(response) == "csrf_failed"


def test_entering_answers_with_the_formal_cart(world):
    """The formal page takes the cart's limit and items from entering (no GET of the cart
    before its first snapshot): entering again, after a sync, answers with the synced items."""
    rid = world.round.pk
    s1 = world.sessions[0]
    api = as_family(world.families[0])
    base = f"/api/v1/selection/{rid}"
    u = world.units
    with time_machine.travel(PRE_START + timedelta(minutes=1), tick=False):
        text = api.get(f"{base}/declaration/pre/").json()
        api.post(
            f"{base}/declaration/pre/", {"text_version": text["text_version"], "acknowledged": True}
        )
        for unit in u[:2]:
            assert api.post(f"{base}/cart/pre/items/", {"unit_id": unit.pk}).status_code == 201
    with time_machine.travel(s1.starts_at + timedelta(seconds=3), tick=False):
        text = api.get(f"{base}/declaration/formal/").json()
        api.post(
            f"{base}/declaration/formal/",
            {"text_version": text["text_version"], "acknowledged": True},
        )
        first = api.post(f"{base}/formal/enter/", {})
        assert first.status_code == 200
        cart = first.json()["cart"]
        read = api.get(f"{base}/cart/formal/").json()
        assert cart == {key: value for key, value in read.items() if key in cart}
        assert set(cart) == {"kind", "limit", "items"}
        assert cart["kind"] == "formal" and cart["limit"] == world.round.cart_limit
        assert cart["items"] == []
        assert api.post(f"{base}/formal/sync/", {}).status_code == 200
        again = api.post(f"{base}/formal/enter/", {}).json()["cart"]
        assert [item["unit"]["id"] for item in again["items"]] == [u[0].pk, u[1].pk]


def test_full_journey_through_the_api(world):
    rid = world.round.pk
    s1 = world.sessions[0]
    a, b = world.families[0], world.families[1]
    api_a, api_b = as_family(a), as_family(b)
    base = f"/api/v1/selection/{rid}"
    u = world.units
    with time_machine.travel(PRE_START + timedelta(minutes=1), tick=False):
        state = api_a.get(f"{base}/state/").json()
        assert state["phase"] == "pre" and state["next_session"]["id"] == s1.pk
        rounds = api_a.get("/api/v1/selection/rounds/").json()
        assert [(r["id"], r["allocated_unit"]) for r in rounds] == [(rid, None)]
        for api in (api_a, api_b):
            text = api.get(f"{base}/declaration/pre/").json()
            assert (
                api.post(
                    f"{base}/declaration/pre/",
                    {"text_version": text["text_version"], "acknowledged": True},
                ).status_code
                == 201
            )
        for unit in u[:3]:
            assert api_a.post(f"{base}/cart/pre/items/", {"unit_id": unit.pk}).status_code == 201
        api_b.post(f"{base}/cart/pre/items/", {"unit_id": u[0].pk})
        moved = api_a.post(f"{base}/cart/pre/items/{u[2].pk}/move/", {"direction": "top"}).json()
        assert [i["unit"]["id"] for i in moved["items"]] == [u[2].pk, u[0].pk, u[1].pk]
        units = api_a.get(f"{base}/units/?building=3&available=true").json()
        assert len(units) == len(u) and all(x["eligible"] for x in units)
    with time_machine.travel(s1.starts_at + timedelta(seconds=3), tick=False):
        for api in (api_a, api_b):
            text = api.get(f"{base}/declaration/formal/").json()
            api.post(
                f"{base}/declaration/formal/",
                {"text_version": text["text_version"], "acknowledged": True},
            )
            assert api.post(f"{base}/formal/enter/", {}).status_code == 200
        diff = api_a.get(f"{base}/formal/sync/").json()
        assert [i["unit"]["id"] for i in diff["added"]] == [u[2].pk, u[0].pk, u[1].pk]
        assert api_a.post(f"{base}/formal/sync/", {}).status_code == 200
        api_b.post(f"{base}/formal/sync/", {})
        first = api_a.post(
            f"{base}/confirm/", {"unit_id": u[2].pk, "idempotency_key": "journey-a-1"}
        )
        assert first.status_code == 201 and first.json()["unit"]["id"] == u[2].pk
        repeat = api_a.post(
            f"{base}/confirm/", {"unit_id": u[2].pk, "idempotency_key": "journey-a-1"}
        )
        assert repeat.status_code == 200
        other = api_a.post(
            f"{base}/confirm/", {"unit_id": u[0].pk, "idempotency_key": "journey-a-2"}
        )
        assert other.status_code == 409 and error_code(other) == "already_allocated"
        # The rounds list names the unit (the signing list's 「去签约」 reads only this).
        rounds = api_a.get("/api/v1/selection/rounds/").json()
        assert rounds[0]["allocated_unit"]["id"] == u[2].pk
        assert api_b.get("/api/v1/selection/rounds/").json()[0]["allocated_unit"] is None
    from selection.allocation import session_close

    session_close(session_id=s1.pk, now=s1.ends_at)
    with time_machine.travel(s1.ends_at + timedelta(seconds=1), tick=False):
        result_b = api_b.get(f"{base}/result/").json()
        assert api_b.get("/api/v1/selection/rounds/").json()[0]["allocated_unit"]["id"] == u[0].pk
        assert (
            result_b["allocation"]["unit"]["id"] == u[0].pk
            and result_b["allocation"]["how"] == "auto"
        )
        board = ApiClient().get(f"/api/v1/broadcast/{rid}/").json()
    assert board["taken"] == 2 and len(board["feed"]) == 2
    assert all(
        set(f) == {"unit", "layout_label", "how", "how_label", "at", "seq"} for f in board["feed"]
    )
    assert a.main_applicant.real_name not in str(board) and str(a.rank) not in [
        f["unit"] for f in board["feed"]
    ]


def test_the_board_counts_a_withdrawn_unit_as_neither_taken_nor_available():
    """撤回 is not 已选: a withdrawn unit is counted on its own, in the totals and in every
    building and layout row, and 总数 = 已选 + 已撤回 + 可选 everywhere."""
    from selection import allocation, carts, staff_ops
    from tests.worlds import enter, preselect

    world = make_world(families=2, units=4, sessions=1, per_session=2)
    rid, u, s1, family = world.round.pk, world.units, world.sessions[0], world.families[0]
    staff = UserFactory(is_staff=True)
    staff_ops.unit_withdraw(unit_id=u[1].pk, reason="漏水维修", actor=staff, now=PRE_START)
    preselect(family, world.round, [u[0]])
    enter(family, world.round, s1)
    carts.cart_sync(family=family, round_id=rid, now=s1.starts_at)
    allocation.selection_confirm(
        family=family,
        round_id=rid,
        unit_id=u[0].pk,
        idempotency_key="board-0001",
        now=s1.starts_at + timedelta(seconds=5),
    )
    board = ApiClient().get(f"/api/v1/broadcast/{rid}/").json()
    assert (board["total"], board["taken"], board["withdrawn"], board["available"]) == (4, 1, 1, 2)
    for row in board["by_building"] + board["by_layout"]:
        assert row["total"] == row["taken"] + row["withdrawn"] + row["available"], row
    assert sum(r["withdrawn"] for r in board["by_building"]) == 1
    assert sum(r["taken"] for r in board["by_layout"]) == 1


def test_broadcast_of_an_unknown_round_is_404(client):
    response = client.get("/api/v1/broadcast/424242/")
    assert response.status_code == 404 and response.json()["error"]["code"] == "round_not_found"
