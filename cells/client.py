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
:class:`~cells.errors.InvalidQuery` (a 400), never touching the breaker. A schema fault
(a table, column or grant the call needs is missing) is the cell's: the call returns
:class:`~cells.fanout.CellFailed` with its ``schema_fault``, logged at ERROR, so the cell is
left out of the answer as a down one is — but the breaker is not moved either (the fault
answers at once; a repaired cell is served at the next call). The client remembers the
fault per kind of call until that kind succeeds again (:attr:`CellClient.schema_fault`,
for readiness). ``probe`` reads the breaker but never moves it (a readiness
check must not open or close a cell), except at start-up (:meth:`warm`).

**Pings while open** (``ping_interval_s`` > 0). A request must not be what finds out
that a cell is back: the half-open probe of a frozen cell costs its caller a whole
deadline, and a probe that failed just before the cell came back keeps it out for one more
cool-down. So while the breaker is open, the client pings the cell (``SELECT 1`` within the
deadline) every ``ping_interval_s`` in the background: a ping with no answer starts the
cool-down again (:meth:`Breaker.defer`: no request probes a cell that does not answer), an
answer ends it (:meth:`Breaker.hasten`: the next call is the probe, a real query). A probe
that fails after a ping's answer (a cell that answers ``SELECT 1`` but fails its queries)
ends the pinging until the breaker closes: that cell is probed once per cool-down, as
without pings. Pings never open or close the breaker themselves, nor tell peers.

