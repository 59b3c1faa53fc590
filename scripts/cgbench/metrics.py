"""A gateway's Prometheus text from ``/metrics``, and its cell work per request."""

from __future__ import annotations

import math
from collections import defaultdict

from prometheus_client.parser import text_string_to_metric_families

from cgbench.results import CellCost, RequestCost

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_metrics(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = float(s.value)
    return out


def metric_total(samples: Samples, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def metric_by(samples: Samples, name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for (n, lab), v in samples.items():
        if n == name:
            out[dict(lab).get(label, "")] += v
    return dict(out)


def metric_delta(before: Samples, after: Samples) -> Samples:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def cost_per_request(delta: Samples, requests: int) -> RequestCost:
    """Cell queries, rows fetched/returned per request, per-cell queries and mean time."""
    n = max(1, requests)
    queries = metric_by(delta, "cellgate_cell_queries_total", "cell")
    fetched = metric_by(delta, "cellgate_cell_rows_fetched_total", "cell")
    secs = metric_by(delta, "cellgate_cell_seconds_sum", "cell")
    calls = metric_by(delta, "cellgate_cell_seconds_count", "cell")
    per_cell = {
        cell: CellCost(
            queries=queries.get(cell, 0.0) / n,
            rows_fetched=fetched.get(cell, 0.0) / n,
            ms=1000 * secs.get(cell, 0.0) / calls[cell] if calls.get(cell) else math.nan,
        )
        for cell in sorted(queries, key=lambda c: (len(c), c))
        if cell.startswith("cell") and queries.get(cell, 0.0) > 0
    }
    lookups = metric_by(delta, "cellgate_frontier_lookups_total", "result")
    return RequestCost(
        queries=sum(queries.values()) / n,
        rows_fetched=sum(fetched.values()) / n,
        rows_returned=metric_total(delta, "cellgate_rows_returned_total") / n,
        cells_asked=len(per_cell),
        frontier_hit=lookups.get("hit", 0.0),
        frontier_miss=lookups.get("miss", 0.0),
        per_cell=per_cell,
    )
