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
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import cast

from cachetools import LRUCache
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from cells.executor import Link, Query, SqlAlchemyExecutor
from cells.order import Row

__all__ = ["SQL_CACHE_SIZE", "AsyncpgExecutor", "CompileCache", "RawSql", "compile_for_asyncpg"]

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
        driver = cast(Link, conn).driver
        records = await driver.fetch(raw.sql, *raw.args(values))  # type: ignore[attr-defined]  # asyncpg's connection (asyncpg has no type hints)
        return [dict(record) for record in records]

    def at_deadline(
        self, conn: object, deadline: float, timeout_s: float
    ) -> asyncio.TimerHandle | None:
        """Abort the transport shortly after the deadline."""
        terminate = cast(Callable[[], None], cast(Link, conn).driver.terminate)  # type: ignore[attr-defined]  # asyncpg's connection (asyncpg has no type hints)
        grace = min(_ABORT_GRACE_S, 0.05 * timeout_s)
        return asyncio.get_running_loop().call_at(deadline + grace, terminate)

    def _terminate(self, driver: object) -> None:
        driver.terminate()  # type: ignore[attr-defined]  # asyncpg's connection (asyncpg has no type hints)
