"""One batch from one cell, under a deadline, as a typed outcome.

A cell call never raises for a cell-side problem: it returns :class:`CellRows`,
:class:`CellFailed` or :class:`CellTimedOut`, and the caller ``match``es on them. The one
exception that does propagate is :class:`InvalidQuery`, for errors that are the *client's*
(an invalid regular expression the database rejects), which must become a 400 and not a
"cell down".

Each :class:`CellSession` holds one connection for the whole request (later batches reuse
it; no pool round trip per batch) and drops it — invalidated, never returned to the pool in
an unknown state — when a call fails or is cancelled by its deadline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cells.order import Row, SqlValue
from cells.registry import Cell

__all__ = [
    "CellFailed",
    "CellOutcome",
    "CellRows",
    "CellSession",
    "CellTimedOut",
    "InvalidQuery",
]

log = logging.getLogger(__name__)

# SQLSTATE class 22 is "data exception": the query's own values are at fault.
_CLIENT_SQLSTATE_PREFIXES = ("22", "42P")
# How long after its deadline a cancelled call may spend closing its connection before the
# connection is aborted (see CellSession._abort_after).
_ABORT_GRACE_S = 0.05


class InvalidQuery(ValueError):
    """The database rejected a value the client supplied."""


@dataclass(frozen=True, slots=True)
class CellRows:
    """A batch of rows; ``exhausted`` when the cell returned fewer than asked."""

    rows: list[Row]
    exhausted: bool
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class CellFailed:
    """The cell answered with an error (or could not be reached)."""

    error: str
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class CellTimedOut:
    """The cell did not answer within its deadline."""

    timeout_s: float
    elapsed_ms: float


CellOutcome = CellRows | CellFailed | CellTimedOut


def _client_error(exc: Exception) -> str | None:
    """The database's message when it blames the query's own values (SQLSTATE class 22 or
    42P), for SQLAlchemy-wrapped and raw asyncpg errors alike; ``None`` otherwise."""
    driver_error = exc.orig if isinstance(exc, DBAPIError) else exc
    for candidate in (driver_error, getattr(driver_error, "__cause__", None)):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str) and code.startswith(_CLIENT_SQLSTATE_PREFIXES):
            return str(driver_error).splitlines()[0]
    return None


class CellSession:
    """Batches from one cell within one request, sharing one connection."""

    def __init__(self, cell: Cell, engine: AsyncEngine, timeout_s: float) -> None:
        self.cell = cell
        self.engine = engine
        self.timeout_s = timeout_s
        self.queries = 0
        self.rows_fetched = 0
        self._conn: AsyncConnection | None = None

    @property
    def asyncpg(self) -> bool:
        """Whether this cell speaks asyncpg (and so can take pre-compiled SQL)."""
        return self.engine.dialect.driver == "asyncpg"

    async def fetch(
        self,
        statement: Select[tuple[object, ...]] | None,
        limit: int,
        raw: tuple[str, Sequence[object]] | None = None,
    ) -> CellOutcome:
        """Run ``statement`` (which must already carry ``LIMIT limit``), or the pre-compiled
        ``raw`` SQL and arguments straight on the asyncpg connection.

        The raw path skips SQLAlchemy's per-execution work (cache key, result wrapping),
        which measured at about half of a small keyset query's cost; the SQL itself still
        comes from SQLAlchemy Core, compiled once per request (see :mod:`cells.lister`).
        """
        started = time.perf_counter()
        self.queries += 1
        abort: asyncio.TimerHandle | None = None
        try:
            async with asyncio.timeout(self.timeout_s) as deadline:
                if self._conn is None:
                    self._conn = await self.engine.connect()
                driver = (await self._conn.get_raw_connection()).driver_connection
                if driver is None:
                    raise ConnectionError("the pool handed out a closed connection")
                abort = self._abort_after(deadline.when(), driver)
                rows: list[Row]
                if raw is not None:
                    sql, args = raw
                    rows = [dict(record) for record in await driver.fetch(sql, *args)]
                else:
                    assert statement is not None
                    result = await self._conn.execute(statement)
                    # Plain dicts, built at C speed: cheaper to read (views, frontier) than
                    # SQLAlchemy's RowMapping, whose .get goes through the Mapping ABC.
                    keys = list(result.keys())
                    values = cast(list[tuple[SqlValue, ...]], result.all())
                    rows = [dict(zip(keys, row, strict=True)) for row in values]
        except TimeoutError:
            await self._discard()
            elapsed = (time.perf_counter() - started) * 1000
            log.warning("cell %s timed out after %.0f ms", self.cell.label, elapsed)
            return CellTimedOut(self.timeout_s, elapsed)
        except asyncio.CancelledError:
            await asyncio.shield(self._discard())
            raise
        except Exception as exc:  # any other driver or network error is this cell's failure
            await self._discard()
            if (message := _client_error(exc)) is not None:
                raise InvalidQuery(message) from exc
            return self._failed(exc, started)
        finally:
            if abort is not None:
                abort.cancel()
        self.rows_fetched += len(rows)
        return CellRows(rows, len(rows) < limit, (time.perf_counter() - started) * 1000)

    def _abort_after(self, deadline: float | None, driver: object) -> asyncio.TimerHandle | None:
        """Abort the connection's transport shortly after ``deadline`` (loop time).

        At the deadline ``asyncio.timeout`` cancels the call: asyncpg asks the server to
        cancel the query, and SQLAlchemy invalidates the connection with a *graceful* close
        that waits up to 2 s (hard-coded in its asyncpg adapter) for a server that answers.
        A hung server (SIGSTOP, a dead host) never answers, so without this the call would
        hold the request for its deadline + 2 s. A server that does answer has closed the
        connection within the grace and the abort finds nothing to do.
        """
        terminate = getattr(driver, "terminate", None)  # asyncpg only
        if deadline is None or terminate is None:
            return None
        grace = min(_ABORT_GRACE_S, 0.05 * self.timeout_s)
        return asyncio.get_running_loop().call_at(deadline + grace, terminate)

    def _failed(self, exc: BaseException, started: float) -> CellFailed:
        elapsed = (time.perf_counter() - started) * 1000
        message = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        log.warning("cell %s failed after %.0f ms: %s", self.cell.label, elapsed, message)
        return CellFailed(message, elapsed)

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            await conn.invalidate()
            await conn.close()
        except Exception:  # the connection is already broken; nothing more to release
            log.debug("discarding a broken connection to %s", self.cell.label, exc_info=True)

    async def close(self) -> None:
        """Return the connection to the pool."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()
