from django.core.management.base import BaseCommand

from core.loops import run_until_signalled
from selection.clock import TICK_SECONDS, clock_run


class Command(BaseCommand):
    help = "Open and close selection sessions on time (auto-assign at each deadline)."

    def add_arguments(self, parser):
        parser.add_argument("--tick", type=float, default=TICK_SECONDS)

    def handle(self, *args, tick: float, **options):
        self.stdout.write(f"selection clock running (tick {tick}s)")
        run_until_signalled(lambda stop: clock_run(stop=stop, tick=tick))
