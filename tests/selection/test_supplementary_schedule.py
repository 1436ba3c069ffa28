"""Scheduling a supplementary session (补选场次): refused while families can still apply
(the day's last formal session end + the round's grace, guide 000 item 9), refused for
families that did not apply or gave up, nothing changed on refusal; an SMS per family."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from accounts.models import AuditEntry
from core.errors import DomainError
from selection import allocation, supplementary
from selection.models import GiveUp, Seat, Session, SupplementaryApplication
from sms import texts
from sms.models import SmsMessage
from tests.worlds import CTX

pytestmark = pytest.mark.django_db
S = timedelta(seconds=1)


@pytest.fixture
def applied(world, django_user_model):
    """Both sessions closed; families 0 (session 1) and 2 (session 2) applied."""
    s1, s2 = world.sessions
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    allocation.session_close(session_id=s2.pk, now=s2.ends_at)
    for family in (world.families[0], world.families[2]):
        supplementary.supplementary_apply(
            family=family, round_id=world.round.pk, ctx=CTX, now=s2.ends_at
        )
    world.staff = django_user_model.objects.create(username="op", is_staff=True)
    world.deadline = s2.ends_at + timedelta(minutes=3)
    return world


def counts():
    return (
        Session.objects.count(),
        Seat.objects.count(),
        SupplementaryApplication.objects.filter(session__isnull=False).count(),
        SmsMessage.objects.count(),
        AuditEntry.objects.filter(action="selection.supplementary_schedule").count(),
    )


def schedule(w, now, **kwargs):
    if "starts_at" not in kwargs:
        kwargs["starts_at"] = w.deadline + timedelta(minutes=30)
    with time_machine.travel(now, tick=False):
        return supplementary.supplementary_session_schedule(
            round_id=w.round.pk, actor=w.staff, now=now, **kwargs
        )


def refused(code, w, now, **kwargs):
    before = counts()
    with pytest.raises(DomainError) as caught:
        schedule(w, now, **kwargs)
    assert caught.value.code == code
    assert counts() == before
    return caught.value


def test_deadline_is_the_days_last_formal_end_plus_grace(applied):
    assert (
        supplementary.supplementary_applications_deadline(round_id=applied.round.pk)
        == applied.deadline
    )


def test_refused_one_second_before_the_application_window_closes(applied):
    error = refused("applications_open", applied, applied.deadline - S)
    assert "补选申请尚未截止" in error.message and "截止后方可安排补选场次" in error.message


@pytest.mark.parametrize("offset", [0, 1])
def test_allowed_at_and_after_the_application_window_closes(applied, offset):
    session = schedule(applied, applied.deadline + offset * S)
    assert session.kind == Session.Kind.SUPPLEMENTARY
    assert set(session.seats.values_list("family_id", flat=True)) == {
        applied.families[0].pk,
        applied.families[2].pk,
    }


def test_refused_for_a_family_that_did_not_apply(applied):
    error = refused(
        "not_applied",
        applied,
        applied.deadline,
        family_ids=[applied.families[0].pk, applied.families[1].pk],
    )
    assert str(applied.families[1].rank) in error.message
    assert "未申请补选" in error.message


def test_only_the_named_families_when_given(applied):
    session = schedule(applied, applied.deadline, family_ids=[applied.families[2].pk])
    assert list(session.seats.values_list("family_id", flat=True)) == [applied.families[2].pk]
    assert SupplementaryApplication.objects.get(family=applied.families[0]).session is None


def test_refused_for_a_family_that_gave_up(applied):
    GiveUp.objects.create(
        round=applied.round,
        family=applied.families[2],
        session=applied.sessions[1],
        at=applied.sessions[1].ends_at - S,
    )
    error = refused("gave_up", applied, applied.deadline)
    assert "主动放弃" in error.message and str(applied.families[2].rank) in error.message


def test_refused_without_applications(world, django_user_model):
    s1, s2 = world.sessions
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    allocation.session_close(session_id=s2.pk, now=s2.ends_at)
    world.staff = django_user_model.objects.create(username="op2", is_staff=True)
    world.deadline = s2.ends_at + timedelta(minutes=3)
    refused("no_applications", world, world.deadline)


def test_refused_with_a_start_not_in_the_future(applied):
    refused("invalid_start", applied, applied.deadline, starts_at=applied.deadline)


def test_each_family_gets_an_sms_with_time_and_place(applied):
    session = schedule(applied, applied.deadline)
    messages = list(SmsMessage.objects.filter(kind="supplementary_scheduled"))
    phones = {m.phone for m in messages}
    assert phones == {
        applied.families[0].main_applicant.mobile,
        applied.families[2].main_applicant.mobile,
    }
    from selection.notices import supplementary_scheduled_params

    text = texts.render("supplementary_scheduled", supplementary_scheduled_params(session=session))
    assert "补选" in text and "网上选房系统" in text
    from django.utils import timezone

    assert timezone.localtime(session.starts_at).strftime("%H:%M") in text
    assert timezone.localtime(session.ends_at).strftime("%H:%M") in text


def test_export_labels_the_supplementary_session_as_such(applied):
    from django.utils import timezone

    from selection import exports

    session = schedule(applied, applied.deadline)
    rows = {row[0]: row for row in exports.results_table(round_id=applied.round.pk)}
    start = timezone.localtime(session.starts_at)
    label = f"补选场次（{start.month}月{start.day}日 {start:%H:%M}）"
    assert rows[applied.families[0].rank][3] == label
    assert rows[applied.families[1].rank][3] == "第1场（正选场次）"


def test_formal_scheduling_tells_each_family_its_session_time(django_user_model):
    from datetime import datetime

    from django.utils import timezone

    from selection.models import Round
    from selection.notices import session_scheduled_params
    from selection.scheduling import sessions_schedule_from_ranks
    from tests.factories import FamilyFactory
    from tests.worlds import TZ

    rnd = Round.objects.create(
        name="短信测试批次", preselect_starts_at=datetime(2026, 3, 2, 9, 0, tzinfo=TZ)
    )
    families = [FamilyFactory() for _ in range(3)]
    staff = django_user_model.objects.create(username="op3", is_staff=True)
    first = datetime(2026, 3, 3, 9, 30, tzinfo=TZ)
    sessions = sessions_schedule_from_ranks(
        round_id=rnd.pk,
        first_start=first,
        block_size=2,
        gap_minutes=5,
        actor=staff,
        now=datetime(2026, 3, 1, 12, 0, tzinfo=TZ),
    )
    sent = {m.phone for m in SmsMessage.objects.filter(kind="session_scheduled")}
    assert sent == {f.main_applicant.mobile for f in families}
    assert SmsMessage.objects.filter(kind="session_scheduled").count() == 3
    text = texts.render("session_scheduled", session_scheduled_params(session=sessions[1]))
    start = timezone.localtime(sessions[1].starts_at)
    assert "第2场" in text and f"{start.month}月{start.day}日 {start:%H:%M}" in text
    # a refusal (nobody left to seat) queues nothing more
    with pytest.raises(DomainError):
        sessions_schedule_from_ranks(
            round_id=rnd.pk,
            first_start=first + timedelta(hours=1),
            block_size=2,
            gap_minutes=5,
            actor=staff,
            now=datetime(2026, 3, 1, 12, 0, tzinfo=TZ),
        )
    assert SmsMessage.objects.filter(kind="session_scheduled").count() == 3


@pytest.fixture
def two_days(world, django_user_model):
    """Session 2 on the next day: family 0 (day 1) and family 2 (day 2) missed theirs and
    applied. Each day's applications close 3 minutes after that day's last formal session."""
    s1, s2 = world.sessions
    Session.objects.filter(pk=s2.pk).update(
        starts_at=s2.starts_at + timedelta(days=1), ends_at=s2.ends_at + timedelta(days=1)
    )
    s2.refresh_from_db()
    grace = timedelta(seconds=world.round.supplementary_grace_seconds)
    world.day1, world.day2 = s1.ends_at + grace, s2.ends_at + grace
    world.staff = django_user_model.objects.create(username="op3", is_staff=True)
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    supplementary.supplementary_apply(
        family=world.families[0], round_id=world.round.pk, ctx=CTX, now=s1.ends_at
    )
    return world


def test_a_days_families_are_scheduled_once_that_day_has_closed(two_days):
    w = two_days
    start = w.day1 + timedelta(hours=1)
    # control: one second before day 1's applications close
    error = refused("applications_open", w, w.day1 - S, starts_at=start)
    assert "截止时间 2026-03-03 09:35:00" in error.message  # day 1's, not the round's last
    session = schedule(w, w.day1, starts_at=start)
    assert list(session.seats.values_list("family_id", flat=True)) == [w.families[0].pk]


def test_a_day_still_open_is_left_for_later_or_refused_by_name(two_days):
    w = two_days
    s2 = w.sessions[1]
    allocation.session_close(session_id=s2.pk, now=s2.ends_at)
    supplementary.supplementary_apply(
        family=w.families[2], round_id=w.round.pk, ctx=CTX, now=s2.ends_at
    )
    now = w.day2 - S  # day 1 closed, day 2 still open
    start = w.day2 + timedelta(hours=1)
    refused("applications_open", w, now, starts_at=start, family_ids=[w.families[2].pk])
    session = schedule(w, now, starts_at=start)
    assert list(session.seats.values_list("family_id", flat=True)) == [w.families[0].pk]
    assert SupplementaryApplication.objects.get(family=w.families[2]).session is None
    refused("applications_open", w, now, starts_at=start)  # only day 2's left, still open
    later = schedule(w, w.day2, starts_at=start + timedelta(minutes=10))
    assert list(later.seats.values_list("family_id", flat=True)) == [w.families[2].pk]


def test_a_days_supplementary_session_moves_only_after_its_own_days_deadline(two_days):
    from selection import staff_ops

    w = two_days
    session = schedule(w, w.day1, starts_at=w.day1 + timedelta(hours=1))
    kw = {"reason": "系统维护，调整补选时间", "actor": w.staff, "now": w.day1}
    # Day 2's applications are still open then; the session's families are all day 1's.
    moved = staff_ops.session_reschedule(
        session_id=session.pk, starts_at=w.day1 + timedelta(minutes=1), **kw
    )
    assert w.day1 < moved.starts_at < w.day2


def test_earliest_start_of_a_session_whose_family_had_no_formal_session(world):
    """A 补选 session holding only a family without a formal seat (seated by hand) takes the
    round's last deadline; it had raised ValueError (max of nothing), a 500 on reschedule."""
    from tests.factories import FamilyFactory

    s1, s2 = world.sessions
    extra = Session.objects.create(
        round=world.round,
        order=9,
        kind=Session.Kind.SUPPLEMENTARY,
        starts_at=s2.ends_at + timedelta(hours=1),
        ends_at=s2.ends_at + timedelta(hours=1, minutes=2),
    )
    Seat.objects.create(session=extra, family=FamilyFactory(rank=900))
    assert supplementary.supplementary_earliest_start(
        extra
    ) == supplementary.supplementary_applications_deadline(round_id=world.round.pk)
