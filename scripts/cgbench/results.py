"""What a run measures, as frozen dataclasses (the report reads nothing else).

Per-scenario mappings are keyed by :func:`~cgbench.profiles.scenario_key` (``admin/100``);
per-system ones by :data:`~cgbench.profiles.ServerName` or
:data:`~cgbench.profiles.SystemName`.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from cgbench.profiles import Profile, ServerName, SystemName, Who


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class Latency:
    """Latency samples summarised, in ms (NaN when there are none)."""

    n: int
    p50: float
    p95: float
    mean: float
    min: float

    @classmethod
    def of(cls, samples_s: Sequence[float]) -> Latency:
        ms = [s * 1000 for s in samples_s]
        return cls(
            n=len(ms),
            p50=pct(ms, 0.5),
            p95=pct(ms, 0.95),
            mean=statistics.fmean(ms) if ms else math.nan,
            min=min(ms) if ms else math.nan,
        )


@dataclass(frozen=True)
class CellCost:
    """One cell's part of a request: queries and rows per request, mean time per call."""

    queries: float
    rows_fetched: float
    ms: float


@dataclass(frozen=True)
class RequestCost:
    """A gateway's cell work per request, from its ``/metrics`` deltas."""

    queries: float
    rows_fetched: float
    rows_returned: float
    cells_asked: int
    frontier_hit: float
    frontier_miss: float
    per_cell: dict[str, CellCost]


@dataclass(frozen=True)
class DataInfo:
    """The seeded data sets: rows per cell, visible rows, seeding time."""

    instances: int
    seed: int
    per_cell8: dict[str, int]
    per_cell1: dict[str, int]
    seed_s: float
    reused: bool
    visible_admin: int  # rows an admin all_tenants listing shows (not deleted)
    visible_demo: int


@dataclass(frozen=True)
class Machine:
    cpu: str
    memory: str
    os: str
    python: str
    packages: str
    commit: str


@dataclass(frozen=True)
class Services:
    postgresql: str
    pg_settings: str
    redis: str = "?"


@dataclass(frozen=True)
class Skipped:
    """A phase that did not run (tool missing, disabled, or it wrote nothing)."""

    reason: str


@dataclass(frozen=True)
class CpuProfile:
    """Shares of one thread's py-spy samples: self time by area and by function, inclusive
    time of our functions; in-process profiles also count pages and CPU per page."""

    samples: int
    other_thread_samples: int
    other_thread_top: list[tuple[str, int]]
    by_area: list[tuple[str, float]]
    self: list[tuple[str, float]]
    inclusive_ours: list[tuple[str, float]]
    pages: int = 0
    cpu_ms_per_page: float | None = None


@dataclass(frozen=True)
class InprocFirst:
    latency: Latency
    cpu_ms: float
    queries: float
    rows_fetched: float


@dataclass(frozen=True)
class InprocWalk:
    total_ms: float
    per_page_ms: list[float]
    pages: int
    rows: int
    queries_per_page: float
    rows_fetched_per_page: float


@dataclass(frozen=True)
class InprocessResults:
    first: dict[str, dict[SystemName, InprocFirst]]
    walk: dict[Who, dict[SystemName, InprocWalk]]
    same_rows: bool
    profiles: dict[int, CpuProfile | Skipped] = field(default_factory=dict)  # by limit


@dataclass(frozen=True)
class OffsetPoint:
    limit: int
    depth: int
    offset_ms: float
    keyset_ms: float


@dataclass(frozen=True)
class OffsetResults:
    rows: int
    points: list[OffsetPoint]
    same_rows: bool


@dataclass(frozen=True)
class HttpFirst:
    latency: Latency
    errors: int
    same_rows: bool
    cost: RequestCost


@dataclass(frozen=True)
class HttpWalk:
    total_ms: float
    per_page_ms: list[float]
    pages: int
    rows: int
    same_rows: bool
    cost: RequestCost


@dataclass(frozen=True)
class LoadResult:
    """A closed-loop load window: throughput, latency and CPU per request by process."""

    rps: float
    requests: int
    errors: int
    p50: float
    p95: float
    cpu_gateway_ms: float
    cpu_pg_ms: float
    cpu_client_ms: float
    other_cores: float  # cores busy with work that is not this benchmark's


@dataclass(frozen=True)
class LocustResult:
    rps: float
    requests: int
    failures: int
    p50: float
    p95: float
    by_name: dict[str, float]


@dataclass(frozen=True)
class Results:
    """One whole run."""

    profile: Profile
    command: str
    store_desc: str
    clients: int
    clients_note: str
    machine: Machine
    services: Services
    data: DataInfo
    inprocess: InprocessResults
    offset: OffsetResults
    http_first: dict[str, dict[ServerName, HttpFirst]]
    http_walk: dict[Who, dict[ServerName, HttpWalk]]
    throughput: dict[str, dict[ServerName, LoadResult]]
    locust: dict[ServerName, LocustResult | Skipped]  # empty with --no-locust
    pyspy: CpuProfile | Skipped | None  # None with --no-profile
    server_warnings: dict[ServerName, dict[str, int]]
    runtime_s: float
    finished: str
    load_before: str
    load_after: str

    @property
    def same_rows(self) -> bool:
        """Every comparison of sharded, unsharded (and Nova-style) rows agreed."""
        return (
            self.inprocess.same_rows
            and all(s.same_rows for w in self.http_walk.values() for s in w.values())
            and all(s.same_rows for f in self.http_first.values() for s in f.values())
        )

    @property
    def errors(self) -> int:
        """Failed requests of the first-page and throughput phases."""
        return sum(s.errors for t in self.throughput.values() for s in t.values()) + sum(
            s.errors for f in self.http_first.values() for s in f.values()
        )
