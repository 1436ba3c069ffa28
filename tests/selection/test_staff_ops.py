"""Issue 12 item 1: the staff operations as services (selection.staff_ops and the staff mobile
change in accounts.services). Each: the allowed case with its ledger / audit / event / SMS /
history effects, and the refused cases with nothing changed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accounts.models import Applicant, AuditEntry, Family, Layout, User
from accounts.services import applicant_mobile_change_by_staff
from core.errors import DomainError
from events.models import Event
from selection import allocation, staff_ops
from selection.models import Allocation, CartItem, GiveUp, LedgerEntry, Seat, Session, Unit
from selection.replay import session_replay
from sms.models import SmsMessage
from tests.factories import FamilyFactory, log_ok
from tests.worlds import PRE_START, enter, make_world, preselect

pytestmark = pytest.mark.django_db

REASON = "开发商通知该房源漏水需维修"


@pytest.fixture
def staff():
    return User.objects.create(username="op1", is_staff=True)


def effects():
    """Everything a refusal must leave as it was."""
    return (
        list(Unit.objects.order_by("pk").values_list("pk", "status")),
        list(Session.objects.order_by("pk").values_list("pk", "starts_at", "ends_at")),
        list(Family.objects.order_by("pk").values_list("pk", "rank", "eligible_layouts")),
        list(Applicant.objects.order_by("pk").values_list("pk", "mobile")),
        CartItem.objects.count(),
        Allocation.objects.count(),
        LedgerEntry.objects.count(),
        AuditEntry.objects.count(),
        SmsMessage.objects.count(),
        Event.objects.count(),
    )


def refused(code, fn, **kwargs):
    before = effects()
    with pytest.raises(DomainError) as info:
        fn(**kwargs)
    assert info.value.code == code, info.value
    assert effects() == before
    return info.value


def texts(kind):
    from sms import crypto
    from sms.texts import render

    return [
        (m.phone, render(kind, crypto.unseal(m.payload)["params"]))
        for m in SmsMessage.objects.filter(kind=kind).order_by("pk")
    ]


# ---------------------------------------------------------------------- withdraw / restore


def test_withdraw_takes_the_unit_out_of_every_open_cart_and_tells_each_family(staff):
    world = make_world(families=3, units=4, sessions=1, per_session=3)
    rnd, (a, b, c) = world.round, world.families
    u = world.units
    preselect(a, rnd, [u[0], u[1], u[2]])
    preselect(b, rnd, [u[1]])
    preselect(c, rnd, [u[2]])
    now = PRE_START + timedelta(hours=1)
    unit = staff_ops.unit_withdraw(unit_id=u[1].pk, reason=REASON, actor=staff, now=now)
    assert unit.status == Unit.Status.WITHDRAWN
    # gone from a's and b's carts; a's positions closed up; c untouched
    assert list(
        CartItem.objects.filter(family=a).order_by("position").values_list("unit_id", "position")
    ) == [(u[0].pk, 1), (u[2].pk, 2)]
    assert not CartItem.objects.filter(family=b).exists()
    assert CartItem.objects.filter(family=c).count() == 1
    entry = LedgerEntry.objects.get(kind="unit_withdraw")
    assert entry.payload == {"unit": u[1].pk, "unit_label": u[1].label, "families": [a.pk, b.pk]}
    log_ok()
    assert (
        Event.objects.filter(stream=f"round.{rnd.pk}", type="selection.unit_withdrawn").count() == 1
    )
    assert set(
        Event.objects.filter(type="selection.cart_unit_withdrawn").values_list("stream", flat=True)
    ) == {f"family.{a.pk}", f"family.{b.pk}"}
    sent = texts("unit_withdrawn")
    assert {phone for phone, _ in sent} == {a.main_applicant.mobile, b.main_applicant.mobile}
    assert all("房源3栋 1202已被工作人员撤回" in text for _, text in sent)
    audit = AuditEntry.objects.get(action="selection.unit_withdraw")
    assert audit.actor == staff and audit.detail["reason"] == REASON
    record = Unit.history.filter(id=u[1].pk).first()  # newest first
    assert (record.status, record.history_user, record.history_change_reason) == (
        "withdrawn",
        staff,
        REASON,
    )


def test_a_taken_or_withdrawn_unit_is_not_withdrawn_and_a_reason_is_required(staff):
    world = make_world(families=2, units=3, sessions=1)
    s1 = world.sessions[0]
    a = world.families[0]
    enter(a, world.round, s1)
    CartItem.objects.create(
        family=a,
        round=world.round,
        kind="formal",
        unit=world.units[0],
        position=1,
        added_at=s1.starts_at,
    )
    allocation.selection_confirm(
        family=a,
        round_id=world.round.pk,
        unit_id=world.units[0].pk,
        idempotency_key="k-confirm",
        now=s1.starts_at + timedelta(seconds=3),
    )
    now = s1.starts_at + timedelta(seconds=10)
    refused(
        "unit_taken",
        staff_ops.unit_withdraw,
        unit_id=world.units[0].pk,
        reason=REASON,
        actor=staff,
        now=now,
    )
    refused(
        "reason_required",
        staff_ops.unit_withdraw,
        unit_id=world.units[1].pk,
        reason=" 漏水 ",
        actor=staff,
        now=now,
    )
    refused(
        "unit_not_found",
        staff_ops.unit_withdraw,
        unit_id=10**9,
        reason=REASON,
        actor=staff,
        now=now,
    )
    staff_ops.unit_withdraw(unit_id=world.units[1].pk, reason=REASON, actor=staff, now=now)
    refused(
        "unit_withdrawn",
        staff_ops.unit_withdraw,
        unit_id=world.units[1].pk,
        reason=REASON,
        actor=staff,
        now=now,
    )
    refused(
        "unit_not_withdrawn",
        staff_ops.unit_restore,
        unit_id=world.units[2].pk,
        reason=REASON,
        actor=staff,
        now=now,
    )


def test_restore_makes_the_unit_available_again_in_no_cart(staff):
    world = make_world(families=1, units=2, sessions=1)
    preselect(world.families[0], world.round, [world.units[0]])
    now = PRE_START + timedelta(hours=1)
    staff_ops.unit_withdraw(unit_id=world.units[0].pk, reason=REASON, actor=staff, now=now)
    unit = staff_ops.unit_restore(
        unit_id=world.units[0].pk, reason="维修完成，恢复可选", actor=staff, now=now
    )
    assert unit.status == Unit.Status.AVAILABLE
    assert not CartItem.objects.exists()
    assert list(LedgerEntry.objects.values_list("kind", flat=True)) == [
        "unit_withdraw",
        "unit_restore",
    ]
    assert AuditEntry.objects.filter(action="selection.unit_restore").count() == 1
    assert Event.objects.filter(type="selection.unit_restored").count() == 1


def test_carts_of_a_closed_session_stay_as_the_ledger_replays_them(staff):
    """A family whose session closed keeps its formal cart (the record the replay reads), and
    a withdrawn unit that slipped into a cart is skipped by the close and by the replay."""
    world = make_world(families=2, units=3, sessions=2, per_session=1)
    s1, s2 = world.sessions
    a, b = world.families
    u = world.units
    enter(a, world.round, s1)
    CartItem.objects.create(
        family=a, round=world.round, kind="formal", unit=u[0], position=1, added_at=s1.starts_at
    )
    enter(b, world.round, s2)  # (closes session 1 first: rank order at the boundary)
    assert Allocation.objects.get(family=a).unit_id == u[0].pk
    # b's cart: u1 then u2; u1 is withdrawn, then (an add in flight) lands in the cart again
    CartItem.objects.create(
        family=b, round=world.round, kind="formal", unit=u[1], position=1, added_at=s2.starts_at
    )
    CartItem.objects.create(
        family=b, round=world.round, kind="formal", unit=u[2], position=2, added_at=s2.starts_at
    )
    staff_ops.unit_withdraw(
        unit_id=u[1].pk, reason=REASON, actor=staff, now=s2.starts_at + timedelta(seconds=5)
    )
    assert list(CartItem.objects.filter(family=b).values_list("unit_id", flat=True)) == [u[2].pk]
    assert CartItem.objects.filter(family=a).count() == 1  # closed session: untouched
    CartItem.objects.filter(family=b).update(position=2)
    CartItem.objects.create(
        family=b, round=world.round, kind="formal", unit=u[1], position=1, added_at=s2.starts_at
    )
    report = allocation.session_close(session_id=s2.pk, now=s2.ends_at)
    assert report.assigned == [(b.pk, u[2].pk)]
    assert session_replay(session_id=s1.pk).ok
    assert session_replay(session_id=s2.pk).ok, session_replay(session_id=s2.pk).problems


# ------------------------------------------------------------------------- staff allocation


def closed_without_unit():
    """Family a entered session 1 with an empty cart: closed, no unit."""
    world = make_world(families=2, units=3, sessions=1)
    s1 = world.sessions[0]
    enter(world.families[0], world.round, s1)
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    assert Seat.objects.get(family=world.families[0]).outcome == Seat.Outcome.NO_UNIT
    return world


def test_staff_allocation_is_ledgered_told_and_audited(staff):
    world = closed_without_unit()
    a, unit = world.families[0], world.units[1]
    now = world.sessions[0].ends_at + timedelta(minutes=10)
    made = staff_ops.allocation_by_staff(
        family_id=a.pk, unit_id=unit.pk, reason="系统故障未能确认，经主管批准", actor=staff, now=now
    )
    assert (made.how, made.family, made.unit, made.session) == (
        Allocation.How.STAFF,
        a,
        unit,
        world.sessions[0],
    )
    unit.refresh_from_db()
    assert unit.status == Unit.Status.TAKEN
    entry = LedgerEntry.objects.get(kind="staff_assign")
    assert entry == made.ledger_entry
    assert entry.payload["reason"] == "系统故障未能确认，经主管批准"
    assert entry.payload["staff"] == "op1"
    log_ok()
    assert session_replay(session_id=world.sessions[0].pk).ok
    assert "工作人员已为您分配房源3栋 1202" in texts("selection_result")[0][1]
    assert Event.objects.filter(stream=f"family.{a.pk}", type="selection.result_assigned").exists()
    assert AuditEntry.objects.get(action="selection.allocation_by_staff").actor == staff


def test_staff_allocation_refusals_change_nothing(staff):
    world = closed_without_unit()
    a, b = world.families
    s1 = world.sessions[0]
    now = s1.ends_at + timedelta(minutes=10)
    kw = {"reason": "系统故障，经主管批准", "actor": staff, "now": now}
    stranger = FamilyFactory()
    refused(
        "no_seat",
        staff_ops.allocation_by_staff,
        family_id=stranger.pk,
        unit_id=world.units[0].pk,
        **kw,
    )
    studio = Unit.objects.create(
        round=world.round,
        building="9",
        number="101",
        floor=1,
        layout=Layout.STUDIO,
        orientation="S",
        area=30,
        monthly_rent=900,
    )
    refused(
        "layout_not_eligible",
        staff_ops.allocation_by_staff,
        family_id=a.pk,
        unit_id=studio.pk,
        **kw,
    )
    staff_ops.unit_withdraw(unit_id=world.units[2].pk, reason=REASON, actor=staff, now=now)
    refused(
        "unit_withdrawn",
        staff_ops.allocation_by_staff,
        family_id=a.pk,
        unit_id=world.units[2].pk,
        **kw,
    )
    refused(
        "reason_required",
        staff_ops.allocation_by_staff,
        family_id=a.pk,
        unit_id=world.units[0].pk,
        reason="",
        actor=staff,
        now=now,
    )
    staff_ops.allocation_by_staff(family_id=a.pk, unit_id=world.units[0].pk, **kw)
    refused(
        "already_allocated",
        staff_ops.allocation_by_staff,
        family_id=a.pk,
        unit_id=world.units[1].pk,
        **kw,
    )
    refused(
        "unit_taken", staff_ops.allocation_by_staff, family_id=b.pk, unit_id=world.units[0].pk, **kw
    )
    GiveUp.objects.create(family=b, round=world.round, session=s1, at=now)
    refused(
        "gave_up", staff_ops.allocation_by_staff, family_id=b.pk, unit_id=world.units[1].pk, **kw
    )


def test_staff_cannot_allocate_while_the_familys_session_is_not_closed(staff):
    world = make_world(families=2, units=2, sessions=1)
    s1 = world.sessions[0]
    refused(
        "session_not_closed",
        staff_ops.allocation_by_staff,
        family_id=world.families[0].pk,
        unit_id=world.units[0].pk,
        reason="系统故障，经主管批准",
        actor=staff,
        now=s1.starts_at + timedelta(seconds=30),
    )


# ------------------------------------------------------------------------------ reschedule


def test_reschedule_moves_a_scheduled_session_and_texts_its_families(staff):
    world = make_world(families=4, units=2, sessions=2)
    s1, s2 = world.sessions
    now = PRE_START
    new_start = s2.starts_at + timedelta(minutes=30)
    moved = staff_ops.session_reschedule(
        session_id=s2.pk, starts_at=new_start, reason="系统维护，顺延30分钟", actor=staff, now=now
    )
    assert (moved.starts_at, moved.ends_at) == (new_start, new_start + (s2.ends_at - s2.starts_at))
    sent = texts("session_rescheduled")
    assert len(sent) == 2  # the two families of session 2
    assert "第2场正选已改期：2026年3月3日 10:05至10:07（原定2026年3月3日 09:35）" in sent[0][1]
    assert Event.objects.filter(
        stream=f"session.{s2.pk}", type="selection.session_rescheduled"
    ).exists()
    audit = AuditEntry.objects.get(action="selection.session_reschedule")
    assert audit.detail["reason"] == "系统维护，顺延30分钟"
    assert Session.history.filter(id=s2.pk).first().history_user == staff
    # the clock does not open the session at its old time any more
    assert allocation.sessions_open_due(now=s2.starts_at + timedelta(seconds=1)) == []


def test_reschedule_refusals(staff):
    world = make_world(families=6, units=2, sessions=3)
    s1, s2, s3 = world.sessions
    kw = {"reason": "系统维护，顺延", "actor": staff}
    # started: open, or its start has passed although the clock has not opened it yet
    refused(
        "session_started",
        staff_ops.session_reschedule,
        session_id=s1.pk,
        starts_at=s1.starts_at + timedelta(hours=1),
        now=s1.starts_at,
        **kw,
    )
    # overlap with session 3 (5 minutes later, same length)
    refused(
        "session_overlap",
        staff_ops.session_reschedule,
        session_id=s2.pk,
        starts_at=s3.starts_at + timedelta(seconds=30),
        now=PRE_START,
        **kw,
    )
    # rank order: session 2 may not move after session 3 nor before session 1
    refused(
        "rank_order",
        staff_ops.session_reschedule,
        session_id=s2.pk,
        starts_at=s3.ends_at + timedelta(minutes=1),
        now=PRE_START,
        **kw,
    )
    refused(
        "rank_order",
        staff_ops.session_reschedule,
        session_id=s2.pk,
        starts_at=s1.starts_at - timedelta(minutes=5),
        now=PRE_START,
        **kw,
    )
    refused(
        "invalid_start",
        staff_ops.session_reschedule,
        session_id=s2.pk,
        starts_at=PRE_START - timedelta(minutes=1),
        now=PRE_START - timedelta(hours=1),
        **kw,
    )
    refused(
        "invalid_start",
        staff_ops.session_reschedule,
        session_id=s3.pk,
        starts_at=PRE_START - timedelta(minutes=1),
        now=PRE_START,
        **kw,
    )
    refused(
        "session_not_found",
        staff_ops.session_reschedule,
        session_id=10**9,
        starts_at=s3.starts_at,
        now=PRE_START,
        **kw,
    )
    allocation.sessions_open_due(now=s1.starts_at)
    refused(
        "session_started",
        staff_ops.session_reschedule,
        session_id=s1.pk,
        starts_at=s1.starts_at + timedelta(hours=2),
        now=s1.starts_at - timedelta(seconds=1),
        **kw,
    )


def test_a_supplementary_session_stays_after_the_application_deadline(staff):
    world = make_world(families=2, units=2, sessions=1)
    s1 = world.sessions[0]
    deadline = s1.ends_at + timedelta(seconds=world.round.supplementary_grace_seconds)
    supp = Session.objects.create(
        round=world.round,
        order=2,
        kind=Session.Kind.SUPPLEMENTARY,
        starts_at=deadline + timedelta(hours=1),
        ends_at=deadline + timedelta(hours=1, seconds=120),
    )
    kw = {"reason": "系统维护，调整补选时间", "actor": staff, "now": PRE_START}
    for offset, ok in ((-1, False), (0, True), (1, True)):
        start = deadline + timedelta(seconds=offset)
        if ok:
            staff_ops.session_reschedule(session_id=supp.pk, starts_at=start, **kw)
        else:
            refused(
                "applications_open",
                staff_ops.session_reschedule,
                session_id=supp.pk,
                starts_at=start,
                **kw,
            )
    # a formal session moved later would push the deadline past the supplementary start
    refused(
        "supplementary_too_early",
        staff_ops.session_reschedule,
        session_id=s1.pk,
        starts_at=s1.starts_at + timedelta(seconds=30),
        **kw,
    )


# ------------------------------------------------------------------------ rank and layouts


def test_rank_and_layouts_change_until_the_family_is_seated(staff):
    world = make_world(families=2, units=1, sessions=1)
    free = FamilyFactory(rank=500)
    now = PRE_START
    family = staff_ops.family_rank_change(
        family_id=free.pk, rank=400, reason="复核排位号更正", actor=staff, now=now
    )
    assert family.rank == 400
    family = staff_ops.family_layouts_change(
        family_id=free.pk, layouts=[Layout.STUDIO], reason="家庭人数变更复核", actor=staff, now=now
    )
    assert family.eligible_layouts == [Layout.STUDIO]
    record = Family.history.filter(id=free.pk).first()
    assert (record.history_user, record.history_change_reason) == (staff, "家庭人数变更复核")
    assert (
        AuditEntry.objects.filter(action="accounts.family_rank_change").get().detail["from"] == 500
    )
    seated = world.families[0]
    kw = {"reason": "复核排位号更正", "actor": staff, "now": now}
    refused("family_seated", staff_ops.family_rank_change, family_id=seated.pk, rank=900, **kw)
    refused(
        "family_seated",
        staff_ops.family_layouts_change,
        family_id=seated.pk,
        layouts=[Layout.STUDIO],
        **kw,
    )
    refused("rank_taken", staff_ops.family_rank_change, family_id=free.pk, rank=seated.rank, **kw)
    refused("rank_unchanged", staff_ops.family_rank_change, family_id=free.pk, rank=400, **kw)
    refused("invalid_rank", staff_ops.family_rank_change, family_id=free.pk, rank=0, **kw)
    refused("invalid_layouts", staff_ops.family_layouts_change, family_id=free.pk, layouts=[], **kw)
    refused(
        "invalid_layouts",
        staff_ops.family_layouts_change,
        family_id=free.pk,
        layouts=["penthouse"],
        **kw,
    )


# ------------------------------------------------------------------------------- mobile


def test_staff_mobile_change_texts_both_numbers_and_is_audited(staff):
    family = FamilyFactory()
    applicant = family.main_applicant
    old = applicant.mobile
    changed = applicant_mobile_change_by_staff(
        applicant_id=applicant.pk,
        mobile="139 1234 5678",
        reason="原号码已停用，本人到场申请",
        actor=staff,
        now=PRE_START,
    )
    assert changed.mobile == "13912345678"
    sent = texts("mobile_changed_by_staff")
    assert [phone for phone, _ in sent] == [old, "13912345678"]
    assert "从" + old[:3] + "****" + old[-4:] + "更改为139****5678" in sent[0][1]
    audit = AuditEntry.objects.get(action="applicant.mobile_changed_by_staff")
    assert audit.detail["new_mobile_masked"] == "139****5678" and old not in str(audit.detail)
    record = Applicant.history.filter(id=applicant.pk).first()
    assert (record.mobile, record.history_user) == ("13912345678", staff)
    kw = {"reason": "原号码已停用，本人到场申请", "actor": staff, "now": PRE_START}
    refused(
        "invalid_mobile",
        applicant_mobile_change_by_staff,
        applicant_id=applicant.pk,
        mobile="1234",
        **kw,
    )
    refused(
        "mobile_unchanged",
        applicant_mobile_change_by_staff,
        applicant_id=applicant.pk,
        mobile="13912345678",
        **kw,
    )
    refused(
        "reason_required",
        applicant_mobile_change_by_staff,
        applicant_id=applicant.pk,
        mobile="13912345679",
        reason="",
        actor=staff,
        now=PRE_START,
    )
