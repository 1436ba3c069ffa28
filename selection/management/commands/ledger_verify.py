from django.core.management.base import BaseCommand, CommandError

from selection.translog import log_verify, logs_verify


class Command(BaseCommand):
    help = (
        "Check each round's allocation log as stored: leaf hashes, the Merkle tree, every "
        "signed head (with the configured key) and the allocations' entries."
    )

    def add_arguments(self, parser):
        parser.add_argument("--round", type=int, help="one round (default: every round)")

    def handle(self, *args, round: int | None, **options):
        results = [log_verify(round_id=round)] if round else logs_verify()
        bad = [r for r in results if r.first_bad is not None]
        for r in results:
            if r.first_bad is None:
                self.stdout.write(f"round {r.round_id}: log ok, {r.checked} entries verified")
        if bad:
            r = bad[0]
            raise CommandError(
                f"round {r.round_id}: log BAD at index {r.first_bad}: {r.reason} "
                f"({r.checked} entries read)"
            )
