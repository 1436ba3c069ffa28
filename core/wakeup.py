"""Waking a background loop when the rows it works on are committed (PostgreSQL LISTEN /
NOTIFY) instead of asking the database ten times a second whether there are any.

A trigger on the table (a migration of the table's app) sends `NOTIFY <channel>` for every
statement that inserts rows. PostgreSQL delivers it at the commit of that transaction and only
then (never for a rollback), so a woken loop finds the rows it was woken for. Several commits
before the loop looks again reach it as one wake-up or a few.

Only a listening connection can lose a notification (it drops: a restart, a network cut), and
then only while it is down: `Wakeup.wait` opens and LISTENs again, and returns at once so that
the caller looks for what was committed meanwhile. The callers still look every `idle`
seconds whatever happens, which bounds any other surprise. On SQLite (the embedded quick start,
whose loops are threads of the server) there is nothing to listen to, and the loops poll.
"""

from __future__ import annotations

import logging
import threading
import time

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger("anju.wakeup")

# Channels, one per table whose inserts a loop waits for (the triggers' migrations name them).
EVENTS_CHANNEL = "anju_events"  # events.Event: the realtime relay
LEDGER_CHANNEL = "anju_ledger"  # selection.LedgerEntry: the allocation log's sequencer

# How often a waiting loop notices that it was asked to stop: the wait is cut into slices.
SLICE_SECONDS = 0.25


class Wakeup:
    """A connection of its own that LISTENs on `channel` (autocommit, no other statement)."""

    def __init__(self, channel: str, *, using: str = DEFAULT_DB_ALIAS) -> None:
        self.channel = channel
        self.using = using
        self._db: BaseDatabaseWrapper | None = None
        self._unreachable = False  # said so once; the caller tries again on every tick
        self._listen()  # before the caller's first look: nothing falls between the two

    @classmethod
    def open(cls, channel: str, *, using: str = DEFAULT_DB_ALIAS) -> Wakeup | None:
        """A wake-up on `channel`, or None where the database cannot notify (SQLite)."""
        if connections[using].vendor != "postgresql":
            return None
        return cls(channel, using=using)

    @property
    def listening(self) -> bool:
        return self._db is not None

    def _listen(self) -> bool:
        db = connections.create_connection(self.using)
        try:
            db.ensure_connection()
            db.connection.autocommit = True
            db.connection.execute(f'LISTEN "{self.channel}"')
        except Exception as exc:
            db.close()
            # Once per outage: the caller's loop tries again on each of its ticks.
            log = logger.debug if self._unreachable else logger.warning
            log("cannot listen on %s (looking on every tick): %s", self.channel, exc)
            self._unreachable = True
            return False
        if self._unreachable:
            logger.warning("listening on %s again", self.channel)
            self._unreachable = False
        self._db = db
        return True

    def wait(self, stop: threading.Event, timeout: float) -> bool:
        """Until a notification, `timeout` seconds or `stop`, whichever comes first; True when
        the caller should look now (notified, or listening again after a dropped connection).
        A connection that cannot be opened returns at once: the caller's own pace then
        applies, as without a wake-up."""
        if self._db is None:
            return self._listen()
        deadline = time.monotonic() + timeout
        try:
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                notified = False
                for _ in self._db.connection.notifies(
                    timeout=min(SLICE_SECONDS, left), stop_after=1
                ):
                    notified = True
                if notified:
                    # Whatever else has arrived goes with this wake-up.
                    for _ in self._db.connection.notifies(timeout=0):
                        pass
                    return True
            return False
        except Exception as exc:  # the connection dropped: listen again on the next wait
            logger.warning("lost the listening connection on %s: %s", self.channel, exc)
            self.close()
            return True

    def close(self) -> None:
        if self._db is not None:
            try:
                self._db.close()
            except Exception:  # already broken: nothing to release
                logger.debug("closing the listening connection failed", exc_info=True)
            self._db = None


def notify_on_insert(table: str, channel: str):
    """The migration operation that makes every statement inserting into `table` NOTIFY
    `channel` (PostgreSQL; nothing on SQLite, whose loops poll). Used by migrations: change
    it only by adding a migration, never by editing what an applied one did."""
    from django.db import migrations

    function = f"{table}_notify_fn"

    def create(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(
            f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN PERFORM pg_notify('{channel}', ''); RETURN NULL; END $$"
        )
        schema_editor.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
        )

    def drop(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {function}()")

    return migrations.RunPython(create, drop)
