"""Background loops: as a management command (stop cleanly on SIGINT / SIGTERM), or as a
daemon thread inside the server for the embedded quick start."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from django.db import OperationalError, close_old_connections

from core.wakeup import Wakeup


def run_until_signalled(loop: Callable[[threading.Event], None]) -> None:
    """Call `loop(stop)`; SIGINT or SIGTERM sets `stop`, so the loop finishes its tick and
    returns instead of dying inside a transaction."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    loop(stop)


# How long a loop woken by its rows' commits (`wake_on`) waits before it looks anyway.
IDLE_SECONDS = 1.0


def loop_every(
    *,
    stop: threading.Event,
    tick: float,
    step: Callable[[], object],
    logger: logging.Logger,
    what: str,
    wake_on: str | None = None,
    idle: float | None = None,
) -> None:
    """Call `step` every `tick` seconds until `stop` is set. A failing pass (the database away,
    a deadlock victim) is logged and retried on the next one: every step is idempotent.

    With `wake_on`, a channel of core/wakeup.py, on PostgreSQL: between passes the loop waits
    for the commit of the rows its step works on, up to `idle` seconds, instead of looking
    every `tick` — no query while nothing happens, the next pass as the rows commit — and
    never starts passes closer than `tick`, so a burst is still taken in batches. `idle`
    defaults to IDLE_SECONDS."""
    idle = IDLE_SECONDS if idle is None else idle
    wakeup = Wakeup.open(wake_on) if wake_on else None
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                close_old_connections()
                step()
            except OperationalError as exc:
                logger.warning("%s failed, retrying: %s", what, exc)
            except Exception:
                logger.exception("%s crashed, retrying", what)
            pace(stop, wakeup, started=started, tick=tick, idle=idle)
    finally:
        if wakeup is not None:
            wakeup.close()


def pace(
    stop: threading.Event, wakeup: Wakeup | None, *, started: float, tick: float, idle: float
) -> None:
    """The wait after a pass that began at `started`: `tick` without a wake-up; with one, until
    a notification (or `idle`), then whatever is left of `tick` since `started`."""
    if wakeup is not None:
        wakeup.wait(stop, idle)
    rest = started + tick - time.monotonic()
    if rest > 0:
        stop.wait(rest)


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
