"""The summary table: one ratio per comparison, with both values; number formatting."""

from __future__ import annotations

import math

from cgbench.profiles import LIMITS, SCENARIOS, SystemName, scenario_key
from cgbench.results import LocustResult, OffsetPoint, Results

RatioRow = tuple[str, str, float, str]  # group, metric, ratio, "a / b unit"

HTTP = "sharded ÷ unsharded, HTTP"
INPROC = "sharded ÷ unsharded, in-process listing (no HTTP, no rendering)"
NOVA = "Nova-style ÷ sharded gateway, in-process, 8 cells"
OFFSET = "OFFSET ÷ keyset, unsharded DB, SQL only"


def ratio(a: float, b: float) -> float:
    return a / b if a and b and not math.isnan(a) and not math.isnan(b) else math.nan


def fmt(v: float, digits: int = 1) -> str:
    if math.isnan(v):
        return "–"
    return f"{v:,.{digits}f}"


def fx(v: float) -> str:
    return "–" if math.isnan(v) else f"{v:.2f}×"


def _offset_shown(points: list[OffsetPoint], limit: int) -> list[OffsetPoint]:
    """Depths 10,000 and 100,000 when measured, and the deepest one."""
    mine = [p for p in points if p.limit == limit and p.depth > 0]
    shown = [p for p in mine if p.depth in (10_000, 100_000)] + mine[-1:]
    return sorted({id(p): p for p in shown}.values(), key=lambda p: p.depth)


def build_ratios(r: Results) -> list[RatioRow]:
    """(group, metric, ratio, values) rows of the summary table."""
    rows: list[RatioRow] = []

    def add(group: str, metric: str, a: float, b: float, unit: str, digits: int = 1) -> None:
        rows.append((group, metric, ratio(a, b), f"{fmt(a, digits)} / {fmt(b, digits)} {unit}"))

    for who, limit in SCENARIOS:
        f = r.http_first[scenario_key(who, limit)]
        s, u = f["sharded"].latency, f["unsharded"].latency
        add(HTTP, f"first-page latency p50, {who}, limit {limit}", s.p50, u.p50, "ms")
        add(HTTP, f"first-page latency p95, {who}, limit {limit}", s.p95, u.p95, "ms")
    for who, limit in SCENARIOS:
        t = r.throughput[scenario_key(who, limit)]
        add(
            HTTP, f"throughput, {who}, limit {limit}", t["sharded"].rps, t["unsharded"].rps, "req/s"
        )
    for who, limit in SCENARIOS:
        t = r.throughput[scenario_key(who, limit)]
        metric = f"gateway CPU per request under load, {who}, limit {limit}"
        a, b = t["sharded"].cpu_gateway_ms, t["unsharded"].cpu_gateway_ms
        add(HTTP, metric, a, b, "ms", 2)
    walk_limit = r.profile.walk_limit
    for who, w in r.http_walk.items():
        hs, hu = w["sharded"], w["unsharded"]
        add(HTTP, f"walk {hs.pages}×{walk_limit}, {who}", hs.total_ms, hu.total_ms, "ms", 0)
    ls, lu = r.locust.get("sharded"), r.locust.get("unsharded")
    if isinstance(ls, LocustResult) and isinstance(lu, LocustResult):
        add(HTTP, "locust mixed workload throughput", ls.rps, lu.rps, "req/s")
    ip = r.inprocess
    pairs: tuple[tuple[str, SystemName, SystemName], ...] = (
        (INPROC, "sharded", "unsharded"),
        (NOVA, "nova", "sharded"),
    )
    for group, first, second in pairs:
        for who, limit in SCENARIOS:
            pair = ip.first[scenario_key(who, limit)]
            fa, fb = pair[first], pair[second]
            p50 = f"first-page latency p50, {who}, limit {limit}"
            add(group, p50, fa.latency.p50, fb.latency.p50, "ms")
            cpu = f"first-page CPU (bench process), {who}, limit {limit}"
            add(group, cpu, fa.cpu_ms, fb.cpu_ms, "ms", 2)
    for who, iw in ip.walk.items():
        n, g = iw["nova"], iw["sharded"]
        add(NOVA, f"walk {g.pages}×{walk_limit}, {who}", n.total_ms, g.total_ms, "ms", 0)
    for limit in LIMITS:
        for p in _offset_shown(r.offset.points, limit):
            metric = f"page at depth {p.depth:,}, limit {p.limit}"
            add(OFFSET, metric, p.offset_ms, p.keyset_ms, "ms")
    return rows
