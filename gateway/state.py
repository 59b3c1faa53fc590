"""Everything the gateway builds at start-up and disposes at shutdown (no globals)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import ClassVar

from cache import SingleFlight, Store
from cells import ApiDatabase, Cell, CellTarget, Drills
from gateway.auth import TokenValidator
from gateway.metrics import Metrics
from gateway.settings import Settings

__all__ = ["AppState", "ProjectCells"]


@dataclass(slots=True)
class ProjectCells:
    """A small TTL cache of scope → instances per cell (from ``instance_mappings``); the
    scope is a project id, or ``ALL`` for every project."""

    ALL: ClassVar[str] = "\x00all"

    ttl_s: float
    max_entries: int = 10_000
    _entries: OrderedDict[str, tuple[float, dict[int, int]]] = field(default_factory=OrderedDict)

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


@dataclass(slots=True)
class AppState:
    """The gateway's resources: settings, API DB, cells and their engines."""

    settings: Settings
    api: ApiDatabase
    api_target: CellTarget  # the API DB as a merge input (down-cell stubs)
    cells: list[Cell]
    targets: dict[int, CellTarget]
    project_cells: ProjectCells
    store: Store
    flight: SingleFlight[tuple[bytes, dict[str, str]]]
    metrics: Metrics
    tokens: TokenValidator | None = None  # auth_mode=keystone
    drills: Drills | None = None  # cellgate demo's outage drills (the console's buttons)
