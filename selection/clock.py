"""The clock: opens sessions whose window started and closes (auto-assigns) sessions whose
window ended, with no request arriving; then runs the other domains' deadline tasks
(settings.CLOCK_EXTRA_TASKS, e.g. voiding agreements unsigned at their window's end). Runs as `manage.py selection_clock`
(one or more processes: the services make every transition exactly once) or, in the
embedded quick start, as a thread inside the server (ANJU_WORKERS_IN_PROCESS=1)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from core.loops import loop_every, start_in_process
from selection.allocation import (
    CloseReport,
    rounds_announce_preselect,
    sessions_close_due,
    sessions_last_call_due,
    sessions_open_due,
)

logger = logging.getLogger("anju.clock")
TICK_SECONDS = 0.25  # closes each due session within about a quarter of a second


def clock_tick(*, now: datetime | None = None) -> tuple[list[int], list[CloseReport]]:
    now = now or timezone.now()
    rounds_announce_preselect(now=now)
    opened = sessions_open_due(now=now)
    sessions_last_call_due(now=now)
    closed = sessions_close_due(now=now)
    for session_id in opened:
        logger.info("session %s opened", session_id)
    for report in closed:
        logger.info(
            "session %s closed: %d auto-assigned, %d without unit, %d absent",
            report.session_id,
            len(report.assigned),
            len(report.no_unit),
            len(report.absent),
        )
    return opened, closed


def clock_run(
    *,
    stop: threading.Event,
    tick: float = TICK_SECONDS,
    after_tick: Callable[[list[int], list[CloseReport]], None] | None = None,
) -> None:
    """Tick until `stop` is set. A failing tick (database away, a deadlock victim) is logged
    and retried on the next tick: every transition is idempotent. `after_tick` hears what
    each tick opened and closed (the realtime layer and tests listen here)."""

    def step() -> None:
        opened, closed = clock_tick()
        for task in settings.CLOCK_EXTRA_TASKS:  # other domains' deadlines (signing windows)
            import_string(task)(now=timezone.now())
        if after_tick is not None:
            after_tick(opened, closed)

    loop_every(stop=stop, tick=tick, step=step, logger=logger, what="clock tick")


def clock_start_in_process() -> None:
    """The embedded quick start's clock: a daemon thread inside the server process."""
    start_in_process("selection-clock", clock_run)
