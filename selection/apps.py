import os

from django.apps import AppConfig


class SelectionConfig(AppConfig):
    name = "selection"
    verbose_name = "网上选房"

    def ready(self) -> None:
        # The embedded quick start runs the clock and the log's sequencer inside the server
        # (make demo sets this).
        if os.environ.get("ANJU_WORKERS_IN_PROCESS") == "1":
            from selection.clock import clock_start_in_process
            from selection.translog import sequencer_start_in_process

            clock_start_in_process()
            sequencer_start_in_process()
