"""How applicants read a time and a sentence, the same in SMS texts, PDFs and pages.

One format for a point in time: 「2026年12月5日 01:08」 in the site's zone (TIME_ZONE,
Asia/Shanghai): no leading zero on month and day, a space, then a 24-hour clock with two
digits each. The pages' script has its twin, `dateTime` in h5/static/h5/lib/format.js;
templates use the `datetime_zh` filter (h5/templatetags/anju_fmt.py).
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from django.utils import timezone

# What may end a clause before a template adds its own 。 (full- and half-width).
_CLAUSE_END = re.compile(r"[\s。．.，,、；;：:！!？?…]+$")


def date_zh(at: datetime, *, tz: tzinfo | None = None) -> str:
    """「2026年12月5日」: the date of an aware datetime in the site's zone (or `tz`)."""
    local = timezone.localtime(at, tz)
    return f"{local.year}年{local.month}月{local.day}日"


def datetime_zh(at: datetime, *, seconds: bool = False, tz: tzinfo | None = None) -> str:
    """「2026年12月5日 01:08」 (「… 01:08:09」 with `seconds`): an aware datetime in the
    site's zone (or `tz`). Raises ValueError for a naive one (its zone would be a guess)."""
    local = timezone.localtime(at, tz)
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    return f"{local.year}年{local.month}月{local.day}日 {clock}"


def clause(text: str) -> str:
    """Free text (a staff reason) as a clause that a template ends with its own 。: trimmed,
    without the sentence punctuation it may already end with, so no 「。。」 or 「；。」."""
    return _CLAUSE_END.sub("", (text or "").strip())
