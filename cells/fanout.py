"""One batch from one cell, under a deadline, as a typed outcome; and the task group that
runs one request's cell calls.

A cell call returns :class:`CellRows`, :class:`CellFailed`, :class:`CellTimedOut`,
:class:`CellSlow` or :class:`CellSkipped`, and the caller ``match``es on them. Who is to
blame for a failure is decided by :func:`cells.faults.blame`; the client's fault raises
:class:`~cells.faults.InvalidQuery` (a 400) and a configuration fault raises
:class:`~cells.faults.CellMisconfigured` (a 500), neither touching the cell's breaker.

**A slow query is not a dead cell.** When a call runs past most of its deadline, a probe
(``SELECT 1`` on another connection, ending with the deadline) starts; if the deadline
passes, the probe's answer decides: alive → :class:`CellSlow` (this request's own query
was slow), no answer → :class:`CellTimedOut` (the cell is hung). The database stops too:
PostgreSQL gets asyncpg's cancel request and a ``statement_timeout``; SQLite is
interrupted at the deadline; MariaDB/MySQL stop the statement at their session
``max_statement_time`` / ``max_execution_time`` (:mod:`cells.mysql`), so no backend or
thread keeps burning CPU after the answer.

Each :class:`CellSession` holds one connection for the whole request and drops it —
terminated, never returned to the pool mid-query — when a call fails, times out or is
cancelled (a sibling failed, or the request's budget ran out).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

from sqlalchemy import Select, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cells.faults import DATABASE_ERRORS, Blame, CellMisconfigured, InvalidQuery, blame
from cells.mysql import is_mysql
from cells.order import Row, SqlValue
from cells.registry import Cell

__all__ = [
    "CellFailed",
    "CellOutcome",
    "CellRows",
    "CellSession",
    "CellSkipped",
    "CellSlow",
    "CellTimedOut",
    "drop_connection",
    "run_all",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

# How long after its deadline a cancelled call may spend closing its connection before the
# connection is aborted (see CellSession._at_deadline).
_ABORT_GRACE_S = 0.05
# The probe starts when this share of the deadline is left, and must answer by the deadline.
_PROBE_SHARE = 0.25
# ...but never less than this: a new connection to a live, loaded cell takes tens of ms.
_PROBE_MIN_S = 0.25


@dataclass(frozen=True, slots=True)
class CellRows:
    """A batch of rows; ``exhausted`` when the cell returned fewer than asked."""

    rows: list[Row]
    exhausted: bool
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class CellFailed:
    """The cell answered with an error of its own, or could not be reached."""

    error: str
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class CellTimedOut:
    """The cell did not answer within its deadline, nor did it answer a probe."""

    timeout_s: float
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class CellSlow:
    """This query missed the deadline but the cell answered a probe: the query was slow."""

    timeout_s: float
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class CellSkipped:
    """Not asked: the cell's circuit breaker is open."""

    elapsed_ms: float = 0.0


CellOutcome = CellRows | CellFailed | CellTimedOut | CellSlow | CellSkipped


