from datetime import timedelta

from selection import allocation, carts
from selection.models import Allocation, Seat
from tests.factories import log_ok
from tests.worlds import enter, preselect


def test_pre_select_enter_sync_confirm_then_close(world):
    rnd, s1 = world.round, world.sessions[0]
    a, b = world.families[0], world.families[1]
    preselect(a, rnd, world.units[:3])
    preselect(b, rnd, world.units[:2])
    enter(a, rnd, s1)
    enter(b, rnd, s1)
    now = s1.starts_at + timedelta(seconds=5)
    for fam in (a, b):
        carts.cart_sync(family=fam, round_id=rnd.pk, now=now)
    result = allocation.selection_confirm(
        family=a, round_id=rnd.pk, unit_id=world.units[0].pk, idempotency_key="key-a-0001", now=now
    )
    assert result.created
    report = allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    assert report.assigned == [(b.pk, world.units[1].pk)]
    assert (
        "taken at" in report.explanations[b.pk]
        and "#2 3-1202 assigned" in report.explanations[b.pk]
    )
    assert Allocation.objects.count() == 2
    assert allocation.session_close(session_id=s1.pk, now=s1.ends_at) is None
    log_ok()
    assert set(Seat.objects.filter(session=s1).values_list("outcome", flat=True)) == {
        "confirmed",
        "auto",
    }
