"""A supplementary session says 补选 in what the family acknowledges and in how its result was
decided (issue 12 item 4: 补选 everywhere)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from selection import allocation, carts
from selection.models import CartItem, Seat, Session
from selection.phases import family_state
from tests.worlds import enter, make_world

pytestmark = pytest.mark.django_db


def supplementary_world():
    world = make_world(families=1, units=2, sessions=1)
    s1 = world.sessions[0]
    start = s1.ends_at + timedelta(hours=2)
    supp = Session.objects.create(
        round=world.round,
        order=2,
        kind=Session.Kind.SUPPLEMENTARY,
        starts_at=start,
        ends_at=start + timedelta(seconds=120),
    )
    Seat.objects.create(session=supp, family=world.families[0])
    return world, s1, supp


def test_the_declaration_and_the_result_say_buxuan_in_a_supplementary_session():
    world, s1, supp = supplementary_world()
    family = world.families[0]
    formal_state = family_state(family=family, round_id=world.round.pk, now=s1.starts_at)
    text, _ = carts.declaration_current(state=formal_state, phase="formal")
    assert text.startswith("正式选房声明") and "确认正选" in text  # control: a formal session
    now = supp.starts_at + timedelta(seconds=5)
    state = family_state(family=family, round_id=world.round.pk, now=now)
    text, _ = carts.declaration_current(state=state, phase="formal")
    assert text.startswith("补选声明") and "确认补选" in text and "正选" not in text
    enter(family, world.round, supp, now=now)
    CartItem.objects.create(
        family=family,
        round=world.round,
        kind="formal",
        unit=world.units[0],
        position=1,
        added_at=now,
    )
    made = allocation.selection_confirm(
        family=family,
        round_id=world.round.pk,
        unit_id=world.units[0].pk,
        idempotency_key="supp-confirm-1",
        now=now,
    ).allocation
    assert made.how_label == "家庭确认补选"
    assert made.get_how_display() == "家庭确认正选"  # the stored choice is the same
