"""Merge inputs behind one small protocol: a cell's instances, or a down cell's stubs.

The lister (:mod:`cells.listing`) only ever asks a :class:`Source` for ``n`` rows after a
position, in the request's order, and gets a typed outcome back; what sits behind it — a
cell's client (:class:`~cells.client.CellClient`: breaker, deadline, driver), the API
database's mappings, or an in-memory list in a unit test — is the source's business.
"""

from __future__ import annotations

from typing import Protocol

from cells.apidb import ApiDatabase
from cells.client import CellClient
from cells.fanout import CellOutcome
from cells.order import SortSpec
from cells.plan import Position, QueryPlan
from cells.registry import Cell
from cells.session import CellSession

__all__ = ["InstanceSource", "Source", "StubRows"]


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
    """Shared plumbing: one :class:`~cells.session.CellSession` per request."""

    def __init__(self, session: CellSession) -> None:
        self.session = session

    @property
    def queries(self) -> int:
        return self.session.queries

    @property
    def rows_fetched(self) -> int:
        return self.session.rows_fetched

    async def close(self) -> None:
        await self.session.close()


class InstanceSource(_SessionSource):
    """A cell's ``instances``, through its client (:meth:`CellClient.keyset`)."""

    def __init__(self, client: CellClient, plan: QueryPlan) -> None:
        super().__init__(client.session())
        self.client = client
        self.plan = plan

    @property
    def cell(self) -> Cell:
        return self.client.cell

    async def fetch(self, position: Position, n: int) -> CellOutcome:
        return await self.client.keyset(self.session, self.plan, position, n)


class StubRows(_SessionSource):
    """The stubs (2.69+) of a down cell's instances, from the API database's mappings,
    standing in for that cell in the merge (see :mod:`cells.stubs`)."""

    def __init__(
        self, api: ApiDatabase, failed: Cell, project_id: str | None, spec: SortSpec
    ) -> None:
        super().__init__(api.session())
        self.api = api
        self.failed = failed
        self.project_id = project_id
        self.spec = spec

    @property
    def cell(self) -> Cell:
        return self.failed

    async def fetch(self, position: Position, n: int) -> CellOutcome:
        return await self.api.stubs(
            self.session, self.spec, self.failed.id, self.project_id, position, n
        )
