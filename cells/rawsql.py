"""The asyncpg executor: Core statements compiled once per shape, run on asyncpg's connection.

SQLAlchemy's ``execute`` computes a cache key, looks the compiled form up and wraps the
result on every call: about 0.3 ms of CPU for a one-row query, more than the query costs,
and about half of a small keyset query's cost. So on PostgreSQL every statement is compiled
into positional SQL (:func:`compile_for_asyncpg`) once per query shape, kept in the
executor's :class:`CompileCache`, and run with the driver's ``fetch``; the SQL still comes
from Core. The shapes: the keyset query per order, filter set, column list and NULL pattern
(:meth:`cells.plan.QueryPlan.bind`), the marker's row, the side-data union, the show row,
the API database's lookups.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import cast

from cachetools import LRUCache
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.util import greenlet_spawn

from cells.executor import SEEN_AT, Query, SqlAlchemyExecutor
from cells.order import Row

__all__ = [
    "SQL_CACHE_SIZE",
    "AsyncpgExecutor",
    "CompileCache",
    "Pooled",
    "RawSql",
    "compile_for_asyncpg",
]

log = logging.getLogger(__name__)

# Query shapes kept compiled per cell: an entry is the SQL text, its bind names and a few
# constants (~2-4 KiB); a statement with more than SQL_CACHE_MAX_BINDS binds (a long uuid
# list, say) is not kept, so a cache stays ~2 MiB.
SQL_CACHE_SIZE = 512
SQL_CACHE_MAX_BINDS = 64
# How long after its deadline a cancelled call may spend closing its connection before the
# transport is aborted (a hung server never answers the cancel request).
_ABORT_GRACE_S = 0.05


@dataclass(frozen=True, slots=True)
class RawSql:
    """Positional SQL, its parameters' names in order and the constant ones' values."""

    sql: str
    names: tuple[str, ...]
    constants: Mapping[str, object]

    def args(self, values: Mapping[str, object]) -> list[object]:
        """The positional arguments: ``values`` by name, the rest the constants."""
        return [values[n] if n in values else self.constants[n] for n in self.names]


def compile_for_asyncpg(
    statement: ClauseElement, dialect: Dialect | None = None, *, literal: bool = False
) -> RawSql:
    """``statement`` as asyncpg SQL (``$1``… placeholders, expanding IN lists rendered), for
    ``dialect`` (an engine's asyncpg dialect; default a fresh one); ``literal``: every value
    written into the SQL, no parameter left (only for values of the gateway's own)."""
    compiled = statement.compile(
        dialect=dialect or asyncpg_dialect(),  # type: ignore[no-untyped-call]  # SQLAlchemy's asyncpg dialect constructor is unannotated
        compile_kwargs={"render_postcompile": True, "literal_binds": literal},
    )
    assert isinstance(compiled, SQLCompiler)
    return RawSql(str(compiled), tuple(compiled.positiontup or ()), dict(compiled.params))


class CompileCache:
    """A bounded LRU of compiled statements per query shape (cachetools' ``LRUCache``; one
    event loop uses it, so no lock, cachetools' caches being not thread-safe)."""

    def __init__(self, size: int = SQL_CACHE_SIZE, max_binds: int = SQL_CACHE_MAX_BINDS) -> None:
        self.max_binds = max_binds
        self._entries: LRUCache[Hashable, RawSql] = LRUCache(size)

    @property
    def size(self) -> int:
        """The most entries kept."""
        return int(self._entries.maxsize)

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> RawSql | None:
        """The entry for ``key``, now the most recently used; ``None`` when absent."""
        return self._entries.get(key)

    def put(self, key: Hashable, entry: RawSql) -> None:
        """Keep ``entry`` (unless it has too many binds), evicting the least recently used."""
        if len(entry.names) > self.max_binds:
            return
        self._entries[key] = entry

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()


@dataclass(frozen=True, slots=True)
class Pooled:
    """A connection checked out of the engine's pool as SQLAlchemy's proxy (no
    ``AsyncConnection`` around it), and asyncpg's connection under it."""

    proxy: PoolProxiedConnection
    driver: object


def _drop_proxy(proxy: PoolProxiedConnection) -> None:
    """Invalidate (the pool closes it and never hands it out again) and check in; run
    in SQLAlchemy's greenlet, as closing awaits the driver."""
    proxy.invalidate()
    proxy.close()


class AsyncpgExecutor(SqlAlchemyExecutor):
    """PostgreSQL through asyncpg: compiled SQL on the driver's connection.

    At the deadline ``asyncio.timeout`` cancels the call and asyncpg asks the server to
    cancel the query (the server's ``statement_timeout`` is the backstop); a hung server
    (SIGSTOP, a dead host) never answers, so the transport is aborted after a short grace
    rather than waiting for SQLAlchemy's graceful close (2 s, hard-coded).
    """

    binds_arrays = True

    def __init__(self, engine: AsyncEngine, cache: CompileCache | None = None) -> None:
        super().__init__(engine)
        self.cache = cache if cache is not None else CompileCache()

    async def connect(self) -> object:
        """A pooled connection as the pool's proxy (:class:`Pooled`): the same pool, the
        same connections and the same distrust as the ``AsyncConnection`` the generic
        executor takes, in one greenlet switch instead of three (checkout, the driver's
        connection, return: 42 → 25 µs of CPU per call measured, on every cell of every
        page). Errors of the driver at connect come wrapped as SQLAlchemy's own
        ``Connection`` would have them, so they are classified alike (:mod:`cells.faults`).
        """
        dialect = self._engine.dialect
        while True:
            try:
                proxy = await self._engine.raw_connection()
            except dialect.loaded_dbapi.Error as exc:
                raise DBAPIError.instance(
                    None, None, exc, dialect.loaded_dbapi.Error, dialect=dialect
                ) from exc
            driver = proxy.driver_connection
            if driver is None:
                await asyncio.shield(greenlet_spawn(_drop_proxy, proxy))
                raise ConnectionError("the pool handed out a closed connection")
            seen = proxy.info.setdefault(SEEN_AT, time.monotonic())
            if seen >= self._distrust_before:
                return Pooled(proxy, driver)
            await asyncio.shield(self._drop_pooled(proxy, driver))

    async def release(self, conn: object) -> None:
        """Back to the pool (in a greenlet: a connection past the pool's size is closed)."""
        await greenlet_spawn(cast(Pooled, conn).proxy.close)

    async def discard(self, conn: object) -> None:
        """Terminate, invalidate and check in: the pool never hands it out again."""
        pooled = cast(Pooled, conn)
        await self._drop_pooled(pooled.proxy, pooled.driver)

    async def _drop_pooled(self, proxy: PoolProxiedConnection, driver: object) -> None:
        try:
            self._terminate(driver)
            await greenlet_spawn(_drop_proxy, proxy)
        except Exception:  # the connection is already broken; nothing more to release
            log.debug("discarding a broken connection", exc_info=True)

    def prepare(self, key: Hashable | None, build: Callable[[], Query]) -> object:
        """``build()`` compiled for the engine's dialect, from the cache when ``key`` is
        known (``build`` is then not called)."""
        if key is None:
            return compile_for_asyncpg(build(), self._engine.dialect)
        entry = self.cache.get(key)
        if entry is None:
            entry = compile_for_asyncpg(build(), self._engine.dialect)
            self.cache.put(key, entry)
        return entry

    def prepare_once(self, key: Hashable, build: Callable[[], Query]) -> object:
        """``build()`` with its values written into the SQL: a statement without
        parameters, which PostgreSQL plans once per connection and keeps, whatever the
        ``plan_cache_mode`` (:mod:`cells.plan`); ``build`` must hold only the gateway's own
        values, never a request's."""
        once = ("once", key)
        entry = self.cache.get(once)
        if entry is None:
            entry = compile_for_asyncpg(build(), self._engine.dialect, literal=True)
            self.cache.put(once, entry)
        return entry

    async def fetch(
        self, conn: object, prepared: object, values: Mapping[str, object]
    ) -> list[Row]:
        """The records of ``prepared`` run on asyncpg, as dicts."""
        raw = cast(RawSql, prepared)
        driver = cast(Pooled, conn).driver
        records = await driver.fetch(raw.sql, *raw.args(values))  # type: ignore[attr-defined]  # asyncpg's connection (asyncpg has no type hints)
        return [dict(record) for record in records]

    def at_deadline(
        self, conn: object, deadline: float, timeout_s: float
    ) -> asyncio.TimerHandle | None:
        """Abort the transport shortly after the deadline."""
        terminate = cast(Callable[[], None], cast(Pooled, conn).driver.terminate)  # type: ignore[attr-defined]  # asyncpg's connection (asyncpg has no type hints)
        grace = min(_ABORT_GRACE_S, 0.05 * timeout_s)
        return asyncio.get_running_loop().call_at(deadline + grace, terminate)

    def _terminate(self, driver: object) -> None:
        driver.terminate()  # type: ignore[attr-defined]  # asyncpg's connection (asyncpg has no type hints)
