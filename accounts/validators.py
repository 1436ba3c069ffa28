"""Resident ID numbers and mobile numbers: normalise, validate, mask."""

from __future__ import annotations

import re
from datetime import date

from stdnum.cn import ric
from stdnum.exceptions import ValidationError as StdnumError

from core.errors import ValidationFailed

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")


# Province-level codes (GB/T 2260) that resident ID numbers begin with.
PROVINCES = frozenset(
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82".split()
)


def _invalid_id_number() -> ValidationFailed:
    return ValidationFailed(
        "invalid_id_number",
        "身份证号码格式不正确",
        fields={"id_number": ["请输入有效的18位居民身份证号码"]},
    )


def id_number_clean(value: str) -> str:
    """Return the 18-character resident ID number (upper-case X) or raise `invalid_id_number`.

    python-stdnum's `cn.ric` does the ISO 7064 check digit and the birth date. Its full
    `validate()` also requires the county code to have existed in the holder's birth year,
    which refuses real numbers: a Futian resident born in 1960 who was first issued a card
    there in the 1990s holds 440304-1960…, a county code stdnum dates from 1983. So the
    county check is replaced by a province check (see docs/DECISIONS.md)."""
    number = re.sub(r"[\s-]", "", value or "").upper()
    if len(number) != 18 or not number[:17].isdigit() or number[:2] not in PROVINCES:
        raise _invalid_id_number()
    try:
        if number[-1] != ric.calc_check_digit(number):
            raise _invalid_id_number()
        birth = ric.get_birth_date(number)
    except StdnumError:
        raise _invalid_id_number() from None
    if not (1900 <= birth.year and birth <= date.today()):
        raise _invalid_id_number()
    return number


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


def mask_name(name: str) -> str:
    """「张三丰」→「张**」: the surname shown, the given name masked (a phone that has not
    passed the face check sees no more)."""
    name = (name or "").strip()
    return name[:1] + "*" * max(len(name) - 1, 1) if name else ""


REASON_MIN, REASON_MAX = 4, 100


def reason_clean(value: str) -> str:
    """The written reason every staff operation asks for (audit, history, ledger)."""
    reason = (value or "").strip()
    if not REASON_MIN <= len(reason) <= REASON_MAX:
        message = f"请填写操作原因（{REASON_MIN}至{REASON_MAX}字）"
        raise ValidationFailed("reason_required", message, fields={"reason": [message]})
    return reason
