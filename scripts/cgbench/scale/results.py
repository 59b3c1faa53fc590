"""Everything one scale run measured, typed, and the figures (ratios) the issue asks for."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cgbench.load import Load
from cgbench.results import Latency
from cgbench.scale.data import DataSet
from cgbench.scale.inproc import Render, Strategies
from cgbench.scale.phases import DETAIL, FLOOR, HEALTHZ, SUMMARY, Deep, Freeze, WalkFigures
from cgbench.scale.smallpages import SmallPages
from cgbench.soakstats import SoakResult

if TYPE_CHECKING:
    from cgbench.scale.mariadb import MariaDBRun

__all__ = ["Figure", "Remote", "ScaleResults", "figures"]


@dataclass(frozen=True)
class Remote:
    """Cells (and the unsharded database) behind ``delay_ms`` each way."""

    delay_ms: float
    added_rtt_ms: float  # what the proxy adds to a round trip, measured (calibrate)
    first: dict[int, dict[str, Latency]]  # limit → data set name → latency
    strategies: Strategies  # Nova-style vs the gateway, 8 cells


@dataclass
class ScaleResults:
    """One run; a phase that did not run is absent (its reason in :attr:`skipped`)."""

    instances: int
    data: list[DataSet]
    started: str
    machine: dict[str, str]
    local: dict[str, dict[int, dict[str, Latency]]] = field(default_factory=dict)  # by indexes
    deep: dict[str, Deep] = field(default_factory=dict)  # by indexes
    walks: WalkFigures | None = None
    throughput: dict[str, dict[str, Load]] = field(default_factory=dict)  # by data set name
    freeze: Freeze | None = None
    workers: dict[int, Load] = field(default_factory=dict)
    remote: list[Remote] = field(default_factory=list)
    render: list[Render] = field(default_factory=list)
    soak: SoakResult | None = None
    mariadb: MariaDBRun | None = None  # the MariaDB phase (cgbench.scale.mariadb)
    small: SmallPages | None = None  # the small-page walk phase (smallpages.py)
    skipped: dict[str, str] = field(default_factory=dict)
    took_s: float = 0.0


@dataclass(frozen=True)
class Figure:
    """One of the issue's figures: a measured ratio against its goal."""

    key: str
    what: str
    value: float
    goal: str  # "<= 1.5", ">= 0.9", "report"
    detail: str

    @property
    def met(self) -> bool | None:
        if self.goal == "report" or math.isnan(self.value):
            return None
        op, bound = self.goal.split()
        return self.value <= float(bound) if op == "<=" else self.value >= float(bound)


