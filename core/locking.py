"""Row locks with a timeout: the one way domain services take `SELECT ... FOR UPDATE`.

Every lock a service takes goes through these helpers so that
- the wait is bounded: `SET LOCAL lock_timeout` (settings.LOCK_TIMEOUT_MS) is set for the rest
  of the transaction before the first lock, so a burst queues for at most that long instead of
  without bound (pretix does the same around its quota locks);
- a timeout is a domain refusal, `Busy` (kind "unavailable": 503 with Retry-After in the API),
  never a 500 and never a half-done write (the transaction is rolled back as Busy leaves it);
- rows of one table are locked in a declared order (primary key by default), so two services
  that lock several rows of the same table cannot deadlock on each other.

Lock order across tables stays what each service declares (family before unit before ledger
head, and so on); these helpers only take the locks, in the order they are called.

SQLite (used by a few quick tests) has no row locks and no lock_timeout: the helpers then only
evaluate the query.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import OperationalError, connection, models, transaction

from core.errors import Unavailable

LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired (psycopg LockNotAvailable)
DEFAULT_LOCK_TIMEOUT_MS = 3000


class Busy(Unavailable):
    """A lock could not be taken in time: the request is refused whole; the page retries."""

    kind = "unavailable"
    code = "busy"
    message = "系统繁忙，请稍后重试"

    def __init__(self, *args: Any, retry_after: int | None = 1, **kwargs: Any) -> None:
        super().__init__(*args, retry_after=retry_after, **kwargs)


def lock_timeout_ms() -> int:
    return int(getattr(settings, "LOCK_TIMEOUT_MS", DEFAULT_LOCK_TIMEOUT_MS))


def is_lock_timeout(exc: BaseException) -> bool:
    """True for PostgreSQL's "lock timeout" error (SQLSTATE 55P03), however it is wrapped."""
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__ or exc
    return getattr(cause, "sqlstate", None) == LOCK_NOT_AVAILABLE or (
        getattr(cause, "pgcode", None) == LOCK_NOT_AVAILABLE
    )


def _set_lock_timeout() -> None:
    if connection.vendor != "postgresql":
        return
    assert transaction.get_connection().in_atomic_block, "row locks need a transaction"
    with connection.cursor() as cursor:
        # SET does not take bind parameters; the value is an int from settings.
        cursor.execute(f"SET LOCAL lock_timeout = '{lock_timeout_ms():d}ms'")


@contextmanager
def lock_guard() -> Iterator[None]:
    """Bound the lock waits of the current transaction; a timeout inside becomes Busy."""
    _set_lock_timeout()
    try:
        yield
    except OperationalError as exc:
        if is_lock_timeout(exc):
            raise Busy() from exc
        raise


def _queryset(source: type[models.Model] | models.Manager | models.QuerySet) -> models.QuerySet:
    if isinstance(source, models.QuerySet):
        return source
    if isinstance(source, models.Manager):
        return source.all()
    return source._default_manager.all()


def lock_rows(
    source: type[models.Model] | models.Manager | models.QuerySet,
    pks: Iterable[Any] | None = None,
    *,
    order_by: Iterable[str] = ("pk",),
    of: tuple[str, ...] = (),
) -> list:
    """Lock every row of `source` (optionally only `pks`) in `order_by` order; return them."""
    qs = _queryset(source)
    if pks is not None:
        qs = qs.filter(pk__in=list(pks))
    with lock_guard():
        return list(qs.select_for_update(of=of).order_by(*order_by))


def lock_first(
    source: type[models.Model] | models.Manager | models.QuerySet,
    *,
    skip_locked: bool = False,
    no_key: bool = False,
    of: tuple[str, ...] = (),
) -> Any:
    """Lock the first row of `source` (in its own ordering) and return it, or None.

    `no_key=True` takes FOR NO KEY UPDATE: enough to change non-key columns, and it lets
    other transactions insert rows that reference the locked one (FOR KEY SHARE)."""
    with lock_guard():
        return (
            _queryset(source)
            .select_for_update(skip_locked=skip_locked, no_key=no_key, of=of)
            .first()
        )


def lock_get(
    source: type[models.Model] | models.Manager | models.QuerySet,
    *,
    of: tuple[str, ...] = (),
    **lookup: Any,
) -> Any:
    """Lock exactly one row (`.get(**lookup)`: DoesNotExist / MultipleObjectsReturned as usual)."""
    with lock_guard():
        return _queryset(source).select_for_update(of=of).get(**lookup)