Over the house size on purpose: it is the one boundary per cell (five calls, each through
the breaker and the deadline); splitting the calls apart would split that contract.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from cells.breaker import Breaker, BreakerEvent, BreakerState
from cells.details import Details, chunks, collect_rows, side_union
from cells.errors import CellMisconfigured
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
from cells.microversion import Version
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
        self,
        cell: Cell,
        executor: Executor,
        timeout_s: float,
        breaker: Breaker | None = None,
        *,
        ping_interval_s: float = 0.0,
    ) -> None:
        self.cell = cell
        self.timeout_s = timeout_s
        self._executor = executor
        self._breaker = breaker if breaker is not None else Breaker()
        self._schema_faults: dict[str, str] = {}
        self._ping_interval_s = ping_interval_s
        self._pinger: asyncio.Task[None] | None = None
        self._ping_hastened = False  # a ping ended this outage's cool-down
        self._ping_spent = False  # ...and the probe that followed failed: no more pings
        self.pings_answered = 0  # pings that ended a cool-down early (tests, logs)

    @classmethod
    def connect(
        cls,
        cell: Cell,
        options: EngineOptions,
        timeout_s: float,
        *,
        breaker_failures: int = 2,
        breaker_cooldown_s: float = 5.0,
        breaker_spread: float = 0.0,
        ping_interval_s: float = 0.0,
    ) -> CellClient:
        """A client for ``cell`` with an engine of its own (no I/O until the first call);
        its breaker opens after ``breaker_failures`` errors and tries again after
        ``breaker_cooldown_s`` (up to ``breaker_spread`` × more, drawn per opening), or
        sooner when a ping every ``ping_interval_s`` (0: none) finds the cell answering."""
        executor = open_executor(cell.url, options, f"cell {cell.label}")
        breaker = Breaker(breaker_failures, breaker_cooldown_s, spread=breaker_spread)
        return cls(cell, executor, timeout_s, breaker, ping_interval_s=ping_interval_s)

    @property
    def engine(self) -> AsyncEngine:
        """The pool, for tools that reach the cell themselves (schema checks, benchmarks,
        the demo's outage drills)."""
        return self._executor.engine

    @property
    def breaker_state(self) -> BreakerState:
        """Where the cell's breaker stands (metrics, readiness)."""
        return self._breaker.state

    @property
    def breaker_opens(self) -> int:
        """How many times this process opened the cell's breaker by itself."""
        return self._breaker.opens

    @property
    def breaker_news(self) -> tuple[int, BreakerEvent | None]:
        """How many events the cell's breaker found out by itself, and the latest."""
        return self._breaker.events, self._breaker.last_event

    def watch_breaker(self, on_event: Callable[[], None]) -> None:
        """Call ``on_event`` (cheap, never raising) at each event of the breaker's own."""
        self._breaker.on_event = on_event

    def peer_news(self, event: BreakerEvent) -> bool:
        """What a peer's breaker found out about this cell (:mod:`cells.breaker`); whether
        this breaker moved."""
        match event:
            case "open":
                moved = self._breaker.trip()
                self._watch()
                return moved
            case "probe":
                return self._breaker.defer()
            case "close":
                return self._breaker.hasten()

    @property
    def breaker_cooldown_s(self) -> float:
        """The breaker's configured cool-down."""
        return self._breaker.cooldown_s

    @property
    def schema_fault(self) -> str | None:
        """The last schema fault a kind of call met and has not since got past, if any
        (``"missing_table: relation \"instances\" does not exist"``)."""
        return next(iter(self._schema_faults.values()), None)

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
        prepared, values, size = plan.bind(self._executor, position, n)
        started = time.perf_counter()
        try:
            outcome = await session.fetch(prepared, values, limit=size)
        except CellMisconfigured as exc:
            return self._misconfigured("keyset", exc, started)
        self._record(outcome, "keyset")
        return outcome

    async def marker_row(self, names: tuple[str, ...], marker: str) -> CellOutcome:
        """The row of ``marker`` (its ``project_id`` and ``names``), soft-deleted or not;
        no row when the cell has none."""
        if not self._breaker.allow():
            return CellSkipped()
        prepared = self._executor.prepare(("marker", names), lambda: marker_select(names))
        session = self.session()
        started = time.perf_counter()
        try:
            outcome = await session.fetch(prepared, {"marker": marker}, limit=1)
        except CellMisconfigured as exc:
            return self._misconfigured("marker", exc, started)
        finally:
            await session.close()
        self._record(outcome, "marker")
        return outcome

    async def details(self, uuids: Sequence[str], version: Version) -> DetailsOutcome:
        """Side data for ``uuids`` (this cell's instances): one query per
        :data:`~cells.details.BATCH` uuids, within one deadline; tags from 2.26."""
        if not uuids:
            return CellDetails({}, 0.0)
        if not self._breaker.allow():
            return CellSkipped()
        session = self.session()
        started = time.perf_counter()
        try:
            outcome = await self._details(session, uuids, version, None)
        except CellMisconfigured as exc:
            return self._misconfigured("details", exc, started)
        finally:
            await session.close()
        self._record(outcome, "details")
        return outcome

    async def server(self, uuid: str, project_id: str | None, version: Version) -> ServerOutcome:
        """Show's read: the visible (not soft-deleted) row of ``uuid`` — only in
        ``project_id`` unless ``None`` — then its side data, within one deadline."""
        if not self._breaker.allow():
            return CellSkipped()
        started = time.perf_counter()
        session = self.session()
        try:
            outcome = await self._server(session, uuid, project_id, version, started)
        except CellMisconfigured as exc:
            return self._misconfigured("server", exc, started)
        finally:
            await session.close()
        self._record(outcome, "server")
        return outcome

    async def probe(self) -> CellOutcome:
        """``SELECT 1`` within the deadline, no liveness probe; :class:`CellSkipped` while
        the breaker is open. Never moves the breaker."""
        if self._breaker.skipping:
            return CellSkipped()
        return await self._ping()

    async def _ping(self, *, quiet: bool = False) -> CellOutcome:
        session = CellSession(self.cell.label, self._executor, self.timeout_s, quiet=quiet)
        try:
            return await session.ping()
        finally:
            await session.close()

    def _watch(self) -> None:
        """Start pinging if the breaker is open and no pinger runs (see the module doc)."""
        if (
            self._ping_interval_s <= 0
            or self._ping_spent
            or self._breaker.state is not BreakerState.OPEN
            or (self._pinger is not None and not self._pinger.done())
        ):
            return
        self._pinger = asyncio.get_running_loop().create_task(
            self._ping_while_open(), name=f"ping cell {self.cell.label}"
        )

    async def _ping_while_open(self) -> None:
        """Ping every interval while the breaker is open; an answer ends the cool-down
        (once per outage), no answer starts it again."""
        breaker = self._breaker
        while breaker.state is not BreakerState.CLOSED and not self._ping_spent:
            await asyncio.sleep(self._ping_interval_s)
            if breaker.state is not BreakerState.OPEN:
                continue  # half-open: a probe is in flight and decides
            outcome = await self._ping(quiet=True)
            if breaker.state is not BreakerState.OPEN:
                continue
            if isinstance(outcome, CellRows):
                breaker.hasten()
                self._ping_hastened = True
                self.pings_answered += 1
                log.info("cell %s answers again: its next call probes it", self.cell.label)
                return  # the probe decides; a failed one re-opens and _record watches again
            breaker.defer()

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
        self._watch()
        return False

    async def dispose(self) -> None:
        """Close the pool, giving up on a frozen cell's connections after 2 s."""
        try:
            async with asyncio.timeout(_DISPOSE_S):
                if self._pinger is not None:
                    self._pinger.cancel()  # its connection is dropped before the pool closes
                    await asyncio.gather(self._pinger, return_exceptions=True)
                await self._executor.dispose()
        except TimeoutError:
            log.warning("gave up disposing cell %s's engine after 2 s", self.cell.label)

    async def _details(
        self,
        session: CellSession,
        uuids: Sequence[str],
        version: Version,
        budget_s: float | None,
    ) -> DetailsOutcome:
        tags, sysmeta, service = version >= (2, 26), version >= (2, 73), version >= (2, 16)
        executor = self._executor
        prepared = executor.prepare(
            ("details", tags, sysmeta, service),
            lambda: side_union(tags, executor.binds_arrays, sysmeta, service),
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
        version: Version,
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

    def _misconfigured(self, kind: str, exc: CellMisconfigured, started: float) -> CellFailed:
        """The outcome of a call that met a schema fault: loud, remembered, breaker unmoved."""
        elapsed = (time.perf_counter() - started) * 1000
        log.error(
            "cell %s is misconfigured (%s), left out of the answer: %s",
            self.cell.label,
            exc.reason,
            exc.message,
            extra={"cell": self.cell.label, "reason": exc.reason, "call": kind},
        )
        self._schema_faults[kind] = f"{exc.reason}: {exc.message}"
        return CellFailed(f"schema: {exc.message}", elapsed, schema_fault=exc.reason)

    def _record(self, outcome: CellOutcome | DetailsOutcome | ServerOutcome, kind: str) -> None:
        """Tell the breaker what a call (of ``kind``) found out about the cell."""
        match outcome:
            case CellRows() | CellDetails() | CellServer() | CellSlow():
                self._schema_faults.pop(kind, None)
                self._breaker.record_success()
                self._ping_hastened = self._ping_spent = False
            case CellFailed() | CellTimedOut():
                # After a ping's answer, the next call was the probe: it failed, so this
                # cell answers pings but not queries; it waits out its cool-downs.
                self._ping_spent = self._ping_hastened
                self._breaker.record_failure(timed_out=isinstance(outcome, CellTimedOut))
                self._watch()
            case CellSkipped():
                pass
