"""Everything the gateway builds at start-up and disposes at shutdown (no globals)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar

from cachetools import FIFOCache

from cache import SingleFlight, Store
from cells import ApiDatabase, Cell, CellClient, HeadShares
from gateway.auth import TokenValidator
from gateway.metrics import Metrics
from gateway.neutron import Neutron
from gateway.policy import Policy
from gateway.readahead import ReadAheads
from gateway.settings import Settings
from gateway.zones import HostZones

__all__ = ["AppState", "ProjectCells"]

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

    The entries are a cachetools ``FIFOCache`` (reads do not renew an entry: the one
    written longest ago goes first) holding each entry's expiry beside its counts, not a
    ``TTLCache``: that drops an entry when it expires, and a stale ``ALL`` is still
    answered. One event loop uses it (cachetools' caches are not thread-safe).
    """

    ALL: ClassVar[str] = "\x00all"

    ttl_s: float
    max_entries: int = 10_000
    _entries: FIFOCache[str, tuple[float, dict[int, int]]] = field(init=False)
    _flight: SingleFlight[dict[int, int]] = field(default_factory=SingleFlight)
    _refreshing: set[asyncio.Task[dict[int, int]]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._entries = FIFOCache(self.max_entries)

    def get(self, project_id: str) -> dict[int, int] | None:
        """The cached counts per cell id, or ``None`` when absent or stale."""
        entry = self._entries.get(project_id)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, project_id: str, counts: dict[int, int]) -> None:
        """Remember ``counts`` for ``ttl_s``; past the bound, the entry written longest ago
        goes."""
        self._entries[project_id] = (time.monotonic() + self.ttl_s, counts)

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
    neutron: Neutron | None = None  # security_groups (gateway.neutron)
    head_shares: HeadShares = field(default_factory=HeadShares)
    policy: Policy = field(default_factory=Policy)  # Nova's defaults unless configured
    read_aheads: ReadAheads = field(default_factory=lambda: ReadAheads(0))  # none unless set
    host_zones: HostZones = field(default_factory=HostZones)  # hosted servers' zones
