from django.core.management.base import BaseCommand

from core.loops import run_until_signalled
from sms.services import OUTBOX_INTERVAL, sms_outbox_loop, sms_outbox_run_due


class Command(BaseCommand):
    help = (
        "Deliver due SMS outbox messages (login codes and notices left to the worker, "
        "retries, lost after-commit sends); --loop to keep going."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true")
        parser.add_argument("--interval", type=float, default=OUTBOX_INTERVAL)

    def handle(self, *args, loop: bool, interval: float, **options):
        if not loop:
            count = sms_outbox_run_due()
            self.stdout.write(f"attempted {count} message(s)")
            return
        self.stdout.write(f"SMS outbox running (every {interval}s)")
        run_until_signalled(lambda stop: sms_outbox_loop(stop=stop, interval=interval))
