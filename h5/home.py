"""当前事项 on the home page: where the family stands in each of its rounds and in its signing,
and the one thing to do next, read from the same selectors as the pages they link to.

The home page is a plain document (no script reads data for it), so each line says its
times in full (「第1场 12月8日 11:17–11:19」), and `refresh_in` says in how many seconds a line
would change by the clock alone (pre-selection opens, a session opens or closes, 补选
applications close): the page reloads itself then (home.js; counted from the response, so
the phone's own clock does not matter)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.utils import timezone

from accounts.models import Applicant, Family
from core.fmt import clause, datetime_zh
from selection import selectors as selection_selectors
from selection.models import Session
from signing import selectors as signing_selectors
from signing.lease.services import newest_allocation
from signing.models import Agreement, LeaseStage


@dataclass(frozen=True)
class Step:
    title: str  # what it is about: 网上选房, 租赁合同签约, an agreement's title
    status: str  # where it stands, in a badge
    tone: str  # the badge's look: "todo" (the family has something to do), "wait", "done", "over"
    desc: str
    href: str
    action: str  # the link's words
    changes_at: datetime | None = None  # when the clock alone will change this line

    @property
    def badge(self) -> str:
        """The badge's colour, as the signing pages' (待签字 orange, 已签字 blue, …)."""
        return BADGES[self.tone]


BADGES = {"todo": "pending", "wait": "signed", "done": "sealed", "over": "void"}


@dataclass(frozen=True)
class NextSteps:
    steps: list[Step]
    # whole seconds from now until a line would change by the clock alone (None: none will)
    refresh_in: int | None


def _window(session: Session) -> str:
    """「第1场 12月8日 11:17–11:19」, as the round page's card (a 补选 session has no number to
    say: 「12月8日 11:47–11:49」). A point in time is core.fmt's 「2026年12月8日 11:57」."""
    starts, ends = timezone.localtime(session.starts_at), timezone.localtime(session.ends_at)
    times = f"{starts.month}月{starts.day}日 {starts:%H:%M}–{ends:%H:%M}"
    return times if session.kind == Session.Kind.SUPPLEMENTARY else f"第{session.order}场 {times}"


def _selection_step(family: Family, round_id: int, now: datetime) -> Step:
    result = selection_selectors.my_result(family=family, round_id=round_id, now=now)
    state = result.state
    page = f"/h5/selection/{round_id}/"
    line = partial(Step, f"网上选房 · {state.round.name}")
    phase = state.phase
    if phase == "allocated":
        unit = state.allocation.unit.name
        return line("已选定房源", "done", f"选定房源：{unit}。", f"{page}result/", "查看结果")
    if phase == "gave_up":
        return line("已主动放弃", "over", "您已主动放弃本次选房。", f"{page}result/", "查看结果")
    if phase == "formal":
        session = state.current.session
        word = session.word
        desc = f"您的{word}时间：{_window(session)}，请立即进入选房。"
        return line(f"{word}进行中", "todo", desc, page, "去选房", changes_at=session.ends_at)
    if phase in ("pre", "not_started"):
        session = state.upcoming.session
        word = session.word
        if phase == "not_started":
            opens = state.round.preselect_starts_at
            desc = f"预选将于{datetime_zh(opens)}开始；您的{word}场次：{_window(session)}。"
            return line("预选未开始", "wait", desc, page, "查看", changes_at=opens)
        chosen = len(selection_selectors.cart_list(family=family, round_id=round_id, kind="pre"))
        desc = f"您的{word}场次：{_window(session)}，" + (
            f"已预选{chosen}套，{word}开始前仍可调整。"
            if chosen
            else f"请在{word}开始前完成预选（最多{state.round.cart_limit}套）。"
        )
        return line("预选进行中", "todo", desc, page, "去预选", changes_at=session.starts_at)
    # The session is over without a unit.
    deadline = result.supplementary_deadline
    if result.can_apply_supplementary and deadline:
        desc = f"您未选定房源。如需补选，请于{datetime_zh(deadline)}前提交补选申请。"
        href = f"{page}result/#supplementary"
        return line("可申请补选", "todo", desc, href, "补选申请", changes_at=deadline)
    if result.application is not None:
        desc = "您已提交补选申请，补选场次待工作人员安排，安排后将以短信通知您。"
        return line("已申请补选", "wait", desc, f"{page}result/", "查看")
    desc = "您未选定房源。"
    if result.supplementary_closed and deadline:
        desc = f"您未选定房源，补选申请已于{datetime_zh(deadline)}截止。"
    return line("选房场次已结束", "over", desc, f"{page}result/", "查看结果")


LEASE_TITLE = "租赁合同签约"


def _lease_step(lease: signing_selectors.LeaseView) -> Step | None:
    agreement = lease.agreement
    href = f"/h5/lease/{lease.id}/"
    stage = lease.stage
    if stage == LeaseStage.REVIEW:
        desc = "签约申请已提交，等待工作人员审核，审核结果将以短信通知。"
        return Step(LEASE_TITLE, "待审核", "wait", desc, href, "查看详情")
    if stage == LeaseStage.APPROVED:
        desc = "审核已通过，可在「我的」—网上签约记录中下载合同材料。"
        return Step(LEASE_TITLE, "审核通过", "done", desc, href, "查看详情")
    if stage == LeaseStage.CLOSED:
        return None
    before = f"请于{datetime_zh(agreement.window_ends_at)}前完成签约。"
    if agreement.reject_reason:
        desc = f"工作人员退回：{clause(agreement.reject_reason)}。{before}"
    else:
        desc = f"下一步：{lease.stage_label}。{before}"
    return Step(LEASE_TITLE, "待签约", "todo", desc, href, "去签约")


def _agreement_step(agreement: signing_selectors.AgreementSummary) -> Step | None:
    if agreement.status != Agreement.Status.PENDING:
        return None
    desc = f"请于{datetime_zh(agreement.window_ends_at)}前完成签约。"
    return Step(agreement.title, "待签字", "todo", desc, "/h5/signing/", "去签约")


def next_steps(*, applicant: Applicant, family: Family, now: datetime) -> NextSteps:
    steps = [
        _selection_step(family, round_.pk, now)
        for round_ in selection_selectors.family_rounds(family=family)
    ]
    moments = [step.changes_at for step in steps if step.changes_at and step.changes_at > now]
    leases = signing_selectors.lease_views(applicant=applicant)
    steps.extend(step for step in map(_lease_step, leases) if step)
    # A unit chosen and no lease started yet (the lease page starts it): the way there, and
    # the deadline the lease will have.
    allocation = None if leases else newest_allocation(family)
    if allocation is not None:
        deadline = signing_selectors.allocation_signing(allocation=allocation).deadline
        desc = (
            f"请于{datetime_zh(deadline)}前完成网上签约："
            "完善承租信息、人脸识别、签订合同、押金缴纳。"
        )
        steps.append(Step(LEASE_TITLE, "待签约", "todo", desc, "/h5/lease/", "去签约"))
    in_leases = {lease.agreement.id for lease in leases}
    others = signing_selectors.agreement_list(applicant=applicant)
    steps.extend(
        step for step in map(_agreement_step, (a for a in others if a.id not in in_leases)) if step
    )
    soonest = min(moments, default=None)
    return NextSteps(
        steps=steps, refresh_in=math.ceil((soonest - now).total_seconds()) if soonest else None
    )
