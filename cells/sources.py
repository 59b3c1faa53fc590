"""Merge inputs behind one small protocol: a cell's instances, or a down cell's stubs.

The lister (:mod:`cells.lister`) only ever asks a :class:`Source` for ``n`` rows after a
position, in the request's order, and gets a typed outcome back; what sits behind it — a
cell database guarded by its breaker, the API database's mappings, or an in-memory list in
a unit test — is the source's business.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from cells.breaker import Breaker
from cells.fanout import (
    CellFailed,
    CellOutcome,
    CellRows,
    CellSession,
    CellSkipped,
    CellSlow,
    CellTimedOut,
)
from cells.order import SortSpec
from cells.plan import Position, QueryPlan
from cells.registry import Cell
from cells.stubs import stub_statement

__all__ = ["CellTarget", "InstanceSource", "Source", "StubRows", "record"]


@dataclass(frozen=True, slots=True)
class CellTarget:
    """A cell to ask, with its engine, per-call deadline and circuit breaker."""

    cell: Cell
    engine: AsyncEngine
    timeout_s: float
    breaker: Breaker = field(default_factory=Breaker)


def record(breaker: Breaker, outcome: CellOutcome) -> None:
    """Tell ``breaker`` what a call found out about its cell: rows or a slow-but-alive
    answer close it, an error of the cell's own or a confirmed hang count against it."""
    match outcome:
        case CellRows() | CellSlow():
            breaker.record_success()
        case CellFailed():
            breaker.record_failure(timed_out=False)
        case CellTimedOut():
            breaker.record_failure(timed_out=True)
        case CellSkipped():
            pass


class Source(Protocol):
    """One merge input: rows in the request's order, ``n`` at a time after a position."""

    @property
    def cell(self) -> Cell:
        """The cell whose instances this source yields."""
        ...

    @property
    def queries(self) -> int:
        """Calls made so far."""
        ...

    @property
    def rows_fetched(self) -> int:
        """Rows returned so far."""
        ...

    async def fetch(self, position: Position, n: int) -> CellOutcome:
        """Up to ``n`` rows strictly after ``position`` (``None``: from the start)."""
        ...

    async def close(self) -> None:
        """Release what the source holds (an idle connection)."""
        ...


class _SessionSource:
    """Shared plumbing: one :class:`CellSession` per request."""

    def __init__(self, target: CellTarget) -> None:
        self.target = target
        self.session = CellSession(target.cell, target.engine, target.timeout_s)

    @property
    def cell(self) -> Cell:
        return self.target.cell

    @property
    def queries(self) -> int:
        return self.session.queries

    @property
    def rows_fetched(self) -> int:
        return self.session.rows_fetched

    async def close(self) -> None:
        await self.session.close()


class InstanceSource(_SessionSource):
    """A cell's ``instances`` through its circuit breaker.

    The breaker hears only about the cell: rows or a slow-but-alive answer close it, an
    error of the cell's own or a confirmed hang count against it. Client and configuration
    errors raise past it untouched (:mod:`cells.faults`).
    """

    def __init__(self, target: CellTarget, plan: QueryPlan) -> None:
        super().__init__(target)
        self.plan = plan

    async def fetch(self, position: Position, n: int) -> CellOutcome:
        breaker = self.target.breaker
        if not breaker.allow():
            return CellSkipped()
        session = self.session
        if session.asyncpg:
            raw = self.plan.raw(position, n, session.engine.dialect)
            outcome = await session.fetch(None, n, raw)
        else:
            outcome = await session.fetch(self.plan.select(position, n), n)
        record(breaker, outcome)
        return outcome


class StubRows(_SessionSource):
    """The stubs (2.69+) of a down cell's instances, from the API database's mappings,
    standing in for that cell in the merge (see :mod:`cells.stubs`)."""

    def __init__(
        self, api: CellTarget, failed: Cell, project_id: str | None, spec: SortSpec
    ) -> None:
        super().__init__(api)
        self.failed = failed
        self.project_id = project_id
        self.spec = spec

    @property
    def cell(self) -> Cell:
        return self.failed

    async def fetch(self, position: Position, n: int) -> CellOutcome:
        statement = stub_statement(self.spec, self.failed.id, self.project_id, position, n)
        return await self.session.fetch(statement, n)
