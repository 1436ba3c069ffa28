"""确认正选's two implementations — one PostgreSQL function call (selection_claim, the default
on PostgreSQL) and the ORM transaction (SQLite, the reference) — give the same answers and
write the same rows, case by case, including the rule re-checked under the locks when the
world changed between the unlocked pre-check and the claim."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings

from core.errors import Conflict, NotAllowed
from events.models import Event
from selection import allocation
from selection.carts import UnitNotFound
from selection.ledger import entry_leaf_hash, stored_entry
from selection.models import Allocation, CartItem, LedgerEntry, Seat, Session, Unit
from sms import crypto
from sms.models import SmsMessage
from tests.factories import log_entry
from tests.worlds import make_world

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]
PATHS = pytest.mark.parametrize("claim_sql", [True, False], ids=["sql", "orm"])


@pytest.fixture
def world():
    world = make_world(families=2, units=2, sessions=1, per_session=2)
    s1 = world.sessions[0]
    CartItem.objects.bulk_create(
        CartItem(
            family=f,
            round=world.round,
            kind="formal",
            unit=u,
            position=i + 1,
            added_at=s1.starts_at,
        )
        for f in world.families
        for i, u in enumerate(world.units)
    )
    Seat.objects.filter(session=s1).update(entered_at=s1.starts_at)
    return world


def confirm(world, i=0, unit=0, key="claim-path-0001"):
    return allocation.selection_confirm(
        family=world.families[i],
        round_id=world.round.pk,
        unit_id=world.units[unit].pk,
        idempotency_key=key,
        now=world.sessions[0].starts_at + timedelta(seconds=7),
    )


def written(world) -> dict:
    """What confirms wrote in this world."""
    rid = world.round.pk
    entries = [
        (e.kind, e.payload, e.leaf_hash == entry_leaf_hash(stored_entry(e)), e.index)
        for e in LedgerEntry.objects.filter(round_id=rid).order_by("id")
    ]
    phones = [f.main_applicant.mobile for f in world.families]
    streams = [f"family.{f.pk}" for f in world.families]
    return {
        "allocations": list(
            Allocation.objects.filter(round_id=rid).values_list(
                "family_id", "unit_id", "how", "at", "idempotency_key"
            )
        ),
        "entries": entries,
        "units": list(
            Unit.objects.filter(round_id=rid).order_by("id").values_list("status", flat=True)
        ),
        "seats": list(
            Seat.objects.filter(session__round_id=rid)
            .order_by("family_id")
            .values_list("outcome", flat=True)
        ),
        "sms": [
            (m.phone, m.kind, m.status, crypto.unseal(m.payload))
            for m in SmsMessage.objects.filter(kind="selection_result", phone__in=phones).order_by(
                "id"
            )
        ],
        "events": list(
            Event.objects.filter(stream__in=streams)
            .order_by("id")
            .values_list("stream", "seq", "type", "data")
        ),
    }


@PATHS
def test_a_confirm_writes_the_entry_allocation_unit_seat_sms_and_event(world, claim_sql):
    with override_settings(SELECTION_CLAIM_SQL=claim_sql):
        made = confirm(world)
    assert made.created and made.allocation.pk and made.allocation.ledger_entry.pk
    got = written(world)
    a = world.families[0]
    assert got["allocations"] == [
        (a.pk, world.units[0].pk, "confirmed", made.allocation.at, "claim-path-0001")
    ]
    assert got["entries"] == [
        (
            "confirm",
            {
                "family": a.pk,
                "rank": a.rank,
                "unit": world.units[0].pk,
                "unit_label": world.units[0].label,
                "how": "confirmed",
                "idempotency_key": "claim-path-0001",
            },
            True,
            None,
        )
    ]
    assert got["units"] == ["taken", "available"]
    assert got["seats"][0] == "confirmed"
    ((phone, kind, status, payload),) = got["sms"]
    assert (phone, kind, status) == (a.main_applicant.mobile, "selection_result", "queued")
    assert payload["params"][-1] == made.allocation.ledger_entry.code
    assert [(s, t) for s, _, t, _ in got["events"]] == [
        (f"family.{a.pk}", "selection.result_assigned")
    ]
    assert made.allocation.ledger_entry.code == LedgerEntry.objects.get().code


def test_both_implementations_write_the_same_rows():
    def fresh():
        world = make_world(families=2, units=2, sessions=1, per_session=2)
        s1 = world.sessions[0]
        CartItem.objects.bulk_create(
            CartItem(
                family=f,
                round=world.round,
                kind="formal",
                unit=world.units[0],
                position=1,
                added_at=s1.starts_at,
            )
            for f in world.families
        )
        Seat.objects.filter(session=s1).update(entered_at=s1.starts_at)
        return world

    def shape(world):
        """What a confirm wrote, with this world's ids, rank, round name and code taken out."""
        made = confirm(world)
        rows = written(world)
        rows["allocations"] = [rest for _, _, *rest in rows["allocations"]]
        rows["entries"] = [
            (k, {**p, "family": 0, "unit": 0, "rank": 0}, ok, i) for k, p, ok, i in rows["entries"]
        ]
        rows["sms"] = [(k, s, p["params"][1:-1]) for _, k, s, p in rows["sms"]]
        rows["events"] = [(seq, t, d["how"], d["unit"]["label"]) for _, seq, t, d in rows["events"]]
        return made.created, rows

    shapes = {}
    for claim_sql in (True, False):
        with override_settings(SELECTION_CLAIM_SQL=claim_sql):
            shapes[claim_sql] = shape(fresh())
    assert shapes[True] == shapes[False]
    assert shapes[True][0] is True and shapes[True][1]["events"]


