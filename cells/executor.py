"""How one database driver runs the gateway's statements: the :class:`Executor` protocol.

A cell's driver is decided once, when its client is built (:func:`cells.registry.executor_for`);
everything above the executor — the deadline and probe (:mod:`cells.session`), the breaker
and the calls (:mod:`cells.client`), the API database (:mod:`cells.apidb`) — is the same
for every driver. An executor does four things:

* **prepare**: turn a Core statement (built with named bind parameters) into what its
  driver runs, kept per query shape when the caller gives a key (its compile cache);
* **fetch**: run a prepared statement on a connection with values for its binds, and
  return plain ``dict`` rows;
* **at_deadline**: what stops the database's work when a call's deadline passes (asyncpg:
  abort the transport; SQLite: interrupt the statement; a server-enforced statement time:
  nothing);
* **discard**: drop a connection that failed or was cancelled mid-query, so the pool never
  hands it out again;

plus the pool's ``connect``/``release``/``dispose``. Connections and prepared statements
are opaque to callers: only the executor that made one reads it.

This module holds the protocol and the generic executors that run statements through
SQLAlchemy's ``execute`` (its compiled cache, per engine, is their compile cache);
:mod:`cells.rawsql` holds the asyncpg one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import CompoundSelect, Select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cells.order import Row, SqlValue

__all__ = ["SEEN_AT", "Executor", "Link", "Query", "SqlAlchemyExecutor", "SqliteExecutor"]

log = logging.getLogger(__name__)
SEEN_AT = "cellgate_seen_at"  # monotonic time a pooled connection was first handed out

Query = Select[Any] | CompoundSelect[Any]
"""A Core statement an executor can prepare."""


class Executor(Protocol):
    """One driver's way of running statements on one database (see the module docstring)."""

    @property
    def engine(self) -> AsyncEngine:
        """The pool (for tools that read the database outside the client)."""
        ...

    @property
    def binds_arrays(self) -> bool:
        """Whether a list binds as one array parameter (``= ANY($1)``), else an IN list."""
        ...

    def prepare(self, key: Hashable | None, build: Callable[[], Query]) -> object:
        """``build()`` ready to run; kept under ``key`` (a query shape) unless ``None``."""
        ...

    async def connect(self) -> object:
        """A connection from the pool."""
        ...

    def distrust_idle(self) -> None:
        """The database lost a connection (refused, reset, closed): the pool's idle ones
        from before are likely gone too (a restarted server), so :meth:`connect` drops them
        instead of handing them out."""
        ...

    async def fetch(
        self, conn: object, prepared: object, values: Mapping[str, object]
    ) -> list[Row]:
        """Run ``prepared`` with ``values`` for its named binds; its rows as dicts."""
        ...

    def at_deadline(
        self, conn: object, deadline: float, timeout_s: float
    ) -> asyncio.TimerHandle | None:
        """Schedule (loop time) what stops ``conn``'s statement when the deadline passes."""
        ...

    async def release(self, conn: object) -> None:
        """Return an idle ``conn`` to the pool."""
        ...

    async def discard(self, conn: object) -> None:
        """Drop ``conn`` for good (it may be mid-query); never raises."""
        ...

    async def dispose(self) -> None:
        """Close the pool."""
        ...


@dataclass(frozen=True, slots=True)
class Link:
    """A pooled SQLAlchemy connection and the driver's own connection under it."""

    conn: AsyncConnection
    driver: object


class SqlAlchemyExecutor:
    """Any SQLAlchemy async driver, through ``execute``: SQLAlchemy's compiled cache (per
    engine) keeps each statement's compiled form, so :meth:`prepare` only builds it."""

    binds_arrays = False

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._distrust_before = float("-inf")

    @property
    def engine(self) -> AsyncEngine:
        """The pool."""
        return self._engine

    def prepare(self, key: Hashable | None, build: Callable[[], Query]) -> object:
        """The statement itself."""
        return build()

    async def connect(self) -> object:
        """A pooled connection, with the driver's connection under it; one first seen
        before :meth:`distrust_idle` is dropped and the next one taken. Without that, a
        restarted server's dead connections fail one call each, and each failure opens the
        cell's breaker for another cool-down: minutes of recovery instead of one call."""
        while True:
            conn = await self._engine.connect()
            try:
                driver = (await conn.get_raw_connection()).driver_connection
                if driver is None:
                    raise ConnectionError("the pool handed out a closed connection")
            except BaseException:
                await asyncio.shield(self._drop(conn, None))
                raise
            # The pool's record of this driver connection: stamped when first handed out.
            seen = conn.info.setdefault(SEEN_AT, time.monotonic())
            if seen >= self._distrust_before:
                return Link(conn, driver)
            await asyncio.shield(self._drop(conn, driver))

    def distrust_idle(self) -> None:
        """Drop, at their next checkout, the connections handed out before now."""
        self._distrust_before = time.monotonic()

    async def fetch(
        self, conn: object, prepared: object, values: Mapping[str, object]
    ) -> list[Row]:
        """Plain dicts, built at C speed: cheaper to read (views, frontier) than
        SQLAlchemy's RowMapping, whose ``.get`` goes through the Mapping ABC."""
        result = await cast(Link, conn).conn.execute(cast(Query, prepared), dict(values))
        keys = list(result.keys())
        rows = cast(list[tuple[SqlValue, ...]], result.all())
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def at_deadline(
        self, conn: object, deadline: float, timeout_s: float
    ) -> asyncio.TimerHandle | None:
        """Nothing: the cancelled await is all there is."""
        return None

    async def release(self, conn: object) -> None:
        """Back to the pool."""
        await cast(Link, conn).conn.close()

    async def discard(self, conn: object) -> None:
        """Invalidate and close: the pool never hands it out again."""
        link = cast(Link, conn)
        await self._drop(link.conn, link.driver)

    async def dispose(self) -> None:
        """Close the pool's connections."""
        await self._engine.dispose()

    def _terminate(self, driver: object) -> None:
        """Stop the driver's connection at once, before the pool is told (a hook)."""

    async def _drop(self, conn: AsyncConnection, driver: object | None) -> None:
        try:
            if driver is not None:
                self._terminate(driver)
            await conn.invalidate()
            await conn.close()
        except Exception:  # the connection is already broken; nothing more to release
            log.debug("discarding a broken connection", exc_info=True)


class SqliteExecutor(SqlAlchemyExecutor):
    """aiosqlite: statements run in aiosqlite's thread, which a cancelled await does not
    stop, so the deadline interrupts the running statement."""

    def at_deadline(
        self, conn: object, deadline: float, timeout_s: float
    ) -> asyncio.TimerHandle | None:
        """``sqlite3.Connection.interrupt`` at the deadline."""
        driver = cast(Link, conn).driver
        interrupt = getattr(getattr(driver, "_conn", None), "interrupt", None)
        if interrupt is None:
            return None
        return asyncio.get_running_loop().call_at(deadline, interrupt)
