"""Typed event payloads (issue 13 item 5): every event type has one schema in
events/schemas.py, checked when an event is recorded (on in the test suite and in
development), and docs/REALTIME.md's event table is generated from them."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from events.models import Event
from events.schemas import EVENT_TYPES, PayloadInvalid, payload_check
from events.services import event_record

pytestmark = pytest.mark.django_db

UNIT = {
    "id": 1,
    "building": "3",
    "number": "1202",
    "label": "3-1202",
    "layout": "1b1l",
    "layout_label": "一房一厅",
    "orientation": "S",
}


def test_the_realtime_doc_is_generated_from_the_schemas():
    call_command("events_doc", "--check")  # fails when docs/REALTIME.md drifted


def test_a_declared_payload_is_recorded():
    with transaction.atomic():
        event_record(
            stream="round.1",
            type="selection.unit_withdrawn",
            data={"unit": UNIT},
            now=timezone.now(),
        )
    assert Event.objects.filter(type="selection.unit_withdrawn").count() == 1


@pytest.mark.parametrize(
    "kind,data",
    [
        ("selection.no_such_event", {}),
        ("selection.unit_withdrawn", {}),  # a key missing
        ("selection.unit_withdrawn", {"unit": UNIT, "family": 7}),  # an undeclared key
        ("selection.unit_withdrawn", {"unit": {**UNIT, "id": "three"}}),  # a wrong shape
        ("selection.session_closed", {"session": {"id": 1}}),
    ],
)
def test_an_undeclared_type_or_a_wrong_payload_fails_the_recording(kind, data, settings):
    settings.EVENTS_CHECK_PAYLOADS = True
    with pytest.raises(PayloadInvalid), transaction.atomic():
        event_record(stream="round.1", type=kind, data=data, now=timezone.now())
    assert not Event.objects.exists()


def test_control_with_the_check_off_a_wrong_payload_is_recorded(settings):
    settings.EVENTS_CHECK_PAYLOADS = False  # production: no cost per event
    with transaction.atomic():
        event_record(stream="round.1", type="selection.unit_withdrawn", data={}, now=timezone.now())
    assert Event.objects.count() == 1


def test_every_declared_schema_refuses_a_foreign_payload():
    """(Every event the services record in this suite is checked as it is recorded: the suite
    runs with DEBUG=1, so an undeclared type anywhere fails the test that records it.)"""
    for kind in EVENT_TYPES:
        with pytest.raises(PayloadInvalid):
            payload_check(kind, {"unexpected": 1})
