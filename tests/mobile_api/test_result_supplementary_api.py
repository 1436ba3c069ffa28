"""The result API of a supplementary family: its session time as soon as staff scheduled it,
labelled as a supplementary session; its result and explanation after it picked a unit there,
the allocation naming that session; 预选结果作废 for a family that never entered and had
pre-selected, 未参加补选 (not 正选) for one that missed its supplementary session."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from selection import allocation, carts, supplementary
from tests.mobile_api.test_selection_api import as_family
from tests.worlds import CTX, enter, make_world, preselect

pytestmark = pytest.mark.django_db
S = timedelta(seconds=1)


def result_of(family, rid, at):
    with time_machine.travel(at, tick=False):
        response = as_family(family).get(f"/api/v1/selection/{rid}/result/")
    assert response.status_code == 200, response.content
    return response.json()


def test_result_before_during_and_after_the_supplementary_session(django_user_model):
    w = make_world(families=2, units=4, sessions=1)
    family, rid, s1 = w.families[0], w.round.pk, w.sessions[0]
    preselect(family, w.round, w.units[:1])
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)  # nobody entered
    supplementary.supplementary_apply(family=family, round_id=rid, ctx=CTX, now=s1.ends_at)
    deadline = s1.ends_at + timedelta(minutes=3)

    before = result_of(family, rid, deadline)
    assert before["supplementary"]["applied_at"] and before["supplementary"]["session"] is None
    assert before["phase"] == "ended" and before["allocation"] is None
    assert before["sessions"][0]["explanation"] == "您未在正选时间内进入选房，预选结果作废。"

    staff = django_user_model.objects.create(username="op", is_staff=True)
    start = deadline + timedelta(minutes=30)
    session = supplementary.supplementary_session_schedule(
        round_id=rid, starts_at=start, actor=staff, now=deadline
    )
    scheduled = result_of(family, rid, deadline + S)  # at once, long before it starts
    assert scheduled["supplementary"]["session"]["id"] == session.pk
    assert scheduled["supplementary"]["session"]["kind"] == "supplementary"
    assert [s["kind"] for s in scheduled["sessions"]] == ["formal", "supplementary"]

    preselect(family, w.round, w.units[1:3], now=start - S)
    enter(family, w.round, session, start)
    carts.cart_sync(family=family, round_id=rid, now=start)
    during = result_of(family, rid, start + 5 * S)
    assert during["phase"] == "formal" and during["supplementary"]["session"]["id"] == session.pk

    allocation.session_close(session_id=session.pk, now=session.ends_at)
    after = result_of(family, rid, session.ends_at + S)
    assert after["allocation"]["unit"]["id"] == w.units[1].pk
    # The page explains the session the unit came from, not the formal session's miss.
    assert after["allocation"]["session"] == session.pk == after["sessions"][1]["id"]
    assert after["sessions"][0]["explanation"] == "您未在正选时间内进入选房，预选结果作废。"
    assert after["supplementary"]["session"]["id"] == session.pk
    assert after["sessions"][1]["explanation"] == (
        f"您购物车第1套 {w.units[1].name} 已为您自动选定。"
    )


def test_a_family_that_missed_its_supplementary_session_is_told_in_its_words(
    django_user_model,
):
    w = make_world(families=1, units=2, sessions=1)
    family, rid, s1 = w.families[0], w.round.pk, w.sessions[0]
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)  # never entered, no cart
    supplementary.supplementary_apply(family=family, round_id=rid, ctx=CTX, now=s1.ends_at)
    staff = django_user_model.objects.create(username="op", is_staff=True)
    start = s1.ends_at + timedelta(hours=1)
    session = supplementary.supplementary_session_schedule(
        round_id=rid, starts_at=start, actor=staff, now=s1.ends_at + timedelta(minutes=5)
    )
    allocation.session_close(session_id=session.pk, now=session.ends_at)  # missed it too
    after = result_of(family, rid, session.ends_at + S)
    formal, extra = after["sessions"]
    assert (formal["outcome_label"], formal["explanation"]) == (
        "未参加正选",
        "您未在正选时间内进入选房。",
    )
    assert (extra["outcome_label"], extra["explanation"]) == (
        "未参加补选",
        "您未在补选时间内进入选房。",
    )
    # Staff read the same word in the results export (Seat.outcome_label).
    from selection.exports import results_table

    (row,) = results_table(round_id=rid)
    assert "未参加补选" in row and "未参加正选" not in row


def test_result_api_refuses_anonymous_callers():
    w = make_world(families=1, units=1, sessions=1)
    from tests.mobile_api.conftest import ApiClient, error_code

    response = ApiClient().get(f"/api/v1/selection/{w.round.pk}/result/")
    assert response.status_code in (401, 403) and error_code(response)


def test_the_application_window_says_when_it_closed_unused():
    """`closed`: the window ended with no application from a family that could have made
    one (the page says so); not for a family that applied, nor before the deadline."""
    w = make_world(families=2, units=4, sessions=1)
    missed, applied, rid, s1 = w.families[0], w.families[1], w.round.pk, w.sessions[0]
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    supplementary.supplementary_apply(family=applied, round_id=rid, ctx=CTX, now=s1.ends_at)
    deadline = s1.ends_at + timedelta(minutes=3)
    open_ = result_of(missed, rid, deadline - S)["supplementary"]
    assert (open_["can_apply"], open_["closed"]) == (True, False)
    shut = result_of(missed, rid, deadline)["supplementary"]
    assert (shut["can_apply"], shut["closed"]) == (False, True)
    assert result_of(applied, rid, deadline)["supplementary"]["closed"] is False
