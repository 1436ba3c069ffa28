"""What the family is told on its result page: why it got (or did not get) a unit, in
Chinese, from the ledger; 预选结果作废 when it never entered and had pre-selected, only
that it did not enter when it had pre-selected nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from selection import allocation, carts
from selection.selectors import my_result
from tests.worlds import enter, make_world, preselect

pytestmark = pytest.mark.django_db
S = timedelta(seconds=1)


@pytest.fixture
def two():
    return make_world(families=2, units=4, sessions=1)


def _ready(w, family, units):
    preselect(family, w.round, units)
    enter(family, w.round, w.sessions[0])
    carts.cart_sync(family=family, round_id=w.round.pk, now=w.sessions[0].starts_at)


def _confirm(w, family, unit, key, at):
    allocation.selection_confirm(
        family=family, round_id=w.round.pk, unit_id=unit.pk, idempotency_key=key, now=at
    )


def test_auto_assign_explanation_names_the_taken_unit_and_its_time(two):
    a, b = two.families
    s1 = two.sessions[0]
    u1, u2 = two.units[:2]
    _ready(two, a, [u1])
    _ready(two, b, [u1, u2])
    taken_at = s1.starts_at + 32 * S
    _confirm(two, a, u1, "key-a-0000001", taken_at)
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    result = my_result(family=b, round_id=two.round.pk, now=s1.ends_at + S)
    hms = timezone.localtime(taken_at).strftime("%H:%M:%S")
    assert result.explanations[s1.pk] == (
        f"您购物车第1套 {u1.name} 已于{hms}被其他家庭选定；第2套 {u2.name} 已为您自动选定。"
    )
    # the family that confirmed is given no auto-assign explanation
    assert s1.pk not in my_result(family=a, round_id=two.round.pk, now=s1.ends_at).explanations


def test_no_unit_explanation_when_every_cart_unit_was_taken(two):
    a, b = two.families
    s1 = two.sessions[0]
    u1 = two.units[0]
    _ready(two, a, [u1])
    _ready(two, b, [u1])
    _confirm(two, a, u1, "key-a-0000002", s1.starts_at + 5 * S)
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    text = my_result(family=b, round_id=two.round.pk, now=s1.ends_at).explanations[s1.pk]
    assert text.startswith(f"您购物车第1套 {u1.name} 已于")
    assert text.endswith("购物车中已没有可选房源，未能自动选定房源。")


def test_empty_cart_explanation(two):
    b = two.families[1]
    s1 = two.sessions[0]
    enter(b, two.round, s1)
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    text = my_result(family=b, round_id=two.round.pk, now=s1.ends_at).explanations[s1.pk]
    assert text == "正选时间结束时您的购物车为空，未能自动选定房源。"


def test_a_family_that_never_entered_is_told_its_preselection_is_void(two):
    a = two.families[0]
    s1 = two.sessions[0]
    preselect(a, two.round, two.units[:2])
    before = my_result(family=a, round_id=two.round.pk, now=s1.ends_at - S)
    assert before.explanations == {}
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    after = my_result(family=a, round_id=two.round.pk, now=s1.ends_at)
    assert after.explanations[s1.pk] == "您未在正选时间内进入选房，预选结果作废。"


def test_a_family_that_never_entered_nor_preselected_is_not_told_of_a_void_preselection(two):
    a, b = two.families
    s1 = two.sessions[0]
    preselect(a, two.round, two.units[:1])
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)  # neither entered
    after = my_result(family=b, round_id=two.round.pk, now=s1.ends_at)
    assert after.explanations[s1.pk] == "您未在正选时间内进入选房。"


def test_each_result_is_told_by_sms_once_confirmed_or_auto_assigned(two):
    from sms import texts
    from sms.models import SmsMessage

    a, b = two.families
    s1 = two.sessions[0]
    u1, u2 = two.units[:2]
    _ready(two, a, [u1])
    _ready(two, b, [u1, u2])
    _confirm(two, a, u1, "key-a-0000003", s1.starts_at + 5 * S)
    _confirm(two, a, u1, "key-a-0000004", s1.starts_at + 6 * S)  # a repeated tap: no second SMS
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    allocation.session_close(session_id=s1.pk, now=s1.ends_at + S)  # a second clock: no-op
    sent = {m.phone: m for m in SmsMessage.objects.filter(kind="selection_result")}
    assert set(sent) == {a.main_applicant.mobile, b.main_applicant.mobile}
    assert SmsMessage.objects.filter(kind="selection_result").count() == 2
    from selection.models import Allocation
    from selection.notices import selection_result_params

    for family, unit, how in ((a, u1, "您已确认选定"), (b, u2, "系统已为您自动选定")):
        alloc = Allocation.objects.get(family=family)
        text = texts.render(
            "selection_result",
            selection_result_params(allocation=alloc, round_name=two.round.name),
        )
        assert how in text and unit.name in text and two.round.name in text


def test_a_family_left_without_a_unit_is_told_by_sms_how_long_it_may_apply():
    """A family that lost every unit of its cart, and those that never came, each get one SMS
    at the close saying so (预选结果已作废 only to the one that had pre-selected) and until
    when 补选 may be applied for (the day's last formal session's end plus the round's grace);
    the winner, the family that gave up and a second clock send none."""
    from core.context import RequestContext
    from selection.phases import formal_day_deadline
    from tests.selection.test_staff_ops import texts

    w = make_world(families=5, units=4, sessions=1)
    a, b, c, d, e = w.families  # e neither pre-selects nor enters
    s1 = w.sessions[0]
    u1 = w.units[0]
    _ready(w, a, [u1])
    _ready(w, b, [u1])  # entered; its only unit goes to a
    preselect(c, w.round, w.units[1:3])  # never enters
    token = allocation.give_up_intent(family=d, round_id=w.round.pk, now=s1.starts_at)
    allocation.selection_give_up(
        family=d, round_id=w.round.pk, token=token, ctx=RequestContext(), now=s1.starts_at
    )
    _confirm(w, a, u1, "key-a-0000005", s1.starts_at + 5 * S)
    assert texts("selection_missed") == []
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    allocation.session_close(session_id=s1.pk, now=s1.ends_at + S)  # a second clock: no-op
    deadline = formal_day_deadline(session=s1, grace_seconds=w.round.supplementary_grace_seconds)
    local = timezone.localtime(deadline)
    until = f"{local.month}月{local.day}日 {local:%H:%M}"
    assert texts("selection_missed") == [
        (
            b.main_applicant.mobile,
            f"【安居】您在「{w.round.name}」第{s1.order}场正选结束时未选定房源。"
            f"如需补选，请于{until}前登录系统提交补选申请，逾期不予受理。",
        ),
        (
            c.main_applicant.mobile,
            f"【安居】您在「{w.round.name}」第{s1.order}场正选未进入选房，预选结果已作废。"
            f"如需补选，请于{until}前登录系统提交补选申请，逾期不予受理。",
        ),
        (
            e.main_applicant.mobile,
            f"【安居】您在「{w.round.name}」第{s1.order}场正选未进入选房。"
            f"如需补选，请于{until}前登录系统提交补选申请，逾期不予受理。",
        ),
    ]


def test_a_close_run_after_the_application_deadline_offers_no_supplementary_by_sms():
    """A close that runs late (the clock was down) past the day's application deadline does
    not tell a family to apply by a time already gone; at the deadline's last moment it does."""
    from selection.phases import formal_day_deadline
    from tests.selection.test_staff_ops import texts

    for late, told in ((timedelta(0), 0), (-S, 1)):
        w = make_world(families=1, units=1, sessions=1)
        s1 = w.sessions[0]
        enter(w.families[0], w.round, s1)
        deadline = formal_day_deadline(
            session=s1, grace_seconds=w.round.supplementary_grace_seconds
        )
        before = len(texts("selection_missed"))
        allocation.session_close(session_id=s1.pk, now=deadline + late)
        assert len(texts("selection_missed")) - before == told
