"""PostgreSQL from the event loop, for the few requests answered ahead of Django (the confirm,
mobile_api/confirm_route.py), without Django's per-request thread hand-off.

Two parts:

- `connection()`: a psycopg `AsyncConnectionPool` per event loop, on the same database,
  user and adapters as Django's own connections (Django's connection parameters and adapter
  context, so rows load exactly as the ORM loads them), autocommit, statements prepared by
  the server after `PREPARE_THRESHOLD` uses like Django's own (server-side binding).

- `Compiled`: a queryset compiled to SQL once per process, run on that pool with new
  arguments, and turned back into model instances by Django's own machinery (the compiler's
  converters, `from_db`, the select_related populators and annotations: what
  `ModelIterable` does). The queryset is written once with the ORM, where the rule lives;
  its SQL text is the same on every call, so the server prepares it. Arguments are placed by
  building the queryset once with distinct stand-in values and finding them in the
  compiled parameters (an argument may be used several times); a build whose parameters
  do not show every stand-in is refused at compile time.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import QuerySet
from django.db.models.query import get_related_populators

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()


def available() -> bool:
    """True when the default database is PostgreSQL (the only one with an async path)."""
    return connections["default"].vendor == "postgresql"


def _connect_kwargs() -> dict:
    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)  # Django's sync cursor class
    params.pop("pool", None)
    threshold = params.pop("prepare_threshold", None)
    # Django's ORM connections use UTC; the adapters convert, this keeps the text the same.
    params["options"] = (params.get("options", "") + " -c TimeZone=UTC").strip()
    return {"kwargs": params, "prepare_threshold": threshold}


async def _pool():
    loop = asyncio.get_running_loop()
    pool = _pools.get(loop)
    if pool is None:
        from psycopg import AsyncConnection
        from psycopg_pool import AsyncConnectionPool

        found = _connect_kwargs()
        threshold = found["prepare_threshold"]

        async def configure(conn: AsyncConnection) -> None:
            conn.prepare_threshold = threshold  # None: never prepared, as Django's own
            await conn.set_autocommit(True)

        pool = AsyncConnectionPool(
            kwargs=found["kwargs"],
            min_size=1,
            max_size=settings.ASYNC_DB_POOL_SIZE,
            timeout=settings.ASYNC_DB_POOL_TIMEOUT,
            configure=configure,
            open=False,
            name="anju-async",
        )
        _pools[loop] = pool
        await pool.open()
    return pool


def connection():
    """`async with connection() as conn:` an autocommit connection of this loop's pool."""
    return _PoolConnection()


class _PoolConnection:
    async def __aenter__(self):
        self._cm = (await _pool()).connection()
        return await self._cm.__aenter__()

    async def __aexit__(self, *exc):
        return await self._cm.__aexit__(*exc)


async def close() -> None:
    """Close this loop's pool (tests end their loops; servers keep theirs)."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.close()


class _Stand:
    """Distinct stand-in values, one per argument kind, that survive field preparation."""

    def __init__(self) -> None:
        self._n = 0

    def __call__(self, kind: type) -> Any:
        self._n += 1
        if kind is int:
            return -7_300_000_000 - self._n
        if kind is str:
            return f"\x1fanju-stand-in-{self._n}\x1f"
        if kind is datetime:
            return datetime(1901, 1, 1, tzinfo=UTC) + timedelta(microseconds=self._n)
        raise TypeError(f"no stand-in for {kind!r}")


class Compiled:
    """A queryset compiled once: `Compiled(build, family=int, now=datetime)` where
    `build(family=..., now=...)` returns the queryset; `await compiled.fetch(conn, family=3,
    now=t)` returns its model instances."""

    def __init__(self, build: Callable[..., QuerySet], **kinds: type) -> None:
        self._build = build
        self._kinds = kinds
        self._ready: tuple | None = None

    def _compile(self) -> tuple:
        stand = _Stand()
        values = {name: stand(kind) for name, kind in self._kinds.items()}
        queryset = self._build(**values)
        compiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        by_value = {value: name for name, value in values.items()}
        order: list[tuple[bool, Any]] = []
        seen: list[str] = []
        for param in params:
            name = by_value.get(param) if isinstance(param, int | str | datetime) else None
            if name is not None and not isinstance(param, bool):
                order.append((True, name))
                seen.append(name)
            else:
                order.append((False, param))
        if set(seen) != set(values):
            raise ValueError(f"compiled query's parameters show {seen}, not each of {values}")
        select, klass_info = compiler.select, compiler.klass_info
        fields = klass_info["select_fields"]
        start, end = fields[0], fields[-1] + 1
        init_list = [column[0].target.attname for column in select[start:end]]
        # (django-stubs describes a later Django, with a fetch_mode argument)
        populators = get_related_populators(klass_info, select, queryset.db)  # type: ignore[call-arg]
        converters = compiler.get_converters([column[0] for column in select])
        self._ready = (
            sql,
            order,
            (compiler, converters),
            klass_info["model"],
            (start, end),
            init_list,
            populators,
            compiler.annotation_col_map or {},
            queryset.db,
        )
        return self._ready

    def compile(self) -> None:
        """Compile now (at import or startup), so the first request does not."""
        if self._ready is None:
            self._compile()

    async def fetch(self, conn, **arguments: Any) -> list:
        (
            sql,
            order,
            (compiler, converters),
            model,
            (start, end),
            init_list,
            populators,
            annotations,
            db,
        ) = self._ready or self._compile()
        params = [arguments[value] if is_arg else value for is_arg, value in order]
        cursor = await conn.execute(sql, params)
        rows = await cursor.fetchall()
        objects = []
        if converters:
            rows = compiler.apply_converters(rows, converters)
        for row in rows:
            obj = model.from_db(db, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            for name, position in annotations.items():
                setattr(obj, name, row[position])
            objects.append(obj)
        return objects
