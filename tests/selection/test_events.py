"""What selection tells the pages: each change records its events in its own transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest

from events.models import Event
from selection import allocation, carts
from selection.clock import clock_tick
from selection.translog import sequence_pending
from tests.worlds import CTX, PRE_START, enter, preselect

pytestmark = pytest.mark.django_db
S = timedelta(seconds=1)


def kinds(stream: str) -> list[str]:
    return list(Event.objects.filter(stream=stream).order_by("seq").values_list("type", flat=True))


def test_the_clock_announces_each_phase_once_at_its_boundary(world):
    rnd, s1 = world.round, world.sessions[0]
    clock_tick(now=PRE_START - S)
    assert kinds(f"round.{rnd.pk}") == []
    clock_tick(now=PRE_START)
    clock_tick(now=PRE_START + S)
    assert kinds(f"round.{rnd.pk}") == ["selection.preselect_opened"]
    clock_tick(now=s1.starts_at)
    clock_tick(now=s1.ends_at - 31 * S)
    assert kinds(f"session.{s1.pk}") == ["selection.session_opened"]
    clock_tick(now=s1.ends_at - 30 * S)
    clock_tick(now=s1.ends_at - 29 * S)
    assert kinds(f"session.{s1.pk}") == ["selection.session_opened", "selection.session_last_call"]
    clock_tick(now=s1.ends_at)
    assert kinds(f"session.{s1.pk}")[-1] == "selection.session_closed"
    assert kinds(f"round.{rnd.pk}") == [
        "selection.preselect_opened",
        "selection.session_opened",
        "selection.session_closed",
    ]


def test_confirm_and_auto_assign_tell_the_round_and_only_the_family(world):
    rnd, s1 = world.round, world.sessions[0]
    a, b = world.families[:2]
    for family in (a, b):
        preselect(family, rnd, world.units[:2])
        enter(family, rnd, s1)
        carts.cart_sync(family=family, round_id=rnd.pk, now=s1.starts_at)
    allocation.selection_confirm(
        family=a,
        round_id=rnd.pk,
        unit_id=world.units[0].pk,
        idempotency_key="events-a-01",
        now=s1.starts_at + S,
    )
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    assert not Event.objects.filter(type="selection.unit_taken").exists()  # the log's to say
    sequence_pending()
    taken = Event.objects.filter(stream=f"round.{rnd.pk}", type="selection.unit_taken").order_by(
        "seq"
    )
    assert [(e.data["unit"]["id"], e.data["how"]) for e in taken] == [
        (world.units[0].pk, "confirmed"),
        (world.units[1].pk, "auto"),
    ]
    assert all("family" not in e.data and "rank" not in e.data for e in taken)
    assert kinds(f"family.{a.pk}") == ["selection.result_assigned"]
    assert Event.objects.get(stream=f"family.{b.pk}").data["unit"]["id"] == world.units[1].pk


def test_give_up_tells_the_family(world):
    family, rnd, s1 = world.families[0], world.round, world.sessions[0]
    token = allocation.give_up_intent(family=family, round_id=rnd.pk, now=s1.starts_at)
    allocation.selection_give_up(
        family=family, round_id=rnd.pk, token=token, ctx=CTX, now=s1.starts_at
    )
    assert kinds(f"family.{family.pk}") == ["selection.gave_up"]


def test_a_refused_confirm_records_no_event(world):
    rnd, s1 = world.round, world.sessions[0]
    a, b = world.families[:2]
    for family in (a, b):
        preselect(family, rnd, world.units[:1])
        enter(family, rnd, s1)
        carts.cart_sync(family=family, round_id=rnd.pk, now=s1.starts_at)
    allocation.selection_confirm(
        family=a,
        round_id=rnd.pk,
        unit_id=world.units[0].pk,
        idempotency_key="events-a-02",
        now=s1.starts_at + S,
    )
    before = Event.objects.count()
    with pytest.raises(Exception, match="unit_taken"):
        allocation.selection_confirm(
            family=b,
            round_id=rnd.pk,
            unit_id=world.units[0].pk,
            idempotency_key="events-b-02",
            now=s1.starts_at + S,
        )
    assert Event.objects.count() == before
