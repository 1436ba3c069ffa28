"""Texts the applicant acknowledges; the version recorded is the SHA-256 of the exact text."""

from __future__ import annotations

import hashlib

DECLARATION = {
    "pre": (
        "网上选房声明\n"
        "一、本次选房分为预选和正选两个环节。预选时间开始后至本家庭正选时间开始前，可登录系统预选房源；"
        "每个选房家庭最多预选{cart_limit}套房源。\n"
        "二、预选房源后，须在本家庭所属场次的正选时间内确认预选结果；未在规定时间内参与正式选房的，"
        "预选结果作废。\n"
        "三、请慎重选择意向排序。正选时间内一直停留在选房界面且未选定房源的，选房时间结束时，"
        "系统将按同步预选房源后的意向排序，自动选定未被其他家庭选定的第一序位意向房源。\n"
        "四、已被排位在前的家庭选定的房源，可从购物车中删除，另行预选其他可选房源。\n"
        "五、选房以系统服务器时间为准。"
    ),
    "formal": (
        "正式选房声明\n"
        "一、正选时间为{window_minutes}分钟，以系统服务器时间为准。\n"
        "二、点击「同步预选房源」后，正选页面中新选择的意向房源将被预选房源覆盖。\n"
        "三、点击「确认正选」并提交后，选房结果不可更改，选房场次结束。\n"
        "四、正选时间结束时仍未确认的，系统将自动为您选定意向房源中未被其他家庭选定的第一序位房源。\n"
        "五、主动放弃选房的，不能申请补选。"
    ),
    # Pre-selection before a supplementary session (补选): the same rules in its words.
    "supplementary_pre": (
        "网上选房声明\n"
        "一、补选分为预选和补选两个环节。预选时间开始后至本家庭补选时间开始前，可登录系统预选房源；"
        "每个选房家庭最多预选{cart_limit}套房源。\n"
        "二、预选房源后，须在本家庭补选场次的补选时间内确认预选结果；未在规定时间内参与补选的，"
        "预选结果作废。\n"
        "三、请慎重选择意向排序。补选时间内一直停留在选房界面且未选定房源的，补选时间结束时，"
        "系统将按同步预选房源后的意向排序，自动选定未被其他家庭选定的第一序位意向房源。\n"
        "四、已被其他家庭选定的房源，可从购物车中删除，另行预选其他可选房源。\n"
        "五、选房以系统服务器时间为准。"
    ),
    # The formal declaration of a supplementary session (补选): the same rules in its words.
    "supplementary": (
        "补选声明\n"
        "一、补选时间为{window_minutes}分钟，以系统服务器时间为准。\n"
        "二、点击「同步预选房源」后，补选页面中新选择的意向房源将被预选房源覆盖。\n"
        "三、点击「确认补选」并提交后，选房结果不可更改，补选场次结束。\n"
        "四、补选时间结束时仍未确认的，系统将自动为您选定意向房源中未被其他家庭选定的第一序位房源。\n"
        "五、主动放弃选房的，本批次不再为您安排选房。"
    ),
}


def declaration_text(phase: str, *, cart_limit: int, window_seconds: int) -> str:
    """`phase` is "pre", "formal", or "supplementary_pre" / "supplementary" (the two phases
    before and in a 补选 session)."""
    return DECLARATION[phase].format(
        cart_limit=cart_limit, window_minutes=max(1, window_seconds // 60)
    )


def text_version(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
