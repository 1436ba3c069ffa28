"""The staff page that schedules a supplementary session: refused (a Chinese message, nothing
changed) before the application window closes and for families that did not apply."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry, User
from selection import allocation, supplementary
from selection.models import Session
from sms.models import SmsMessage
from tests.worlds import CTX

pytestmark = pytest.mark.django_db
S = timedelta(seconds=1)


@pytest.fixture
def setup(world):
    s1, s2 = world.sessions
    allocation.session_close(session_id=s1.pk, now=s1.ends_at)
    allocation.session_close(session_id=s2.pk, now=s2.ends_at)
    supplementary.supplementary_apply(
        family=world.families[0], round_id=world.round.pk, ctx=CTX, now=s2.ends_at
    )
    user = User.objects.create(username="staff-op", is_staff=True)
    user.groups.set([Group.objects.get(name="operator")])
    client = Client()
    client.force_login(user)
    world.client = client
    world.deadline = s2.ends_at + timedelta(minutes=3)
    world.url = f"/admin/selection/round/{world.round.pk}/supplementary/"
    return world


def post(w, now, **data):
    start = timezone.localtime(w.deadline + timedelta(hours=1))
    body = {"starts_at": start.strftime("%Y-%m-%dT%H:%M"), **data}
    with time_machine.travel(now, tick=False):
        return w.client.post(w.url, body)


def nothing_scheduled():
    return (
        not Session.objects.filter(kind=Session.Kind.SUPPLEMENTARY).exists()
        and not SmsMessage.objects.filter(kind="supplementary_scheduled").exists()
        and not AuditEntry.objects.filter(action="selection.supplementary_schedule").exists()
    )


def test_refused_on_the_page_one_second_before_the_window_closes(setup):
    response = post(setup, setup.deadline - S)
    assert response.status_code == 200
    assert "补选申请尚未截止" in response.content.decode()
    assert nothing_scheduled()


def test_the_page_says_before_any_try_that_the_applications_are_still_open(setup):
    """The operator reads the deadline on the page itself, not only in a refusal; at the
    deadline the same family is counted as ready."""
    local = timezone.localtime(setup.deadline).strftime("%Y-%m-%d %H:%M:%S")
    with time_machine.travel(setup.deadline - S, tick=False):
        before = setup.client.get(setup.url).content.decode()
    with time_machine.travel(setup.deadline, tick=False):
        at = setup.client.get(setup.url).content.decode()
    assert (
        f"其中 <strong>1</strong> 户的补选申请尚未截止（截止时间 {local}），截止后方可安排"
        in before
    )
    assert "申请已截止的" not in before
    assert "尚未截止" not in at
    assert "申请已截止的 <strong>1</strong> 户将按排位号顺序全部安排在同一补选场次" in at


@pytest.mark.parametrize("offset", [0, 1])
def test_scheduled_from_the_page_at_and_after_the_deadline(setup, offset):
    response = post(setup, setup.deadline + offset * S)
    assert response.status_code == 302, response.content.decode()[:2000]
    session = Session.objects.get(kind=Session.Kind.SUPPLEMENTARY)
    assert list(session.seats.values_list("family", flat=True)) == [setup.families[0].pk]
    assert SmsMessage.objects.filter(kind="supplementary_scheduled").count() == 1


def test_refused_on_the_page_for_a_family_that_did_not_apply(setup):
    other = setup.families[1]
    response = post(setup, setup.deadline, ranks=f"{setup.families[0].rank}，{other.rank}")
    assert response.status_code == 200
    text = response.content.decode()
    assert "未申请补选" in text and str(other.rank) in text
    assert nothing_scheduled()


@pytest.mark.parametrize(
    "ranks,message", [("abc", "排位号须为正整数"), ("999999", "没有以下排位号的家庭")]
)
def test_bad_ranks_are_refused_in_chinese(setup, ranks, message):
    response = post(setup, setup.deadline, ranks=ranks)
    assert response.status_code == 200 and message in response.content.decode()
    assert nothing_scheduled()


def test_a_reviewer_may_not_schedule(setup):
    user = User.objects.create(username="staff-rev", is_staff=True)
    user.groups.set([Group.objects.get(name="reviewer")])
    setup.client.force_login(user)
    response = post(setup, setup.deadline)
    assert response.status_code == 403
    assert nothing_scheduled()


def test_the_page_says_which_applications_wait_for_their_days_close(world):
    """A round over two days: day 1's families are scheduled while day 2's applications are
    still open, and the operator is told that some wait."""
    s1, s2 = world.sessions
    Session.objects.filter(pk=s2.pk).update(
        starts_at=s2.starts_at + timedelta(days=1), ends_at=s2.ends_at + timedelta(days=1)
    )
    s2.refresh_from_db()
    for session, family in ((s1, world.families[0]), (s2, world.families[2])):
        allocation.session_close(session_id=session.pk, now=session.ends_at)
        supplementary.supplementary_apply(
            family=family, round_id=world.round.pk, ctx=CTX, now=session.ends_at
        )
    user = User.objects.create(username="staff-op2", is_staff=True)
    user.groups.set([Group.objects.get(name="operator")])
    world.client = Client()
    world.client.force_login(user)
    world.url = f"/admin/selection/round/{world.round.pk}/supplementary/"
    world.deadline = s2.ends_at + timedelta(minutes=3)
    response = post(world, world.deadline - S)  # day 2 still open
    assert response.status_code == 302
    session = Session.objects.get(kind=Session.Kind.SUPPLEMENTARY)
    assert list(session.seats.values_list("family", flat=True)) == [world.families[0].pk]
    said = [m.message for m in response.wsgi_request._messages]
    assert said == [
        f"已安排补选场次：第{session.order}场，共1户家庭；另有1户家庭的补选申请尚未截止，截止后可再安排"
    ]
