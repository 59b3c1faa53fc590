"""One client per cell: the only object that knows the cell's engine, driver, breaker and
deadline.

The lifespan builds a :class:`CellClient` per cell (:meth:`CellClient.connect`: the
engine, and the executor of its driver chosen once, :func:`cells.registry.executor_for`)
and disposes it at shutdown. Its calls are the gateway's only way into a cell:

==============  ==============================================  =========================
call            reads                                           returns
==============  ==============================================  =========================
``keyset``      a batch of the listing (:mod:`cells.plan`)      :data:`CellOutcome`
``marker_row``  a marker's row, soft-deleted or not             :data:`CellOutcome`
``details``     a page's side data (:mod:`cells.details`)       :data:`DetailsOutcome`
``server``      show's row and its side data, one deadline      :data:`ServerOutcome`
``probe``       ``SELECT 1`` (readiness)                        :data:`CellOutcome`
==============  ==============================================  =========================

Every call goes through the breaker — an open one answers :class:`CellSkipped` at once —
and runs under the cell's deadline with its liveness probe (:mod:`cells.session`). Rows,
or a slow answer from a live cell, close the breaker; an error of the cell's own or a
confirmed hang count against it. The client's own fault raises
:class:`~cells.errors.InvalidQuery` and a schema fault
:class:`~cells.errors.CellMisconfigured` — both :class:`~cells.errors.CellsError`,
neither touching the breaker. ``probe`` reads the breaker but never moves it (a readiness
check must not open or close a cell), except at start-up (:meth:`warm`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from cells.breaker import Breaker, BreakerState
from cells.details import Details, chunks, collect_rows, side_union
from cells.drills import Drills
from cells.executor import Executor
from cells.fanout import (
    CellDetails,
    CellFailed,
    CellOutcome,
    CellRows,
    CellServer,
    CellSkipped,
    CellSlow,
    CellTimedOut,
    DetailsOutcome,
    ServerOutcome,
)
from cells.markers import marker_select
from cells.plan import Position, QueryPlan
from cells.registry import Cell, EngineOptions, open_executor
from cells.session import CellSession
from cells.show import server_select

__all__ = ["CellClient"]

log = logging.getLogger(__name__)

_DISPOSE_S = 2.0  # a frozen cell must not hang shutdown


class CellClient:
    """A cell: its executor (engine, driver, compile cache), breaker and deadline."""

    def __init__(
        self, cell: Cell, executor: Executor, timeout_s: float, breaker: Breaker | None = None
    ) -> None:
        self.cell = cell
        self.timeout_s = timeout_s
        self._executor = executor
        self._breaker = breaker if breaker is not None else Breaker()

    @classmethod
    def connect(
        cls,
        cell: Cell,
        options: EngineOptions,
        timeout_s: float,
        *,
        breaker_failures: int = 2,
        breaker_cooldown_s: float = 5.0,
    ) -> CellClient:
        """A client for ``cell`` with an engine of its own (no I/O until the first call);
        its breaker opens after ``breaker_failures`` errors and tries again after
        ``breaker_cooldown_s``."""
        executor = open_executor(cell.url, options, f"cell {cell.label}")
        return cls(cell, executor, timeout_s, Breaker(breaker_failures, breaker_cooldown_s))

    @property
    def engine(self) -> AsyncEngine:
        """The pool, for tools that read the cell themselves (schema checks, benchmarks)."""
        return self._executor.engine

    @property
    def breaker_state(self) -> BreakerState:
        """Where the cell's breaker stands (metrics, readiness)."""
        return self._breaker.state

    @property
    def skipping(self) -> bool:
        """Whether calls skip this cell right now (read-only: grants no half-open probe)."""
        return self._breaker.skipping

    def session(self) -> CellSession:
        """One request's calls on one connection; close it when the request is done."""
        return CellSession(self.cell.label, self._executor, self.timeout_s)

    async def keyset(
        self, session: CellSession, plan: QueryPlan, position: Position, n: int
    ) -> CellOutcome:
        """Up to ``n`` rows of ``plan`` strictly after ``position``, on ``session``."""
        if not self._breaker.allow():
            return CellSkipped()
        prepared, values = plan.bind(self._executor, position, n)
        outcome = await session.fetch(prepared, values, limit=n)
        self._record(outcome)
        return outcome

    async def marker_row(self, names: tuple[str, ...], marker: str) -> CellOutcome:
        """The row of ``marker`` (its ``project_id`` and ``names``), soft-deleted or not;
        no row when the cell has none."""
        if not self._breaker.allow():
            return CellSkipped()
        prepared = self._executor.prepare(("marker", names), lambda: marker_select(names))
        session = self.session()
        try:
            outcome = await session.fetch(prepared, {"marker": marker}, limit=1)
        finally:
            await session.close()
        self._record(outcome)
        return outcome

    async def details(self, uuids: Sequence[str], version: tuple[int, int]) -> DetailsOutcome:
        """Side data for ``uuids`` (this cell's instances): one query per
        :data:`~cells.details.BATCH` uuids, within one deadline; tags from 2.26."""
        if not uuids:
            return CellDetails({}, 0.0)
        if not self._breaker.allow():
            return CellSkipped()
        session = self.session()
        try:
            outcome = await self._details(session, uuids, version, None)
        finally:
            await session.close()
        self._record(outcome)
        return outcome

    async def server(
        self, uuid: str, project_id: str | None, version: tuple[int, int]
    ) -> ServerOutcome:
        """Show's read: the visible (not soft-deleted) row of ``uuid`` — only in
        ``project_id`` unless ``None`` — then its side data, within one deadline."""
        if not self._breaker.allow():
            return CellSkipped()
        started = time.perf_counter()
        session = self.session()
        try:
            outcome = await self._server(session, uuid, project_id, version, started)
        finally:
            await session.close()
        self._record(outcome)
        return outcome

    async def probe(self) -> CellOutcome:
        """``SELECT 1`` within the deadline, no liveness probe; :class:`CellSkipped` while
        the breaker is open. Never moves the breaker."""
        if self._breaker.skipping:
            return CellSkipped()
        session = self.session()
        try:
            return await session.ping()
        finally:
            await session.close()

    async def warm(self) -> bool:
        """Open one connection at start-up, so SQLAlchemy's first-connect dialect set-up
        (several round trips) is not paid inside the first request's deadline. A cell that
        cannot be reached now counts against its breaker (a hung one opens it, so the first
        request does not wait for it) and is otherwise handled per request."""
        outcome = await self.probe()
        if isinstance(outcome, CellRows):
            return True
        log.warning("cell %s not reachable at start-up: %s", self.cell.label, outcome)
        self._breaker.record_failure(timed_out=isinstance(outcome, CellTimedOut))
        return False

    def install_drills(self, drills: Drills) -> None:
        """Let the demo's outage drills act on this cell's statements."""
        drills.install(self.cell.label, self._executor.engine)

    async def dispose(self) -> None:
        """Close the pool, giving up on a frozen cell's connections after 2 s."""
        try:
            async with asyncio.timeout(_DISPOSE_S):
                await self._executor.dispose()
        except TimeoutError:
            log.warning("gave up disposing cell %s's engine after 2 s", self.cell.label)

    async def _details(
        self,
        session: CellSession,
        uuids: Sequence[str],
        version: tuple[int, int],
        budget_s: float | None,
    ) -> DetailsOutcome:
        tags = version >= (2, 26)
        executor = self._executor
        prepared = executor.prepare(
            ("details", tags), lambda: side_union(tags, executor.binds_arrays)
        )
        batches = [{"uuids": chunk} for chunk in chunks(uuids)]
        outcome = await session.fetch(prepared, *batches, limit=0, budget_s=budget_s)
        if isinstance(outcome, CellRows):
            return CellDetails(collect_rows(outcome.rows, uuids), outcome.elapsed_ms)
        return outcome

    async def _server(
        self,
        session: CellSession,
        uuid: str,
        project_id: str | None,
        version: tuple[int, int],
        started: float,
    ) -> ServerOutcome:
        scoped = project_id is not None
        prepared = self._executor.prepare(("server", scoped), lambda: server_select(scoped))
        values = {"uuid": uuid, "project_id": project_id} if scoped else {"uuid": uuid}
        found = await session.fetch(prepared, values, limit=1)
        if not isinstance(found, CellRows):
            return found
        if not found.rows:
            return CellServer(None, Details(), found.elapsed_ms)
        left = max(self.timeout_s - (time.perf_counter() - started), 0.0)
        side = await self._details(session, [uuid], version, left)
        elapsed = (time.perf_counter() - started) * 1000
        match side:
            case CellDetails(details=details):
                return CellServer(found.rows[0], details.get(uuid, Details()), elapsed)
            case CellFailed() | CellTimedOut() | CellSlow() | CellSkipped():
                return dataclasses.replace(side, elapsed_ms=elapsed)
        raise AssertionError("unreachable")  # pragma: no cover

    def _record(self, outcome: CellOutcome | DetailsOutcome | ServerOutcome) -> None:
        """Tell the breaker what a call found out about the cell."""
        match outcome:
            case CellRows() | CellDetails() | CellServer() | CellSlow():
                self._breaker.record_success()
            case CellFailed():
                self._breaker.record_failure(timed_out=False)
            case CellTimedOut():
                self._breaker.record_failure(timed_out=True)
            case CellSkipped():
                pass
