"""Everything the gateway builds at start-up and disposes at shutdown (no globals)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from cache import SingleFlight, Store
from cells import ApiDatabase, Cell, CellClient, Drills
from gateway.auth import TokenValidator
from gateway.metrics import Metrics
from gateway.settings import Settings

__all__ = ["AppState", "HeadShares", "ProjectCells"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ProjectCells:
    """A small TTL cache of scope → instances per cell (from ``instance_mappings``); the
    scope is a project id, or ``ALL`` for every project.

    Concurrent misses for one scope share one query (counting a million mappings took
    ~0.5 s of the API database's CPU; eight clients missing together ran it eight times
    every ``ttl_s``). ``ALL`` is only used to size first batches (every cell is asked
    anyway), so a stale ``ALL`` entry is still answered while one refresh runs behind
    it; a project's entry also decides which cells are asked, so it is never served stale.
    """

    ALL: ClassVar[str] = "\x00all"

    ttl_s: float
    max_entries: int = 10_000
    _entries: OrderedDict[str, tuple[float, dict[int, int]]] = field(default_factory=OrderedDict)
    _flight: SingleFlight[dict[int, int]] = field(default_factory=SingleFlight)
    _refreshing: set[asyncio.Task[dict[int, int]]] = field(default_factory=set)

    def get(self, project_id: str) -> dict[int, int] | None:
        """The cached counts per cell id, or ``None`` when absent or stale."""
        entry = self._entries.get(project_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, project_id: str, counts: dict[int, int]) -> None:
        """Remember ``counts`` for ``ttl_s``; evict the oldest entry past the bound."""
        self._entries[project_id] = (time.monotonic() + self.ttl_s, counts)
        self._entries.move_to_end(project_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    async def counts(
        self, scope: str, load: Callable[[], Awaitable[dict[int, int]]]
    ) -> dict[int, int]:
        """The counts for ``scope``: cached, else loaded once for all concurrent callers."""
        fresh = self.get(scope)
        if fresh is not None:
            return fresh
        entry = self._entries.get(scope)

        async def fill() -> dict[int, int]:
            counts = await load()
            self.put(scope, counts)
            return counts

        if entry is not None and scope == self.ALL:
            # Only ALL is refreshed behind its answer, so one task at most: the requests
            # arriving while it runs start nothing.
            if not self._refreshing:
                task = asyncio.ensure_future(self._flight.do(scope, fill))
                self._refreshing.add(task)
                task.add_done_callback(self._refreshed)
            return entry[1]
        return await self._flight.do(scope, fill)

    async def close(self) -> None:
        """Cancel refreshes still running (shutdown: the engines are disposed next)."""
        refreshing = list(self._refreshing)
        for task in refreshing:
            task.cancel()
        await asyncio.gather(*refreshing, return_exceptions=True)

    def _refreshed(self, task: asyncio.Task[dict[int, int]]) -> None:
        self._refreshing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # The stale counts stay; the next request past the TTL tries again.
            log.warning("refreshing the cell counts failed: %r", task.exception())


@dataclass(slots=True)
class HeadShares:
    """What part of a walk's first page each cell supplied last time, per walk (an LRU).

    The instances-per-cell counts say how the *whole* listing divides between cells, but
    its head may not: newest-first, the cell the scheduler fills now holds most of the
    first page (measured: one cell with 50% of the rows gave 77% of an admin's first
    100). A first batch sized by the counts then misses and the page waits for a second,
    sequential query. The next first page of the same walk sizes each cell's batch by a
    blend of what it supplied last time and the counts (:meth:`blend`); a wrong estimate
    only costs that refill, never a row. Pages after a marker with no cached frontier
    learn under their own key (the walk's fingerprint plus ``@``): deep in a listing the
    cells mix as they do there, not as at its head (measured: the page at row 470,469 of
    8 cells read 219 rows in 10 queries with count-based batches).
    """

    LEARNED: ClassVar[float] = 0.75  # weight of the last first page vs the counts

    max_entries: int = 4096
    _entries: OrderedDict[str, dict[int, float]] = field(default_factory=OrderedDict)

    def blend(
        self, walk: str, counted: dict[int, float] | None, cells: list[int]
    ) -> dict[int, float] | None:
        """Each cell's expected share of a first page of ``walk`` (``None``: equal)."""
        learned = self._entries.get(walk)
        if learned is None:
            return counted
        self._entries.move_to_end(walk)
        even = 1 / max(1, len(cells))
        prior = counted or {}
        w = self.LEARNED
        return {c: w * learned.get(c, 0.0) + (1 - w) * prior.get(c, even) for c in cells}

    def learn(self, walk: str, supplied: dict[int, int]) -> None:
        """Remember each cell's part of a complete first page of ``walk``."""
        total = sum(supplied.values())
        if total == 0:
            return
        self._entries[walk] = {cell: n / total for cell, n in supplied.items()}
        self._entries.move_to_end(walk)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


@dataclass(slots=True)
class AppState:
    """The gateway's resources: settings, the API DB's client, the cells and their clients."""

    settings: Settings
    api: ApiDatabase
    cells: list[Cell]
    clients: dict[int, CellClient]  # per cell id
    project_cells: ProjectCells
    store: Store
    flight: SingleFlight[tuple[bytes, dict[str, str]]]
    metrics: Metrics
    tokens: TokenValidator | None = None  # auth_mode=keystone
    drills: Drills | None = None  # cellgate demo's outage drills (the console's buttons)
    head_shares: HeadShares = field(default_factory=HeadShares)
