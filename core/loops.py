"""Running a background loop as a management command: stop cleanly on SIGINT / SIGTERM."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def run_until_signalled(loop: Callable[[threading.Event], None]) -> None:
    """Call `loop(stop)`; SIGINT or SIGTERM sets `stop`, so the loop finishes its tick and
    returns instead of dying inside a transaction."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    loop(stop)
