"""One database's calls within one request: one connection, every call under the deadline.

A call runs prepared statements (:mod:`cells.executor`) and returns a typed outcome
(:mod:`cells.fanout`). Who is to blame for a failure is decided by
:func:`cells.faults.blame`: the client's fault raises :class:`~cells.errors.InvalidQuery`
(a 400), a configuration fault :class:`~cells.errors.CellMisconfigured` (which the cell's
client turns into an unavailable cell); a fault of the database's own is
:class:`~cells.fanout.CellFailed`.

**A slow query is not a dead cell.** When a call runs past most of its deadline, a probe
(``SELECT 1`` on another connection, ending with the deadline) starts; if the deadline
passes, the probe's answer decides: alive → :class:`~cells.fanout.CellSlow` (this request's
own query was slow), no answer → :class:`~cells.fanout.CellTimedOut` (the cell is hung).
The database stops too, by the executor's at-deadline action.

The connection is dropped — discarded, never returned to the pool mid-query — when a call
fails, times out or is cancelled (a sibling failed, or the request's budget ran out).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from sqlalchemy import literal, select

from cells.errors import CellMisconfigured, InvalidQuery
from cells.executor import Executor, Query
from cells.fanout import CellFailed, CellOutcome, CellRows, CellSlow, CellTimedOut
from cells.faults import DATABASE_ERRORS, Blame, blame

__all__ = ["CellSession"]

log = logging.getLogger(__name__)

# The probe starts when this share of the deadline is left, and must answer by the deadline.
_PROBE_SHARE = 0.25
# ...but never less than this: a new connection to a live, loaded cell takes tens of ms.
_PROBE_MIN_S = 0.25
_PROBE = ("probe",)


def _one() -> Query:
    return select(literal(1))


class CellSession:
    """Calls to one database (``label`` names it in logs and errors) on one connection."""

    def __init__(
        self, label: str, executor: Executor, timeout_s: float, *, quiet: bool = False
    ) -> None:
        self.label = label
        # A background ping of a cell known down logs its failures at DEBUG, not WARNING.
        self._level = logging.DEBUG if quiet else logging.WARNING
        self.executor = executor
        self.timeout_s = timeout_s
        self.queries = 0
        self.rows_fetched = 0
        self._conn: object | None = None

    def prepare(self, statement: Query) -> object:
        """A one-off ``statement`` (not kept in the compile cache), ready for :meth:`fetch`."""
        return self.executor.prepare(None, lambda: statement)

    async def fetch(
        self,
        prepared: object,
        *batches: Mapping[str, object],
        limit: int,
        probe: bool = True,
        budget_s: float | None = None,
    ) -> CellOutcome:
        """Run ``prepared`` once per mapping of bind values in ``batches``, all within one
        deadline; their rows together, ``exhausted`` when fewer than ``limit``.

        ``budget_s`` shortens this call's deadline (what is left of a larger one); outcomes
        still report the session's. ``probe=False`` (the probe itself, start-up and
        readiness checks) reports a missed deadline as timed out without asking again.
        """
        started = time.perf_counter()
        self.queries += len(batches)
        executor = self.executor
        loop = asyncio.get_running_loop()
        timers: list[asyncio.TimerHandle] = []
        liveness: asyncio.Task[bool] | None = None
        timeout_s = self.timeout_s if budget_s is None else budget_s

        # The probe starts with a share of the deadline left and gets at least
        # _PROBE_MIN_S: on a tiny deadline it may end a little after the deadline.
        lead = timeout_s * _PROBE_SHARE
        probe_timeout = max(lead, _PROBE_MIN_S)

        def start_probe() -> None:
            nonlocal liveness
            liveness = asyncio.ensure_future(self._probe(probe_timeout))

        try:
            async with asyncio.timeout(timeout_s) as deadline:
                when = deadline.when()
                assert when is not None
                if probe:
                    timers.append(loop.call_at(when - lead, start_probe))
                if self._conn is None:
                    self._conn = await executor.connect()
                stop = executor.at_deadline(self._conn, when, timeout_s)
                if stop is not None:
                    timers.append(stop)
                if len(batches) == 1:
                    rows = await executor.fetch(self._conn, prepared, batches[0])
                else:
                    rows = []
                    for values in batches:
                        rows.extend(await executor.fetch(self._conn, prepared, values))
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
                    raise CellMisconfigured(self.label, fault.message, fault.reason) from exc
                case Blame.SLOW:  # statement_timeout: the cell answered, so it is alive
                    return self._slow(started)
                case Blame.CELL:
                    self.executor.distrust_idle()  # lost: the pooled ones likely are too
                    return self._failed(fault.message, type(exc).__name__, started)
        finally:
            for timer in timers:
                timer.cancel()
            if liveness is not None and not liveness.done():
                liveness.cancel()
        self.rows_fetched += len(rows)
        return CellRows(rows, len(rows) < limit, (time.perf_counter() - started) * 1000)

    async def _missed(self, started: float, liveness: asyncio.Task[bool] | None) -> CellOutcome:
        # The probe started before the deadline and ends with it (plus its own grace).
        alive = await liveness if liveness is not None else False
        elapsed = (time.perf_counter() - started) * 1000
        if alive:
            return self._slow(started)
        log.log(
            self._level, "cell %s timed out after %.0f ms (no probe answer)", self.label, elapsed
        )
        return CellTimedOut(self.timeout_s, elapsed)

    async def _probe(self, timeout_s: float) -> bool:
        """Whether the database answers ``SELECT 1`` on another connection in ``timeout_s``."""
        session = CellSession(self.label, self.executor, timeout_s)
        try:
            prepared = self.executor.prepare(_PROBE, _one)
            outcome = await session.fetch(prepared, {}, limit=2, probe=False)
        except (InvalidQuery, CellMisconfigured):
            return True  # it answered, even if oddly
        finally:
            await session.close()
        return isinstance(outcome, CellRows)

    async def ping(self) -> CellOutcome:
        """``SELECT 1`` under the deadline, without a liveness probe."""
        prepared = self.executor.prepare(_PROBE, _one)
        return await self.fetch(prepared, {}, limit=2, probe=False)

    def _slow(self, started: float) -> CellSlow:
        elapsed = (time.perf_counter() - started) * 1000
        log.log(self._level, "cell %s: query missed its deadline, cell alive", self.label)
        return CellSlow(self.timeout_s, elapsed)

    def _failed(self, message: str, kind: str, started: float) -> CellFailed:
        elapsed = (time.perf_counter() - started) * 1000
        log.log(
            self._level, "cell %s failed after %.0f ms: %s: %s", self.label, elapsed, kind, message
        )
        return CellFailed(f"{kind}: {message}", elapsed)

    async def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await self.executor.discard(conn)

    async def close(self) -> None:
        """Return the connection to the pool (only ever idle here: a call that failed or
        was cancelled has already dropped it)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await self.executor.release(conn)
