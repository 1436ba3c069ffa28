import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from selection.translog import ledger_export


class Command(BaseCommand):
    help = (
        "Write a round's allocation log for offline checking with tools/verify.py: entries, "
        "signed heads, the public key, the carts at each close and a manifest "
        "(docs/TRANSPARENCY.md)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--round", type=int, required=True, dest="round_id")
        parser.add_argument("directory")

    def handle(self, *args, round_id: int, directory: str, **options):
        try:
            manifest = ledger_export(round_id=round_id, directory=Path(directory))
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"exported {manifest['entries']} entries and {manifest['heads']} signed heads of "
            f"{manifest['log']} to {directory}\n" + json.dumps(manifest["files"], indent=1)
        )
