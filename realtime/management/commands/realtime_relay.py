from django.core.management.base import BaseCommand

from core.loops import run_until_signalled
from realtime.relay import TICK_SECONDS, relay_run


class Command(BaseCommand):
    help = "Publish committed events from the outbox to the channel layer (coalesced per tick)."

    def add_arguments(self, parser):
        parser.add_argument("--tick", type=float, default=TICK_SECONDS)

    def handle(self, *args, tick: float, **options):
        self.stdout.write(f"event relay running (tick {tick}s)")
        run_until_signalled(lambda stop: relay_run(stop=stop, tick=tick))
