"""Issue 13 item 3: the error-code list is generated from the code (docs/ERRORS.md cannot
drift), and one code answers with one status everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from core.error_codes import DYNAMIC, error_codes

ROOT = Path(settings.BASE_DIR)


def test_the_errors_doc_is_generated_from_the_code():
    call_command("errors_doc", "--check")


def test_every_code_has_one_status():
    twice = {c.code: c.statuses for c in error_codes(ROOT).values() if len(c.statuses) > 1}
    assert twice == {}


def test_the_scan_finds_each_kind_of_refusal():
    codes = error_codes(ROOT)
    expect = {
        "invalid_mobile": 400,  # ValidationFailed in accounts.validators
        "agreement_not_pending": 409,  # Conflict in signing.agreements.transitions
        "unit_not_found": 404,  # a DomainError subclass declaring code and kind
        "busy": 503,  # a subclass in core.locking
        "csrf_failed": 403,  # an answer mobile_api builds itself
        "invariant_violation": 409,  # error_body(*CONSTANT)
    }
    assert {code: codes[code].statuses for code in expect} == {
        code: {status} for code, status in expect.items()
    }


def test_the_dynamic_codes_are_still_in_their_module():
    for code, _, module in DYNAMIC:
        source = (ROOT / Path(*module.split("."))).with_suffix(".py").read_text("utf-8")
        assert f'"{code}"' in source, (code, module)


def test_control_a_code_with_two_statuses_fails_the_check(tmp_path, settings):
    """A copy of one module where a code is refused with another status: the check fails."""
    for app in (
        "core",
        "mobile_api",
        "selection",
        "accounts",
        "signing",
        "sms",
        "events",
        "realtime",
    ):
        (tmp_path / app).mkdir()
    (tmp_path / "docs").mkdir()
    (tmp_path / "selection" / "x.py").write_text(
        'raise Conflict("unit_taken", "a")\nraise NotAllowed("unit_taken", "b")\n', "utf-8"
    )
    settings.BASE_DIR = tmp_path
    with pytest.raises(CommandError, match="unit_taken"):
        call_command("errors_doc", "--check")
