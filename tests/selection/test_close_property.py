"""Property: session close agrees with a small reference model of rank-order auto-assign,
for any carts, entries, earlier takes and confirmations hypothesis comes up with."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import DomainError
from selection import allocation
from selection.models import Allocation, CartItem, Seat, Unit
from selection.replay import session_replay
from tests.factories import FamilyFactory, log_entry, log_ok
from tests.worlds import make_world

pytestmark = pytest.mark.django_db


def reference(ranked, carts, entered, confirm_first, pre_taken):
    """Confirmations first (in the order they were made), then every entered family that
    did not confirm gets the first cart unit nobody holds, in rank order."""
    taken = set(pre_taken)
    result = {}
    for family in ranked:
        if entered[family] and confirm_first[family] and carts[family]:
            unit = carts[family][0]
            if unit not in taken:
                taken.add(unit)
                result[family] = unit
    for family in ranked:
        if entered[family] and family not in result:
            unit = next((u for u in carts[family] if u not in taken), None)
            if unit is not None:
                taken.add(unit)
                result[family] = unit
    return result


scenario = st.integers(min_value=1, max_value=6).flatmap(
    lambda n_units: st.tuples(
        st.just(n_units),
        st.lists(
            st.tuples(
                st.permutations(range(n_units)).flatmap(
                    lambda perm: st.integers(0, min(5, len(perm))).map(lambda k: list(perm[:k]))
                ),
                st.booleans(),  # entered
                st.booleans(),  # confirms its first cart unit during the window
            ),
            min_size=1,
            max_size=6,
        ),
        st.sets(st.integers(0, n_units - 1)),  # units taken before this session
    )
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(scenario)
def test_session_close_matches_the_reference_model(data):
    n_units, specs, pre_taken = data
    world = make_world(families=len(specs), units=n_units, sessions=1, per_session=len(specs))
    s1 = world.sessions[0]
    families = world.families  # created in rank order
    units = world.units
    outsider_session = s1
    for index in sorted(pre_taken):  # taken by a family of an earlier session
        outsider = FamilyFactory()
        Allocation.objects.create(
            round=world.round,
            unit=units[index],
            family=outsider,
            session=outsider_session,
            how="staff",
            at=s1.starts_at,
            ledger_entry=log_entry(round=world.round, unit=units[index], family=outsider),
        )
        Unit.objects.filter(pk=units[index].pk).update(status=Unit.Status.TAKEN)
    carts = {}
    for family, (cart, entered, _) in zip(families, specs, strict=True):
        carts[family.pk] = [units[i].pk for i in cart]
        CartItem.objects.bulk_create(
            CartItem(
                family=family,
                round=world.round,
                kind="formal",
                unit=units[i],
                position=p,
                added_at=s1.starts_at,
            )
            for p, i in enumerate(cart, start=1)
        )
        if entered:
            Seat.objects.filter(session=s1, family=family).update(entered_at=s1.starts_at)
    for family, (cart, entered, confirms) in zip(families, specs, strict=True):
        if entered and confirms and cart:
            try:
                allocation.selection_confirm(
                    family=family,
                    round_id=world.round.pk,
                    unit_id=units[cart[0]].pk,
                    idempotency_key=f"prop-{family.pk:08d}",
                    now=s1.starts_at + timedelta(seconds=10),
                )
            except DomainError as exc:
                assert exc.code == "unit_taken"

    allocation.session_close(session_id=s1.pk, now=s1.ends_at)

    expected = reference(
        [f.pk for f in families],
        carts,
        {f.pk: spec[1] for f, spec in zip(families, specs, strict=True)},
        {f.pk: spec[2] for f, spec in zip(families, specs, strict=True)},
        {units[i].pk for i in pre_taken},
    )
    actual = dict(
        Allocation.objects.filter(session=s1, family__in=families).values_list(
            "family_id", "unit_id"
        )
    )
    assert actual == expected
    log_ok()
    if not pre_taken:  # staff-made takes above have no ledger entry to replay from
        assert session_replay(session_id=s1.pk).ok
