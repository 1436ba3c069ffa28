"""Message kinds: the Chinese text of each, and the ordered parameters a provider template
takes. Real providers send the kind's registered template id with the parameters; the
console provider logs the rendered text."""

from __future__ import annotations

SIGNATURE = "【安居】"

TEXTS: dict[str, str] = {
    # params: code, minutes, purpose label
    "verify_code": "您正在{2}，验证码为{0}，{1}分钟内有效。工作人员不会向您索要验证码，请勿泄露。",
}


def render(kind: str, params: list[str]) -> str:
    return SIGNATURE + TEXTS[kind].format(*params)