def _name(cells: int, indexes: str = "nova") -> str:
    return f"{cells} cell{'s' if cells > 1 else ''}, {indexes} indexes"


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def figures(r: ScaleResults) -> list[Figure]:
    """The issue's figures from ``r``, for the data sets and phases that ran."""
    out: list[Figure] = []
    one, eight = _name(1), _name(8)
    for indexes, by_limit in r.local.items():
        a, b = _name(8, indexes), _name(1, indexes)
        for limit, goal in ((100, "<= 1.5"), (1000, "<= 1.2")):
            lat = by_limit.get(limit, {})
            if a in lat and b in lat:
                out.append(Figure(
                    f"P1a local {indexes} {limit}",
                    f"first-page p50, 8 cells ÷ unsharded, limit {limit}, local, {indexes} indexes",
                    _ratio(lat[a].p50, lat[b].p50), goal,
                    f"{lat[a].p50:.1f} / {lat[b].p50:.1f} ms",
                ))  # fmt: skip
        for limit in (100, 1000):
            lat = by_limit.get(limit, {})
            a, b = _name(32, indexes), _name(4, indexes)
            if a in lat and b in lat:
                out.append(Figure(
                    f"P4 {indexes} {limit}",
                    f"first-page p50, 32 cells ÷ 4 cells, limit {limit}, {indexes} indexes",
                    _ratio(lat[a].p50, lat[b].p50), "<= 1.5",
                    f"{lat[a].p50:.1f} / {lat[b].p50:.1f} ms",
                ))  # fmt: skip
    for remote in r.remote:
        for limit, goal in ((100, "<= 1.5"), (1000, "<= 1.2")):
            lat = remote.first.get(limit, {})
            if eight in lat and one in lat:
                out.append(Figure(
                    f"P1a remote {remote.delay_ms} {limit}",
                    f"first-page p50, 8 cells ÷ unsharded, limit {limit}, "
                    f"{remote.delay_ms:g} ms each way",
                    _ratio(lat[eight].p50, lat[one].p50), goal,
                    f"{lat[eight].p50:.1f} / {lat[one].p50:.1f} ms",
                ))  # fmt: skip
        s = remote.strategies
        out.append(Figure(
            f"nova first {remote.delay_ms}",
            f"Nova-style ÷ cellgate, first page, 8 cells, {remote.delay_ms:g} ms each way "
            "(in-process, summary columns, no side data)",
            _ratio(s.first_nova.p50, s.first_gateway.p50), "report",
            f"{s.first_nova.p50:.1f} / {s.first_gateway.p50:.1f} ms",
        ))  # fmt: skip
        out.append(Figure(
            f"nova walk {remote.delay_ms}",
            f"Nova-style ÷ cellgate, {s.walk_pages}-page walk (limit 1000), 8 cells, "
            f"{remote.delay_ms:g} ms each way (in-process, summary columns, no side data)",
            _ratio(s.walk_nova_ms, s.walk_gateway_ms), "report",
            f"{s.walk_nova_ms:.0f} / {s.walk_gateway_ms:.0f} ms",
        ))  # fmt: skip
    if r.walks is not None:
        w = r.walks.walks
        if eight in w and one in w:
            out.append(Figure(
                "P1b", f"mean page p50 over a full walk at limit {r.walks.limit}, 8 cells ÷ "
                "unsharded (frontier cache)",
                _ratio(w[eight].page.p50, w[one].page.p50), "<= 1.15",
                f"{w[eight].page.p50:.1f} / {w[one].page.p50:.1f} ms",
            ))  # fmt: skip
        for cells in (8, 32):
            rows = r.walks.cell_rows.get(_name(cells))
            walked = w.get(_name(cells))
            if rows is not None and walked is not None and walked.rows:
                out.append(Figure(
                    f"P2 {cells}", f"rows the cells' keyset queries returned ÷ rows returned, "
                    f"full walk, {cells} cells (pg_stat_statements)",
                    _ratio(rows.keyset_rows, walked.rows), "<= 1.1",
                    f"{rows.keyset_rows:,} / {walked.rows:,} rows, {rows.keyset_calls:,} queries",
                ))  # fmt: skip
        walked32 = w.get(_name(32))
        if walked32 is not None and len(walked32.rss_mb) >= 2:
            rss = [m for _, m in walked32.rss_mb]
            out.append(Figure(
                "P7", f"gateway RSS, end ÷ start of a full walk over 32 cells ({walked32.rows:,} "
                "rows)", _ratio(rss[-1], rss[0]), "<= 1.1",
                f"{rss[0]:.0f} → max {max(rss):.0f} → {rss[-1]:.0f} MiB",
            ))  # fmt: skip
    for indexes, deep in r.deep.items():
        a = _name(8, indexes)
        if a in deep.deep and a in deep.first:
            out.append(Figure(
                f"P3 {indexes}", f"the page at row {deep.depth:,} ÷ page 1, 8 cells, "
                f"{indexes} indexes", _ratio(deep.deep[a].p50, deep.first[a].p50), "<= 1.1",
                f"{deep.deep[a].p50:.1f} / {deep.first[a].p50:.1f} ms",
            ))  # fmt: skip
    if r.freeze is not None:
        f = r.freeze
        out.append(Figure(
            "P5", "throughput with one cell of 8 frozen ÷ healthy, after its breaker opened",
            _ratio(f.frozen.rps, f.healthy.rps), ">= 0.9",
            f"{f.frozen.rps:.0f} / {f.healthy.rps:.0f} req/s",
        ))  # fmt: skip
        out.append(Figure(
            "P5 first", "the first request after the freeze ÷ the cell deadline",
            _ratio(f.first_after_s, f.cell_timeout_s), "<= 1.2",
            f"{f.first_after_s * 1000:.0f} ms / {f.cell_timeout_s * 1000:.0f} ms"
            + ("" if f.partial else " (not a partial page naming cell1!)"),
        ))  # fmt: skip
    t8, t1 = r.throughput.get(eight), r.throughput.get(one)
    if t8 and t1:
        for view in (DETAIL, SUMMARY):
            out.append(Figure(
                f"P8 {view}", f"throughput, {view}, 8 cells ÷ unsharded",
                _ratio(t8[view].rps, t1[view].rps), ">= 0.5",
                f"{t8[view].rps:.0f} / {t1[view].rps:.0f} req/s",
            ))  # fmt: skip
        for view in (DETAIL, SUMMARY):
            out.append(Figure(
                f"P8 healthz {view}", f"throughput, {view}, 8 cells ÷ /healthz of the same "
                "server", _ratio(t8[view].rps, t8[HEALTHZ].rps), ">= 0.15",
                f"{t8[view].rps:.0f} / {t8[HEALTHZ].rps:.0f} req/s",
            ))  # fmt: skip
        if FLOOR in t8:
            out.append(Figure(
                "P8 floor", "the fan-out floor (the 8 cells' first-page queries alone, no "
                "gateway) ÷ /healthz: the most any gateway asking every cell can reach here",
                _ratio(t8[FLOOR].rps, t8[HEALTHZ].rps), "report",
                f"{t8[FLOOR].rps:.0f} / {t8[HEALTHZ].rps:.0f} req/s",
            ))  # fmt: skip
            out.append(Figure(
                "P8 gateway", "throughput, summary, limit 100, 8 cells ÷ the fan-out floor",
                _ratio(t8[SUMMARY].rps, t8[FLOOR].rps), "report",
                f"{t8[SUMMARY].rps:.0f} / {t8[FLOOR].rps:.0f} req/s",
            ))  # fmt: skip
    if r.soak is not None:
        t, growth = r.soak.totals, r.soak.rss
        out.append(Figure(
            "soak failures", f"failed requests in the {r.soak.seconds / 60:g}-minute soak "
            f"({t.requests:,} requests, {r.soak.users} users)",
            float(t.failures), "<= 0", f"{t.failures} of {t.requests:,}",
        ))  # fmt: skip
        out.append(Figure(
            "soak RSS", "gateway RSS over the soak at saturation, end ÷ after the first "
            "minute (warm: pools open, statement caches filled)",
            1 + growth.growth_after_warmup_pct / 100, "<= 1.05",
            f"{growth.warm_kib / 1024:.0f} → {growth.end_kib / 1024:.0f} MiB "
            f"(peak {growth.peak_kib / 1024:.0f})",
        ))  # fmt: skip
        out.append(Figure(
            "soak RSS idle", "gateway RSS, end of the soak ÷ idle before it (includes the "
            "warm-up: 64 cell connections opened, their statement caches)",
            1 + growth.growth_pct / 100, "report",
            f"{growth.start_kib / 1024:.0f} → {growth.end_kib / 1024:.0f} MiB",
        ))  # fmt: skip
    if r.small is not None:
        out += [Figure(*f) for f in r.small.figures()]
    if 1 in r.workers and 2 in r.workers:
        out.append(Figure(
            "workers", "throughput at limit 100, 8 cells, 2 workers ÷ 1 (2 cores)",
            _ratio(r.workers[2].rps, r.workers[1].rps), "report",
            f"{r.workers[2].rps:.0f} / {r.workers[1].rps:.0f} req/s",
        ))  # fmt: skip
    if r.mariadb is not None:
        out += r.mariadb.figures()
    return out
