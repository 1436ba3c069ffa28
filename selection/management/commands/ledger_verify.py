from django.core.management.base import BaseCommand, CommandError

from selection.ledger import ledger_verify


class Command(BaseCommand):
    help = "Recompute the allocation ledger's hash chain; report the first bad row."

    def handle(self, *args, **options):
        result = ledger_verify()
        if result.first_bad_seq is not None:
            raise CommandError(
                f"ledger BAD at seq {result.first_bad_seq}: {result.reason} "
                f"({result.checked} entries verified before it)"
            )
        self.stdout.write(f"ledger ok: {result.checked} entries verified")
