"""当前事项 on the home page (h5/home.py): where the family stands in its round and its
signing, what to do next, and when the page must read again — at every boundary of the
clock, with time pinned."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from core.context import RequestContext
from h5.home import next_steps
from selection import allocation, supplementary
from signing.lease.services import lease_start
from signing.models import Agreement
from tests.signing.lease_worlds import NOW as LEASE_NOW
from tests.signing.lease_worlds import lease_submitted, make_lease_world
from tests.signing.worlds import OPENS, make_agreement
from tests.worlds import CTX, PRE_START, S1_START, WINDOW, family_client, make_world, preselect

pytestmark = pytest.mark.django_db

S1_END = S1_START + WINDOW
# make_world's second session is 09:35–09:37 the same day; 补选 applications close 180 s after
DEADLINE = S1_START + timedelta(minutes=5) + WINDOW + timedelta(seconds=180)


def steps_at(world, now, family=None):
    family = family or world.families[0]
    return next_steps(applicant=family.main_applicant, family=family, now=now)


def only(result):
    assert len(result.steps) == 1, result.steps
    return result.steps[0]


def test_each_boundary_of_the_day_changes_the_line_and_says_when_to_read_again():
    world = make_world()
    rid = world.round.pk
    page = f"/h5/selection/{rid}/"
    second = timedelta(seconds=1)

    before = steps_at(world, PRE_START - second)
    step = only(before)
    assert (step.status, step.tone, step.action, step.href) == ("预选未开始", "wait", "查看", page)
    assert step.title == f"网上选房 · {world.round.name}"
    assert step.desc == "预选将于2026年3月2日 09:00开始；您的正选场次：第1场 3月3日 09:30–09:32。"
    assert before.refresh_in == 1

    opened = steps_at(world, PRE_START)
    step = only(opened)
    assert (step.status, step.tone, step.action) == ("预选进行中", "todo", "去预选")
    assert (
        step.desc == "您的正选场次：第1场 3月3日 09:30–09:32，请在正选开始前完成预选（最多5套）。"
    )
    assert opened.refresh_in == (S1_START - PRE_START).total_seconds()
    assert steps_at(world, S1_START - second).refresh_in == 1
    preselect(world.families[0], world.round, world.units[:2])
    assert only(steps_at(world, PRE_START)).desc == (
        "您的正选场次：第1场 3月3日 09:30–09:32，已预选2套，正选开始前仍可调整。"
    )

    running = steps_at(world, S1_START)
    step = only(running)
    assert (step.status, step.tone, step.action, step.href) == (
        "正选进行中",
        "todo",
        "去选房",
        page,
    )
    assert step.desc == "您的正选时间：第1场 3月3日 09:30–09:32，请立即进入选房。"
    assert running.refresh_in == 120
    assert steps_at(world, S1_END - second).refresh_in == 1

    missed = steps_at(world, S1_END)
    step = only(missed)
    assert (step.status, step.tone, step.action) == ("可申请补选", "todo", "补选申请")
    assert step.href == f"{page}result/#supplementary"
    assert step.desc == "您未选定房源。如需补选，请于2026年3月3日 09:40前提交补选申请。"
    assert missed.refresh_in == (DEADLINE - S1_END).total_seconds()
    assert steps_at(world, DEADLINE - second).steps[0].status == "可申请补选"

    closed = steps_at(world, DEADLINE)
    step = only(closed)
    assert (step.status, step.tone) == ("选房场次已结束", "over")
    assert step.desc == "您未选定房源，补选申请已于2026年3月3日 09:40截止。"
    assert step.href == f"{page}result/"
    assert closed.refresh_in is None


def test_an_application_for_supplementary_selection_waits_for_its_session():
    world = make_world()
    family = world.families[0]
    allocation.session_close(session_id=world.sessions[0].pk, now=S1_END)
    supplementary.supplementary_apply(family=family, round_id=world.round.pk, ctx=CTX, now=S1_END)
    step = only(steps_at(world, S1_END + timedelta(seconds=1)))
    assert (step.status, step.tone) == ("已申请补选", "wait")
    assert step.desc == "您已提交补选申请，补选场次待工作人员安排，安排后将以短信通知您。"


def test_a_scheduled_supplementary_session_is_named_as_such(django_user_model):
    world = make_world()
    family = world.families[0]
    allocation.session_close(session_id=world.sessions[0].pk, now=S1_END)
    supplementary.supplementary_apply(family=family, round_id=world.round.pk, ctx=CTX, now=S1_END)
    staff = django_user_model.objects.create_user(username="operator", password="x")
    starts = DEADLINE + timedelta(minutes=10)
    supplementary.supplementary_session_schedule(
        round_id=world.round.pk, starts_at=starts, actor=staff, now=DEADLINE
    )
    waiting = steps_at(world, DEADLINE)
    step = only(waiting)
    assert (step.status, step.tone, step.action) == ("预选进行中", "todo", "去预选")
    assert step.desc == "您的补选场次：3月3日 09:50–09:52，请在补选开始前完成预选（最多5套）。"
    assert waiting.refresh_in == 600
    step = only(steps_at(world, starts))
    assert (step.status, step.desc) == (
        "补选进行中",
        "您的补选时间：3月3日 09:50–09:52，请立即进入选房。",
    )


def test_a_family_that_gave_up_is_told_so_with_nothing_to_do():
    world = make_world()
    family, rid = world.families[0], world.round.pk
    token = allocation.give_up_intent(family=family, round_id=rid, now=S1_START)
    allocation.selection_give_up(family=family, round_id=rid, token=token, ctx=CTX, now=S1_START)
    result = steps_at(world, S1_START + timedelta(seconds=1))
    step = only(result)
    assert (step.status, step.tone, step.desc) == ("已主动放弃", "over", "您已主动放弃本次选房。")
    assert result.refresh_in is None


def test_a_chosen_unit_leads_to_signing_stage_by_stage():
    lease_world = make_lease_world()
    family, applicant = lease_world.family, lease_world.applicant

    def steps():
        return next_steps(applicant=applicant, family=family, now=LEASE_NOW).steps

    chosen, signing = steps()
    assert (chosen.status, chosen.tone, chosen.desc) == (
        "已选定房源",
        "done",
        "选定房源：3栋 1201。",
    )
    assert (signing.title, signing.status, signing.href) == ("租赁合同签约", "待签约", "/h5/lease/")
    # The deadline the lease will have, before it is started (make_lease_world: WINDOW_ENDS).
    assert signing.desc == (
        "请于2026年3月10日 18:00前完成网上签约：完善承租信息、人脸识别、签订合同、押金缴纳。"
    )

    lease = lease_start(applicant=applicant, ctx=RequestContext(), now=LEASE_NOW)
    _, signing = steps()
    assert (signing.status, signing.tone, signing.action) == ("待签约", "todo", "去签约")
    assert signing.href == f"/h5/lease/{lease.pk}/"
    assert signing.desc == "下一步：完善承租信息。请于2026年3月10日 18:00前完成签约。"

    # Staff sent it back (the review's facts, as test_lease_review makes them).
    Agreement.objects.filter(pk=lease.agreement_id).update(reject_reason="银行卡照片不清晰。")
    _, signing = steps()
    assert signing.desc == "工作人员退回：银行卡照片不清晰。请于2026年3月10日 18:00前完成签约。"

    lease_submitted(lease, now=LEASE_NOW)
    _, signing = steps()
    assert (signing.status, signing.tone, signing.action) == ("待审核", "wait", "查看详情")
    assert signing.desc == "签约申请已提交，等待工作人员审核，审核结果将以短信通知。"

    Agreement.objects.filter(pk=lease.agreement_id).update(status="sealed", sealed_at=LEASE_NOW)
    _, signing = steps()
    assert (signing.status, signing.tone) == ("审核通过", "done")
    assert signing.desc == "审核已通过，可在「我的」—网上签约记录中下载合同材料。"

    Agreement.objects.filter(pk=lease.agreement_id).update(status="void")
    assert [step.status for step in steps()] == ["已选定房源"]  # a closed lease: nothing to do


def test_the_home_page_shows_the_lines_and_when_it_reloads():
    world = make_world()
    client = family_client(world.families[0])
    with time_machine.travel(PRE_START - timedelta(seconds=30), tick=False):
        html = client.get("/h5/").content.decode()
    assert "当前事项" in html
    assert 'data-refresh-in="30"' in html
    assert "预选将于2026年3月2日 09:00开始；您的正选场次：第1场 3月3日 09:30–09:32。" in html
    assert f'href="/h5/selection/{world.round.pk}/">查看</a>' in html


def test_a_family_with_no_round_has_no_lines():
    world = make_world(families=3, sessions=1, per_session=2)  # the third has no seat
    html = family_client(world.families[2]).get("/h5/").content.decode()
    assert "当前事项" not in html
    assert "data-refresh-in" not in html


def test_an_agreement_to_sign_by_itself_is_a_line_until_it_is_signed():
    agreement, applicant = make_agreement()
    family = applicant.family

    def steps():
        return next_steps(applicant=applicant, family=family, now=OPENS).steps

    [step] = steps()
    assert (step.title, step.status, step.tone) == (agreement.title, "待签字", "todo")
    assert (step.href, step.action) == ("/h5/signing/", "去签约")
    assert step.desc == "请于2026年1月23日 18:00前完成签约。"
    Agreement.objects.filter(pk=agreement.pk).update(status="signed", signed_at=OPENS)
    assert steps() == []
