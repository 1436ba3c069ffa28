"""A supplementary session says 补选 in what the family acknowledges and in how its result was
decided (issue 12 item 4: 补选 everywhere)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

import pytest

from core.errors import NotAllowed
from selection import allocation, carts
from selection.models import CartItem
from selection.phases import family_state
from tests.worlds import declare, enter, supplementary_world

MIN = timedelta(minutes=1)

pytestmark = pytest.mark.django_db


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


def test_pre_selection_before_a_supplementary_session_declares_buxuan():
    world, s1, supp = supplementary_world()
    family = world.families[0]
    before_formal = family_state(family=family, round_id=world.round.pk, now=s1.starts_at - MIN)
    text, _ = carts.declaration_current(state=before_formal, phase="pre")
    assert "本家庭正选时间开始前" in text  # control: pre-selection before the formal session
    before_supp = family_state(family=family, round_id=world.round.pk, now=supp.starts_at - MIN)
    assert before_supp.preselect_open
    text, version = carts.declaration_current(state=before_supp, phase="pre")
    assert "本家庭补选时间开始前" in text and "正选" not in text
    declare(family, world.round, "pre", supp.starts_at - MIN)  # its version is accepted


@pytest.mark.parametrize("kind", ["formal", "supplementary"])
def test_the_window_refusals_name_the_sessions_own_word(kind):
    """What the formal page shows a family refused in its window says 补选 in a supplementary
    session: not yet open, not entered, a unit not in the cart, closed."""
    world, s1, supp = supplementary_world()
    family = world.families[0]
    session = supp if kind == "supplementary" else s1
    word = "补选" if kind == "supplementary" else "正选"
    rid = world.round.pk

    def refusal(call, now):
        with pytest.raises(NotAllowed) as refused:
            call(now)
        return refused.value.code, refused.value.message

    def enter_page(now):
        carts.formal_enter(family=family, round_id=rid, now=now)

    def add(now):
        carts.cart_add(
            family=family, round_id=rid, kind="formal", unit_id=world.units[0].pk, now=now
        )

    def confirm(now):
        allocation.selection_confirm(
            family=family, round_id=rid, unit_id=world.units[1].pk, idempotency_key="k", now=now
        )

    if kind == "supplementary":  # after the formal session, missed
        allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    assert refusal(enter_page, session.starts_at - MIN) == (
        "window_not_open",
        f"您的{word}时间尚未开始",
    )
    inside = session.starts_at + timedelta(seconds=5)
    declare(family, world.round, "formal", inside)
    assert refusal(add, inside) == ("not_entered", f"请先勾选声明并进入{word}页面")
    enter_page(inside)
    assert refusal(confirm, inside) == ("unit_not_in_cart", f"只能从{word}购物车中选择房源")
    closed = ("window_closed", f"您的{word}时间已结束")
    # the re-check under the family lock, as the writes make it at the window's end
    recheck = partial(carts.session_open_recheck, session_id=session.pk)
    assert refusal(lambda now: recheck(now=now), session.ends_at) == closed
    if kind == "supplementary":  # the family's last session over: nothing upcoming
        assert refusal(add, session.ends_at) == closed
