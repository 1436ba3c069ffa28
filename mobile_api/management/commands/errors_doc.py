"""Write docs/ERRORS.md from the code (core.error_codes), or with --check fail when the file
is out of step or a code answers with two statuses."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.error_codes import error_codes, errors_table

HEADER = """# Error codes

Every refusal of the API is `{"error": {"code", "message", "fields"}}` with one of these codes.
Generated from the code by `manage.py errors_doc` (core/error_codes.py reads every domain
refusal and every answer the API builds itself); a test fails when this file is out of step or
when one code is answered with two statuses. `fields` names the inputs at fault for 400s.
A 503 carries `Retry-After`; so does a 429 where the wait is known.

"""


def errors_doc_text() -> str:
    return HEADER + errors_table(Path(settings.BASE_DIR))


class Command(BaseCommand):
    help = "Regenerate docs/ERRORS.md from the error codes in the code."

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="fail if the file differs")

    def handle(self, *args, check: bool = False, **options):
        root = Path(settings.BASE_DIR)
        twice = {
            c.code: sorted(c.statuses) for c in error_codes(root).values() if len(c.statuses) > 1
        }
        if twice:
            raise CommandError(f"codes answered with more than one status: {twice}")
        path = root / "docs" / "ERRORS.md"
        text = errors_doc_text()
        if check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                raise CommandError("docs/ERRORS.md is out of step: run manage.py errors_doc")
            return
        path.write_text(text, encoding="utf-8")
        self.stdout.write(
            f"docs/ERRORS.md: {text.count(chr(10)) - HEADER.count(chr(10)) - 2} codes"
        )
