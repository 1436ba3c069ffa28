import time

from django.core.management.base import BaseCommand

from sms.services import sms_outbox_run_due


class Command(BaseCommand):
    help = (
        "Deliver due SMS outbox messages (retries, lost after-commit sends); --loop to keep going."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true")
        parser.add_argument("--interval", type=float, default=2.0)

    def handle(self, *args, loop: bool, interval: float, **options):
        while True:
            count = sms_outbox_run_due()
            if count:
                self.stdout.write(f"attempted {count} message(s)")
            if not loop:
                return
            time.sleep(interval)
