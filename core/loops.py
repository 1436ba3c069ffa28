"""Background loops: as a management command (stop cleanly on SIGINT / SIGTERM), or as a
daemon thread inside the server for the embedded quick start."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

from django.db import OperationalError, close_old_connections


def run_until_signalled(loop: Callable[[threading.Event], None]) -> None:
    """Call `loop(stop)`; SIGINT or SIGTERM sets `stop`, so the loop finishes its tick and
    returns instead of dying inside a transaction."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    loop(stop)


def loop_every(
    *,
    stop: threading.Event,
    tick: float,
    step: Callable[[], object],
    logger: logging.Logger,
    what: str,
) -> None:
    """Call `step` every `tick` seconds until `stop` is set. A failing pass (the database away,
    a deadlock victim) is logged and retried on the next one: every step is idempotent."""
    while not stop.is_set():
        try:
            close_old_connections()
            step()
        except OperationalError as exc:
            logger.warning("%s failed, retrying: %s", what, exc)
        except Exception:
            logger.exception("%s crashed, retrying", what)
        stop.wait(tick)


_in_process: dict[str, threading.Thread] = {}


def start_in_process(name: str, target: Callable[..., None]) -> None:
    """Run `target(stop=...)` in a daemon thread of this process, once per name (the quick
    start's clock, sequencer and SMS outbox live inside the server)."""
    if name not in _in_process:
        thread = threading.Thread(
            target=target, kwargs={"stop": threading.Event()}, name=name, daemon=True
        )
        _in_process[name] = thread
        thread.start()
