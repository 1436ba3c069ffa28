"""Every time boundary of selection, one second before, at, and one second after."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from core.errors import DomainError
from selection import allocation, carts, supplementary
from selection.models import Allocation, SupplementaryApplication
from selection.selectors import my_result
from tests.worlds import CTX, PRE_START, declare, enter, preselect

S = timedelta(seconds=1)
pytestmark = pytest.mark.django_db


def code_of(fn, *args, **kwargs) -> str | None:
    try:
        fn(*args, **kwargs)
    except DomainError as exc:
        return exc.code
    return None


def test_preselection_opens_at_the_round_start(world):
    family, rnd = world.families[0], world.round
    attempt = lambda now: code_of(declare, family, rnd, "pre", now)  # noqa: E731
    assert attempt(PRE_START - S) == "preselect_not_started"
    assert attempt(PRE_START) is None
    assert attempt(PRE_START + S) is None


def test_preselection_ends_when_the_familys_session_starts(world):
    family, rnd, s1 = world.families[0], world.round, world.sessions[0]
    declare(family, rnd, "pre", PRE_START)
    add = lambda unit, now: code_of(  # noqa: E731
        carts.cart_add, family=family, round_id=rnd.pk, kind="pre", unit_id=unit.pk, now=now
    )
    assert add(world.units[0], s1.starts_at - S) is None
    assert add(world.units[1], s1.starts_at) == "preselect_closed"
    assert add(world.units[1], s1.starts_at + S) == "preselect_closed"


def test_a_later_sessions_family_still_preselects_during_an_earlier_session(world):
    late = world.families[-1]  # seated in session 2
    preselect(late, world.round, world.units[:1], now=world.sessions[0].starts_at + S)


def test_formal_window_is_start_inclusive_end_exclusive(world):
    family, rnd, s1 = world.families[0], world.round, world.sessions[0]
    attempt = lambda now: code_of(declare, family, rnd, "formal", now)  # noqa: E731
    assert attempt(s1.starts_at - S) == "window_not_open"
    assert attempt(s1.starts_at) is None
    assert attempt(s1.ends_at - S) is None
    assert attempt(s1.ends_at) == "window_closed"
    assert attempt(s1.ends_at + S) == "window_closed"


@pytest.mark.parametrize(
    "offset,expected", [(-1, None), (0, "window_closed"), (1, "window_closed")]
)
def test_confirm_at_the_window_end(world, offset, expected):
    family, rnd, s1 = world.families[0], world.round, world.sessions[0]
    preselect(family, rnd, world.units[:1])
    enter(family, rnd, s1)
    carts.cart_sync(family=family, round_id=rnd.pk, now=s1.starts_at)
    now = s1.ends_at + offset * S
    assert (
        code_of(
            allocation.selection_confirm,
            family=family,
            round_id=rnd.pk,
            unit_id=world.units[0].pk,
            idempotency_key="boundary-1",
            now=now,
        )
        == expected
    )
    assert Allocation.objects.exists() == (expected is None)


@pytest.mark.parametrize("offset,closes", [(-1, False), (0, True), (1, True)])
def test_session_closes_at_its_end_not_before(world, offset, closes):
    s1 = world.sessions[0]
    report = allocation.session_close(session_id=s1.pk, now=s1.ends_at + offset * S)
    assert (report is not None) == closes


def test_supplementary_application_window(world):
    rnd, s1, s2 = world.round, world.sessions[0], world.sessions[1]
    family = world.families[0]  # session 1, never enters
    apply = lambda now: code_of(  # noqa: E731
        supplementary.supplementary_apply, family=family, round_id=rnd.pk, ctx=CTX, now=now
    )
    assert apply(s1.ends_at - S) == "supplementary_not_open"
    assert apply(s1.ends_at) == "session_closing"  # the clock has not closed it yet
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    deadline = s2.ends_at + timedelta(minutes=3)  # the day's last formal session + 3 min
    assert apply(deadline) == "supplementary_closed"
    assert apply(deadline + S) == "supplementary_closed"
    assert apply(deadline - S) is None
    assert SupplementaryApplication.objects.filter(family=family).count() == 1


def test_supplementary_opens_at_the_own_session_end(world):
    rnd, s1 = world.round, world.sessions[0]
    family = world.families[0]
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    assert (
        code_of(
            supplementary.supplementary_apply,
            family=family,
            round_id=rnd.pk,
            ctx=CTX,
            now=s1.ends_at,
        )
        is None
    )


def test_supplementary_session_time_is_shown_as_soon_as_it_is_scheduled(world, django_user_model):
    rnd, s1, s2 = world.round, world.sessions[0], world.sessions[1]
    family = world.families[0]
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    supplementary.supplementary_apply(family=family, round_id=rnd.pk, ctx=CTX, now=s1.ends_at)
    deadline = s2.ends_at + timedelta(minutes=3)
    assert my_result(family=family, round_id=rnd.pk, now=deadline).supplementary_session is None
    staff = django_user_model.objects.create(username="op", is_staff=True)
    supplementary.supplementary_session_schedule(
        round_id=rnd.pk, starts_at=deadline + timedelta(minutes=10), actor=staff, now=deadline
    )
    assert my_result(family=family, round_id=rnd.pk, now=deadline).supplementary_session is not None


@pytest.mark.parametrize("age,valid", [(119, True), (121, False)])
def test_give_up_confirmation_expires_after_two_minutes(world, age, valid):
    family, rnd, s1 = world.families[0], world.round, world.sessions[0]
    with time_machine.travel(s1.starts_at, tick=False):
        token = allocation.give_up_intent(family=family, round_id=rnd.pk, now=s1.starts_at)
    later = s1.starts_at + timedelta(seconds=age)
    with time_machine.travel(later, tick=False):
        code = code_of(
            allocation.selection_give_up,
            family=family,
            round_id=rnd.pk,
            token=token,
            ctx=CTX,
            now=later,
        )
    assert code == (None if valid else "give_up_token_invalid")