async def run_all(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Await ``calls`` concurrently in a task group: when one raises, the others are
    cancelled (and so drop their connections) before the first error propagates, unwrapped
    from its exception group."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_as_coroutine(call)) for call in calls]
    except BaseExceptionGroup as failed:
        raise _first(failed) from None
    return [task.result() for task in tasks]


async def _as_coroutine(call: Awaitable[T]) -> T:
    return await call


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error to report: a configuration error beats a client error beats the rest."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        exc = stack.pop()
        if isinstance(exc, BaseExceptionGroup):
            stack.extend(reversed(exc.exceptions))
        else:
            leaves.append(exc)
    for kind in (CellMisconfigured, InvalidQuery):
        for exc in leaves:
            if isinstance(exc, kind):
                return exc
    return leaves[0]


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
        *,
        probe: bool = True,
    ) -> CellOutcome:
        """Run ``statement`` (which must already carry ``LIMIT limit``), or the pre-compiled
        ``raw`` SQL and arguments straight on the asyncpg connection.

        The raw path skips SQLAlchemy's per-execution work (cache key, result wrapping),
        which measured at about half of a small keyset query's cost; the SQL itself still
        comes from SQLAlchemy Core, compiled once per request (see :mod:`cells.plan`).
        ``probe=False`` (the probe itself, start-up checks) reports a missed deadline as
        :class:`CellTimedOut` without asking again.
        """
        started = time.perf_counter()
        self.queries += 1
        loop = asyncio.get_running_loop()
        timers: list[asyncio.TimerHandle] = []
        liveness: asyncio.Task[bool] | None = None

        # The probe starts with a share of the deadline left and gets at least
        # _PROBE_MIN_S: on a tiny deadline it may end a little after the deadline.
        lead = self.timeout_s * _PROBE_SHARE
        probe_timeout = max(lead, _PROBE_MIN_S)

        def start_probe() -> None:
            nonlocal liveness
            liveness = asyncio.ensure_future(self._probe(probe_timeout))

        try:
            async with asyncio.timeout(self.timeout_s) as deadline:
                when = deadline.when()
                assert when is not None
                if probe:
                    timers.append(loop.call_at(when - lead, start_probe))
                if self._conn is None:
                    self._conn = await self.engine.connect()
                driver = (await self._conn.get_raw_connection()).driver_connection
                if driver is None:
                    raise ConnectionError("the pool handed out a closed connection")
                timers.append(self._at_deadline(when, driver))
                rows = await self._run(driver, statement, raw)
        except TimeoutError:
            await self._discard()
            return await self._missed(started, liveness)
        except asyncio.CancelledError:
            await asyncio.shield(self._discard())
            raise
        except DATABASE_ERRORS as exc:
            await self._discard()
            fault = blame(exc)
            match fault.blame:
                case Blame.CLIENT:
                    raise InvalidQuery(fault.message) from exc
                case Blame.CONFIG:
                    raise CellMisconfigured(self.cell.label, fault.message) from exc
                case Blame.SLOW:  # statement_timeout: the cell answered, so it is alive
                    return self._slow(started)
                case Blame.CELL:
                    return self._failed(fault.message, type(exc).__name__, started)
        finally:
            for timer in timers:
                timer.cancel()
            if liveness is not None and not liveness.done():
                liveness.cancel()
        self.rows_fetched += len(rows)
        return CellRows(rows, len(rows) < limit, (time.perf_counter() - started) * 1000)

    async def _run(
        self,
        driver: object,
        statement: Select[tuple[object, ...]] | None,
        raw: tuple[str, Sequence[object]] | None,
    ) -> list[Row]:
        if raw is not None:
            sql, args = raw
            records = await driver.fetch(sql, *args)  # type: ignore[attr-defined]
            return [dict(record) for record in records]
        assert statement is not None
        assert self._conn is not None
        result = await self._conn.execute(statement)
        # Plain dicts, built at C speed: cheaper to read (views, frontier) than
        # SQLAlchemy's RowMapping, whose .get goes through the Mapping ABC.
        keys = list(result.keys())
        values = cast(list[tuple[SqlValue, ...]], result.all())
        return [dict(zip(keys, row, strict=True)) for row in values]

    async def _missed(self, started: float, liveness: asyncio.Task[bool] | None) -> CellOutcome:
        # The probe started before the deadline and ends with it (plus its own grace).
        alive = await liveness if liveness is not None else False
        elapsed = (time.perf_counter() - started) * 1000
        if alive:
            return self._slow(started)
        log.warning("cell %s timed out after %.0f ms (no probe answer)", self.cell.label, elapsed)
        return CellTimedOut(self.timeout_s, elapsed)

    async def _probe(self, timeout_s: float) -> bool:
        """Whether the cell answers ``SELECT 1`` on another connection within ``timeout_s``."""
        session = CellSession(self.cell, self.engine, timeout_s)
        try:
            outcome = await session.fetch(select(literal(1)), 2, probe=False)
        except (InvalidQuery, CellMisconfigured):
            return True  # it answered, even if oddly
        finally:
            await session.close()
        return isinstance(outcome, CellRows)

    def _at_deadline(self, deadline: float, driver: object) -> asyncio.TimerHandle:
        """Stop the database's work shortly after ``deadline`` (loop time).

        asyncpg: at the deadline ``asyncio.timeout`` cancels the call and asyncpg asks the
        server to cancel the query; a hung server (SIGSTOP, a dead host) never answers, so
        the transport is aborted after a short grace rather than waiting for SQLAlchemy's
        graceful close (2 s, hard-coded). SQLite: the running statement is interrupted (it
        runs in aiosqlite's thread, which a cancelled await does not stop).
        """
        loop = asyncio.get_running_loop()
        terminate = getattr(driver, "terminate", None)  # asyncpg
        if terminate is not None:
            grace = min(_ABORT_GRACE_S, 0.05 * self.timeout_s)
            return loop.call_at(deadline + grace, terminate)
        interrupt = getattr(getattr(driver, "_conn", None), "interrupt", None)  # aiosqlite
        return loop.call_at(deadline, interrupt if interrupt is not None else _nothing)

    def _slow(self, started: float) -> CellSlow:
        elapsed = (time.perf_counter() - started) * 1000
        log.warning("cell %s: query missed its deadline, cell alive", self.cell.label)
        return CellSlow(self.timeout_s, elapsed)

    def _failed(self, message: str, kind: str, started: float) -> CellFailed:
        elapsed = (time.perf_counter() - started) * 1000
        log.warning("cell %s failed after %.0f ms: %s: %s", self.cell.label, elapsed, kind, message)
        return CellFailed(f"{kind}: {message}", elapsed)

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await drop_connection(conn)

    async def close(self) -> None:
        """Return the connection to the pool (only ever idle here: a call that failed or
        was cancelled has already dropped it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()


async def drop_connection(conn: AsyncConnection) -> None:
    """Drop a connection for good — after a failure or a cancellation, when it may still be
    mid-query: terminate the driver's connection (asyncpg: abort the transport now, no
    graceful close; asyncmy: close the socket now, no ``COM_QUIT`` to a server that may
    be hung — its statement ends at ``max_statement_time``), then tell the pool, which
    never hands it out again."""
    try:
        raw = await conn.get_raw_connection()
        terminate = getattr(raw.driver_connection, "terminate", None)
        if terminate is not None:
            terminate()
        elif is_mysql(conn.dialect) and raw.driver_connection is not None:
            raw.driver_connection.close()  # synchronous in asyncmy: closes the transport
        await conn.invalidate()
        await conn.close()
    except Exception:  # the connection is already broken; nothing more to release
        log.debug("discarding a broken connection", exc_info=True)


def _nothing() -> None:
    return None
