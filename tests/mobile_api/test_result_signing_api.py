"""The result API says where the signing of the allocated unit's lease stands, so the result
page tells the family its deadline while the lease is to be signed and stops urging it once
submitted: before the lease is started (the deadline it will have), started, under review,
approved, closed; null without a unit."""

from __future__ import annotations

from datetime import datetime

import pytest
import time_machine

from core.context import RequestContext
from signing.lease.services import lease_start
from signing.models import Agreement
from tests.mobile_api.test_selection_api import as_family
from tests.signing.lease_worlds import NOW, WINDOW_ENDS, lease_submitted, make_lease_world
from tests.worlds import make_world

pytestmark = pytest.mark.django_db


def signing_of(family, round_id):
    with time_machine.travel(NOW, tick=False):
        response = as_family(family).get(f"/api/v1/selection/{round_id}/result/")
    assert response.status_code == 200, response.content
    signing = response.json()["signing"]
    if signing and signing["deadline"]:  # an instant, however its offset is written
        signing["deadline"] = datetime.fromisoformat(signing["deadline"])
    return signing


def test_the_signing_of_the_unit_stage_by_stage():
    world = make_lease_world()
    family, rid = world.family, world.allocation.round_id
    todo = {"status": "todo", "deadline": WINDOW_ENDS}
    assert signing_of(family, rid) == todo  # before the lease is started: the same deadline

    lease = lease_start(applicant=world.applicant, ctx=RequestContext(), now=NOW)
    assert signing_of(family, rid) == todo

    lease_submitted(lease, now=NOW)
    assert signing_of(family, rid) == {"status": "submitted", "deadline": None}
    Agreement.objects.filter(pk=lease.agreement_id).update(status="sealed", sealed_at=NOW)
    assert signing_of(family, rid) == {"status": "approved", "deadline": None}
    Agreement.objects.filter(pk=lease.agreement_id).update(status="void")
    assert signing_of(family, rid) == {"status": "closed", "deadline": None}


def test_no_unit_no_signing():
    world = make_world()
    assert signing_of(world.families[0], world.round.pk) is None
