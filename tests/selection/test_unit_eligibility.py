"""「我家可选」: the unit list marks each unit by the rule the cart applies (Family.may_choose),
in the database, also for a family with no layout at all."""

from __future__ import annotations

import pytest

from selection import selectors

pytestmark = pytest.mark.django_db


def eligible(family, round_id):
    units = selectors.family_unit_list(family=family, round_id=round_id, available_only=False)
    return [(u.eligible, family.may_choose(u.layout)) for u in units]


def test_the_list_marks_units_as_the_cart_rule_does(world):
    family = world.families[0]
    family.eligible_layouts = []
    assert eligible(family, world.round.pk) == [(False, False)] * len(world.units)
    family.eligible_layouts = ["x", world.units[0].layout]
    assert eligible(family, world.round.pk) == [(True, True)] * len(world.units)
