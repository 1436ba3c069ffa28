"""Resident ID numbers and mobile numbers: normalise, validate, mask."""

from __future__ import annotations

import re

from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError

from core.errors import ValidationFailed

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")


def id_number_clean(value: str) -> str:
    """Return the 18-character resident ID number, upper-case X, or raise `invalid_id_number`.

    python-stdnum's `cn.ric` checks the length, the birth date and the ISO 7064 checksum,
    so a typo in any digit is caught here instead of at the identity provider."""
    try:
        number = ric.validate(value or "")
    except StdnumError:
        raise ValidationFailed(
            "invalid_id_number",
            "身份证号码格式不正确",
            fields={"id_number": ["请输入有效的18位居民身份证号码"]},
        ) from None
    if len(number) != 18:  # 15-digit first-generation cards are no longer valid documents
        raise ValidationFailed(
            "invalid_id_number",
            "身份证号码格式不正确",
            fields={"id_number": ["请输入有效的18位居民身份证号码"]},
        )
    return number.upper()


def mobile_clean(value: str, *, field: str = "mobile") -> str:
    number = re.sub(r"[\s-]", "", value or "")
    if number.startswith("+86"):
        number = number[3:]
    if not MOBILE_RE.match(number):
        raise ValidationFailed(
            "invalid_mobile", "手机号码格式不正确", fields={field: ["请输入11位中国大陆手机号码"]}
        )
    return number


def mask_id_number(number: str) -> str:
    return f"{number[:3]}{'*' * 11}{number[-4:]}" if len(number) == 18 else "*" * len(number)


def mask_mobile(number: str) -> str:
    return f"{number[:3]}****{number[-4:]}" if len(number) == 11 else "*" * len(number)
