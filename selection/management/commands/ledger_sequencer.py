from django.core.management.base import BaseCommand

from core.loops import run_until_signalled
from selection.translog import TICK_SECONDS, sequence_pending, sequencer_run


class Command(BaseCommand):
    help = (
        "Sequence the allocation log: index committed entries, extend the Merkle tree and sign "
        "tree heads (safe to run twice: the second takes turns and finds nothing to do)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--tick", type=float, default=TICK_SECONDS)
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args, tick: float, once: bool, **options):
        if once:
            heads = sequence_pending()
            self.stdout.write(f"signed {len(heads)} head(s)")
            return
        self.stdout.write(f"ledger sequencer running (tick {tick}s)")
        run_until_signalled(lambda stop: sequencer_run(stop=stop, tick=tick))
