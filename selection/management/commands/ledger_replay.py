from django.core.management.base import BaseCommand, CommandError

from selection.replay import session_replay


class Command(BaseCommand):
    help = "Replay a closed session's auto-assign from the ledger and carts; compare with stored results."

    def add_arguments(self, parser):
        parser.add_argument("--session", type=int, required=True, help="session id")

    def handle(self, *args, session: int, **options):
        report = session_replay(session_id=session)
        for problem in report.problems:
            self.stderr.write(problem)
        if not report.ok:
            raise CommandError(f"replay of session {session} does NOT reproduce the stored result")
        self.stdout.write(
            f"replay of session {session} reproduces the stored result: "
            f"{report.families} families auto-processed, {report.assigned} assigned"
        )