@PATHS
def test_a_repeat_returns_the_allocation_and_another_unit_is_refused(world, claim_sql):
    with override_settings(SELECTION_CLAIM_SQL=claim_sql):
        first = confirm(world)
        again = confirm(world)
        assert not again.created and again.allocation.pk == first.allocation.pk
        with pytest.raises(Conflict) as refused:
            confirm(world, unit=1, key="claim-path-0002")
    assert refused.value.code == "already_allocated"
    assert Allocation.objects.count() == LedgerEntry.objects.count() == 1


@PATHS
def test_the_unit_taken_after_the_pre_check_is_refused_under_the_lock(
    world, claim_sql, monkeypatch
):
    other, unit = world.families[1], world.units[0]
    name = "_claim_sql" if claim_sql else "_claim_orm"
    real = getattr(allocation, name)

    def someone_else_first(**kwargs):  # committed between the pre-check and the claim
        Allocation.objects.create(
            round=world.round,
            unit=unit,
            family=other,
            session=world.sessions[0],
            how="confirmed",
            at=world.sessions[0].starts_at,
            ledger_entry=log_entry(round=world.round, unit=unit, family=other, kind="confirm"),
        )
        Unit.objects.filter(pk=unit.pk).update(status=Unit.Status.TAKEN)
        return real(**kwargs)

    monkeypatch.setattr(allocation, name, someone_else_first)
    with override_settings(SELECTION_CLAIM_SQL=claim_sql), pytest.raises(Conflict) as refused:
        confirm(world)
    assert refused.value.code == "unit_taken"
    assert not Allocation.objects.filter(family=world.families[0]).exists()
    assert not SmsMessage.objects.exists() and not Event.objects.exists()


@PATHS
def test_a_session_closed_after_the_pre_check_is_refused_under_the_lock(
    world, claim_sql, monkeypatch
):
    name = "_claim_sql" if claim_sql else "_claim_orm"
    real = getattr(allocation, name)

    def closed_meanwhile(**kwargs):
        s1 = world.sessions[0]
        Session.objects.filter(pk=s1.pk).update(status=Session.Status.CLOSED, closed_at=s1.ends_at)
        return real(**kwargs)

    monkeypatch.setattr(allocation, name, closed_meanwhile)
    with override_settings(SELECTION_CLAIM_SQL=claim_sql), pytest.raises(NotAllowed) as refused:
        confirm(world)
    assert refused.value.code == "window_closed"
    assert not Allocation.objects.exists() and not LedgerEntry.objects.exists()
    assert Unit.objects.get(pk=world.units[0].pk).status == Unit.Status.AVAILABLE


@PATHS
def test_a_unit_that_is_not_in_the_round_is_refused_under_the_lock(world, claim_sql):
    a, seat = world.families[0], Seat.objects.get(family=world.families[0])
    ghost = Unit(
        pk=987_654_321,
        round_id=world.round.pk,
        building="9",
        number="9999",
        layout=world.units[0].layout,
        orientation="S",
    )
    claim = allocation._claim_sql if claim_sql else allocation._claim_orm
    with pytest.raises(UnitNotFound):
        claim(
            family=a,
            round_name=world.round.name,
            seat=seat,
            unit=ghost,
            idempotency_key="claim-path-0003",
            now=world.sessions[0].starts_at,
        )
    assert not Allocation.objects.exists() and not LedgerEntry.objects.exists()
