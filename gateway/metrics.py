"""Prometheus metrics, one registry per app (no process globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cells import ListResult

__all__ = ["Metrics"]


@dataclass
class Metrics:
    """The gateway's counters; tests read them through :attr:`registry` too."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "cellgate_list_requests", "Listing requests by outcome", ["outcome"], registry=r
        )
        self.cell_queries = Counter(
            "cellgate_cell_queries", "Keyset queries sent to a cell", ["cell"], registry=r
        )
        self.rows_fetched = Counter(
            "cellgate_cell_rows_fetched", "Rows read from a cell", ["cell"], registry=r
        )
        self.rows_returned = Counter(
            "cellgate_rows_returned", "Rows returned to clients", registry=r
        )
        self.cell_outcomes = Counter(
            "cellgate_cell_outcomes", "Cell call outcomes", ["cell", "outcome"], registry=r
        )
        self.cell_latency = Histogram(
            "cellgate_cell_seconds",
            "Time spent in one cell per request",
            ["cell"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.show_requests = Counter(
            "cellgate_show_requests",
            "GET /servers/{id} by outcome: found, not_found, stub, unavailable, error",
            ["outcome"],
            registry=r,
        )
        self.frontier = Counter(
            "cellgate_frontier_lookups", "Cached merge frontier lookups", ["result"], registry=r
        )
        self.page_cache = Counter(
            "cellgate_page_cache", "Rendered page cache and coalescing", ["result"], registry=r
        )
        self.breaker_state = Gauge(
            "cellgate_cell_breaker_state",
            "Cell circuit breaker: 0 closed, 1 half-open, 2 open",
            ["cell"],
            registry=r,
        )
        self.config_errors = Counter(
            "cellgate_cell_config_errors",
            "Cell calls that failed on the cell's schema or permissions (500s, not outages)",
            ["cell"],
            registry=r,
        )
        self.cells_unavailable = Gauge(
            "cellgate_cells_unavailable_last", "Cells missing from the last listing", registry=r
        )

    def observe(self, result: ListResult) -> None:
        """Record one listing's per-cell costs."""
        for stats in result.stats:
            label = stats.cell.label
            self.cell_queries.labels(label).inc(stats.queries)
            self.rows_fetched.labels(label).inc(stats.rows_fetched)
            self.cell_outcomes.labels(label, stats.outcome).inc()
            if stats.queries:
                self.cell_latency.labels(label).observe(stats.elapsed_ms / 1000)
        self.rows_returned.inc(len(result.rows))
        self.cells_unavailable.set(len(result.unavailable))

    def sample(self, name: str, **labels: str) -> float:
        """The current value of a sample (0 when absent)."""
        return self.registry.get_sample_value(name, labels) or 0.0
