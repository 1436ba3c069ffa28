"""Message kinds: the Chinese text of each, and the ordered parameters a provider template
takes. Real providers send the kind's registered template id with the parameters; the
console provider logs the rendered text."""

from __future__ import annotations

SIGNATURE = "【安居】"

TEXTS: dict[str, str] = {
    # params: code, minutes, purpose label
    "verify_code": "您正在{2}，验证码为{0}，{1}分钟内有效。工作人员不会向您索要验证码，请勿泄露。",
    # params: title, deadline
    "agreement_pushed": "您有一份《{0}》待签署，请于{1}前登录系统完成网上签约，逾期未签视为放弃。",
    # params: title, reason (without its own closing punctuation: core/fmt.py `clause`),
    # deadline, consultation numbers, consultation hours (signing/agreements/consult.py)
    "agreement_rejected": "您签署的《{0}》未通过审核，原因：{1}。请于{2}前重新签署。如有疑问，请拨打咨询电话{3}（{4}）。",
    # params: title
    "agreement_sealed": "您签署的《{0}》已审核通过并盖章，可登录系统查看、下载协议。",
    # params: round name, how it was decided (确认选定 / 系统自动选定 / 工作人员分配), unit, time
    "selection_result": "您在{0}的选房结果：{1}房源{2}（{3}），核验码{4}。请登录系统查看选房结果，并在签约期限内完成网上签约。",
    # params: round name, session order, what happened (selection.notices.MISSED_HOW: 预选结果已作废
    # only when a pre-selection was voided), deadline (local date and time)
    "selection_missed": "您在{0}第{1}场正选{2}。如需补选，请于{3}前登录系统提交补选申请，逾期不予受理。",
    # params: round name, session order, start (local date and time), end (local time)
    "session_scheduled": "您在{0}的正选场次已安排：第{1}场，{2}至{3}，在安居网上选房系统（线上）进行。正选开始前可登录预选房源，请准时参加。",
    # params: round name, start (local date and time), end (local time)
    "supplementary_scheduled": "您申请的{0}补选已安排：补选场次时间为{1}至{2}，地点为安居网上选房系统（线上进行）。请准时登录参加补选，开始前可预选房源。",
    # params: round name, unit
    "unit_withdrawn": "您在{0}购物车中的房源{1}已被工作人员撤回，不再可选，已从购物车中移除。请登录系统调整您的选房顺序。",
    # params: round name, session (第N场正选 / 补选场次), new start (date and time), new end (time), old start
    "session_rescheduled": "您在{0}的{1}已改期：{2}至{3}（原定{4}），在安居网上选房系统（线上）进行。请准时参加。",
    # params: new mobile (masked), old mobile (masked)
    "mobile_changed_by_staff": "您在安居系统登记的手机号码已由工作人员从{1}更改为{0}，今后验证码将发送至新号码。如非本人申请，请立即联系工作人员。",
}


# Each kind as staff read it in the admin's delivery records.
LABELS: dict[str, str] = {
    "verify_code": "短信验证码",
    "agreement_pushed": "协议待签署通知",
    "agreement_rejected": "协议退回通知",
    "agreement_sealed": "协议盖章通知",
    "selection_result": "选房结果通知",
    "selection_missed": "未选定房源通知",
    "session_scheduled": "正选场次通知",
    "supplementary_scheduled": "补选场次通知",
    "unit_withdrawn": "房源撤回通知",
    "session_rescheduled": "场次改期通知",
    "mobile_changed_by_staff": "手机号码变更通知",
}


def kind_label(kind: str) -> str:
    return LABELS.get(kind, kind)


def render(kind: str, params: list[str]) -> str:
    return SIGNATURE + TEXTS[kind].format(*params)
