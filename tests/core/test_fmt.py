"""core/fmt.py: the one time format of SMS texts, PDFs and pages, and clauses for templates."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from django.template import Context, Template

from core.fmt import clause, date_zh, datetime_zh

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_single_digit_month_and_day_have_no_leading_zero_and_the_clock_has_two_digits():
    at = datetime(2026, 1, 5, 9, 3, tzinfo=SHANGHAI)
    assert datetime_zh(at) == "2026年1月5日 09:03"
    assert date_zh(at) == "2026年1月5日"


def test_two_digit_month_and_day():
    assert datetime_zh(datetime(2026, 12, 25, 18, 0, tzinfo=SHANGHAI)) == "2026年12月25日 18:00"


def test_midnight_is_00_00_of_the_new_day():
    assert datetime_zh(datetime(2026, 12, 5, 0, 0, tzinfo=SHANGHAI)) == "2026年12月5日 00:00"


def test_utc_input_is_read_in_shanghai_time_across_the_date_line():
    # 17:08 UTC on the 4th is 01:08 on the 5th in Shanghai (UTC+8): the guide's example time.
    at = datetime(2026, 12, 4, 17, 8, tzinfo=UTC)
    assert datetime_zh(at) == "2026年12月5日 01:08"
    assert date_zh(at) == "2026年12月5日"
    # 16:00 UTC is midnight in Shanghai
    assert datetime_zh(datetime(2026, 12, 31, 16, 0, tzinfo=UTC)) == "2027年1月1日 00:00"


def test_seconds_and_an_explicit_zone():
    at = datetime(2025, 3, 5, 6, 3, 22, tzinfo=UTC)
    assert datetime_zh(at, seconds=True) == "2025年3月5日 14:03:22"
    assert datetime_zh(at, tz=ZoneInfo("America/New_York")) == "2025年3月5日 01:03"


def test_a_naive_datetime_is_refused():
    with pytest.raises(ValueError):
        datetime_zh(datetime(2026, 12, 5, 1, 8))


def test_the_template_filter_uses_the_same_format():
    rendered = Template("{% load anju_fmt %}{{ at|datetime_zh }}|{{ none|datetime_zh }}").render(
        Context({"at": datetime(2026, 12, 4, 17, 8, tzinfo=UTC), "none": None})
    )
    assert rendered == "2026年12月5日 01:08|"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("第二个字超出签字框。", "第二个字超出签字框"),
        ("签名潦草。。", "签名潦草"),
        ("  签名不清晰；。 \n", "签名不清晰"),
        ("Signature unclear.", "Signature unclear"),
        ("照片不清晰！", "照片不清晰"),
        ("银行卡号有误", "银行卡号有误"),
        ("", ""),
        (None, ""),
    ],
)
def test_clause_drops_the_closing_punctuation_a_template_adds_itself(text, expected):
    assert clause(text) == expected
