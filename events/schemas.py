"""The payload of every event type, one schema each (DRF serializers: the API's own schema
language, so events and responses are described the same way).

`events_record` checks each payload against its type's schema when
settings.EVENTS_CHECK_PAYLOADS is on (the test suite and DEBUG): an unknown type, a missing or
extra key, or a value of the wrong shape fails the recording transaction, so a change to what a
service sends cannot drift from what the pages read. docs/REALTIME.md's event table is generated
from these (`manage.py events_doc`; a test keeps the file in step).
"""

from __future__ import annotations

from dataclasses import dataclass

from rest_framework import serializers


class Strict(serializers.Serializer):
    """A payload schema: every declared key present, no other key."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            extra = sorted(set(data) - set(self.fields))
            if extra:
                raise serializers.ValidationError({key: ["undeclared key"] for key in extra})
        return super().to_internal_value(data)


class UnitPayload(Strict):
    id = serializers.IntegerField()
    building = serializers.CharField()
    number = serializers.CharField()
    label = serializers.CharField(help_text="楼栋-房号")  # type: ignore[assignment]  # a payload key (DRF pops declared fields)
    layout = serializers.CharField()
    layout_label = serializers.CharField()
    orientation = serializers.CharField()


class SessionPayload(Strict):
    id = serializers.IntegerField()
    order = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=["formal", "supplementary"])
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


HOW = ["confirmed", "auto", "staff"]


class UnitTaken(Strict):
    unit = UnitPayload()
    how = serializers.ChoiceField(choices=HOW)
    how_label = serializers.CharField()
    entry = serializers.IntegerField()
    index = serializers.IntegerField(help_text="the allocation's index in the round's log")


class RoundOnly(Strict):
    round = serializers.IntegerField()


class SessionPhase(Strict):
    session = SessionPayload()


class ResultAssigned(Strict):
    unit = UnitPayload()
    how = serializers.ChoiceField(choices=HOW)
    at = serializers.DateTimeField()


class GaveUp(Strict):
    round = serializers.IntegerField()
    at = serializers.DateTimeField()


class UnitOnly(Strict):
    unit = UnitPayload()


class CartUnitWithdrawn(Strict):
    unit = UnitPayload()
    reason = serializers.CharField(help_text="工作人员填写的撤回原因")


class Label(Strict):
    label = serializers.CharField()  # type: ignore[assignment]  # a payload key (DRF pops declared fields)


class QrStep(Strict):
    step = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # a payload key (DRF pops declared fields)


class QrTakenOver(Strict):
    label = serializers.CharField()  # type: ignore[assignment]  # a payload key (DRF pops declared fields)
    ended_session = serializers.IntegerField(help_text="the phone session that stops")


@dataclass(frozen=True)
class EventType:
    schema: type[Strict]
    streams: str  # which streams carry it (docs)
    meaning: str


EVENT_TYPES: dict[str, EventType] = {
    "selection.unit_taken": EventType(UnitTaken, "round", "a unit was allocated (no family)"),
    "selection.preselect_opened": EventType(RoundOnly, "round", "pre-selection opened"),
    "selection.session_opened": EventType(SessionPhase, "round, session", "a window opened"),
    "selection.session_last_call": EventType(SessionPhase, "session", "30 s left"),
    "selection.session_closed": EventType(
        SessionPhase, "round, session", "a window closed and was auto-assigned"
    ),
    "selection.session_rescheduled": EventType(
        SessionPhase, "round, session", "staff moved a session that had not opened"
    ),
    "selection.unit_withdrawn": EventType(UnitOnly, "round", "staff withdrew a unit (撤回)"),
    "selection.unit_restored": EventType(UnitOnly, "round", "staff restored a withdrawn unit"),
    "selection.cart_unit_withdrawn": EventType(
        CartUnitWithdrawn, "family", "a withdrawn unit left this family's cart"
    ),
    "selection.result_assigned": EventType(ResultAssigned, "family", "this family's unit"),
    "selection.gave_up": EventType(GaveUp, "family", "this family gave up (主动放弃)"),
    "qr.scanned": EventType(Label, "qr", "a phone opened the code"),
    "qr.step": EventType(QrStep, "qr", "the phone flow reached a step"),
    "qr.done": EventType(Label, "qr", "a lease's deposit paid: the application is submitted"),
    "qr.taken_over": EventType(
        QrTakenOver, "qr", "a second phone opened the code; the first one stops"
    ),
}


class PayloadInvalid(ValueError):
    pass


def payload_check(kind: str, data: dict) -> None:
    """Raise PayloadInvalid unless `data` is exactly what `kind`'s schema declares."""
    event_type = EVENT_TYPES.get(kind)
    if event_type is None:
        raise PayloadInvalid(f"unknown event type {kind!r}: declare it in events/schemas.py")
    checked = event_type.schema(data=data)
    if not checked.is_valid():
        raise PayloadInvalid(f"{kind} payload {data!r}: {checked.errors}")


def _shape(field: serializers.Field) -> str:
    if isinstance(field, serializers.Serializer):
        inner = ", ".join(f"{name}: {_shape(sub)}" for name, sub in field.fields.items())
        return "{" + inner + "}"
    if isinstance(field, serializers.ChoiceField):
        return " \\| ".join(f"`{c}`" for c in field.choices)
    names = {
        serializers.IntegerField: "int",
        serializers.DateTimeField: "ISO time",
        serializers.CharField: "text",
    }
    return next((n for klass, n in names.items() if isinstance(field, klass)), "value")


def events_table() -> str:
    """The markdown table of every event type (docs/REALTIME.md, between its markers)."""
    lines = [
        "| `type` | streams | `data` | meaning |",
        "| --- | --- | --- | --- |",
    ]
    for kind, event_type in EVENT_TYPES.items():
        lines.append(
            f"| `{kind}` | {event_type.streams} | {_shape(event_type.schema())} "
            f"| {event_type.meaning} |"
        )
    return "\n".join(lines) + "\n"
