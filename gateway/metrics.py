"""Prometheus metrics, one registry per app (no process globals), and the middleware that
counts and times every HTTP request by route template.

Under ``cellgate serve --workers N`` (N > 1) every worker process keeps its own values, and
prometheus_client writes them to files in ``PROMETHEUS_MULTIPROC_DIR`` (a private directory
the parent creates, see :mod:`gateway.cli`). ``/metrics`` then reads that directory
(:meth:`Metrics.exposition`), whichever worker answers: counters and histograms are summed
over the workers (those that died included); each gauge says how it combines them:

- ``cellgate_cell_breaker_state``, ``cellgate_redis_breaker_state``: ``livemax``, the worst
  breaker among the running workers (2 = some worker skips that cell, or Redis). A worker
  refreshes its cell breakers after each request it serves, so a worker's value is as of
  its last request.
- ``cellgate_cells_unavailable_last``: ``livemostrecent``, the last listing of any worker.

``_created`` samples are not exported in that mode (prometheus_client's limitation).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cache import CallResult, StoreOp
from cells import BreakerState, CellClient, ListResult

__all__ = ["HttpMetricsMiddleware", "ListOutcome", "Metrics", "RedisMetrics"]

# The outcome label of ``cellgate_list_requests_total``.
ListOutcome = Literal["complete", "partial", "client_error", "unavailable", "error"]

# The exported value of a breaker's state, the cells' and Redis' alike (dashboards read it).
_BREAKER_LEVELS = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}
_SECONDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_HTTP_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True, slots=True)
class RedisMetrics:
    """The :class:`cache.StoreHooks` the Redis store reports to, and the gauge of its
    breaker (told by the breaker: :meth:`breaker`)."""

    calls: Counter
    breaker_state: Gauge

    def call(self, op: StoreOp, result: CallResult) -> None:
        self.calls.labels(op, result).inc()

    def breaker(self, state: BreakerState) -> None:
        """The Redis breaker moved to ``state``."""
        self.breaker_state.set(_BREAKER_LEVELS[state])


def _multiprocess_dir() -> Path | None:
    # prometheus_client's own switch, read by it when imported (not a cellgate setting).
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(path) if path else None


@dataclass
class Metrics:
    """The gateway's counters; tests read them through :attr:`registry` too (the values
    of this process only; :meth:`exposition` is what ``/metrics`` serves)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    multiprocess_dir: Path | None = field(default_factory=_multiprocess_dir)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "cellgate_list_requests",
            "Listing requests by outcome: complete, partial (cells missing), client_error, "
            "unavailable (503), error",
            ["outcome"],
            registry=r,
        )
        self.http_requests = Counter(
            "cellgate_http_requests",
            "HTTP requests by route template (unmatched: other), method and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "cellgate_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template",
            ["route"],
            buckets=_HTTP_SECONDS,
            registry=r,
        )
        self.redis = RedisMetrics(
            Counter(
                "cellgate_redis_calls",
                "Redis calls by op (get, set) and result (ok, error, skipped: breaker open)",
                ["op", "result"],
                registry=r,
            ),
            Gauge(
                "cellgate_redis_breaker_state",
                "Redis circuit breaker: 0 closed, 1 half-open, 2 open",
                registry=r,
                multiprocess_mode="livemax",
            ),
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
            buckets=_SECONDS,
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
        self.read_ahead = Counter(
            "cellgate_read_ahead",
            "Frontier read-aheads: started, kept (asked again), saved, awaited (by the next "
            "page), cancelled, failed",
            ["result"],
            registry=r,
        )
        self.page_cache = Counter(
            "cellgate_page_cache", "Rendered page cache and coalescing", ["result"], registry=r
        )
        self.breaker_state = Gauge(
            "cellgate_cell_breaker_state",
            "Cell circuit breaker: 0 closed, 1 half-open, 2 open",
            ["cell"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.breaker_shares = Counter(
            "cellgate_cell_breaker_shares",
            "Cell breaker openings shared through Redis: sent (found here), received "
            "(a peer's, opening this process's breaker)",
            ["cell", "direction"],
            registry=r,
        )
        self.config_errors = Counter(
            "cellgate_cell_config_errors",
            "Cell calls that failed on the cell's schema or permissions (the cell left out "
            "of the answer, its breaker untouched), by reason: missing_table, "
            "missing_column, permission, schema",
            ["cell", "reason"],
            registry=r,
        )
        self.api_fallbacks = Counter(
            "cellgate_api_database_fallbacks",
            "Answers given without an API database lookup that failed, by lookup: "
            "cell_counts (a listing asked every enabled cell instead of the project's), "
            "mapping (show asked every cell for the server)",
            ["lookup"],
            registry=r,
        )
        self.cells_unavailable = Gauge(
            "cellgate_cells_unavailable_last",
            "Cells missing from the last listing",
            registry=r,
            multiprocess_mode="livemostrecent",
        )
        self._breaker_levels: dict[str, int] = {}

    def observe(self, result: ListResult) -> None:
        """Record one listing's per-cell costs."""
        for stats in result.stats:
            label = stats.cell.label
            self.cell_queries.labels(label).inc(stats.queries)
            self.rows_fetched.labels(label).inc(stats.rows_fetched)
            self.cell_outcomes.labels(label, stats.outcome).inc()
            if stats.schema_fault is not None:
                self.config_errors.labels(label, stats.schema_fault).inc()
            if stats.queries:
                self.cell_latency.labels(label).observe(stats.elapsed_ms / 1000)
        self.rows_returned.inc(len(result.rows))
        self.cells_unavailable.set(len(result.unavailable))

    def record_breakers(self, clients: Iterable[CellClient]) -> None:
        """Set ``cellgate_cell_breaker_state`` from the cells' breakers (only the changes:
        under workers a write goes to a shared file)."""
        for client in clients:
            label, level = client.cell.label, _BREAKER_LEVELS[client.breaker_state]
            if self._breaker_levels.get(label) != level:
                self.breaker_state.labels(label).set(level)
                self._breaker_levels[label] = level

    def exposition(self) -> bytes:
        """The text ``/metrics`` serves: this app's registry, or under workers every
        worker's values read from :attr:`multiprocess_dir`."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]  # prometheus_client.multiprocess is unannotated
        return generate_latest(registry)

    def sample(self, name: str, **labels: str) -> float:
        """The current value of a sample (0 when absent)."""
        return self.registry.get_sample_value(name, labels) or 0.0


def _route(scope: Scope) -> str:
    # The router records the route it matched (a 405's partial match too) in the scope.
    path = getattr(scope.get("route"), "path", None)
    return path if isinstance(path, str) else "other"


class HttpMetricsMiddleware:
    """Count and time every HTTP request by route *template* (``/v2.1/servers/{server_id}``,
    never the raw path, so the label set stays bounded; unmatched: ``other``).

    The metrics live in the lifespan state; a request served before start-up is not
    counted. It must sit inside any middleware that copies the scope, or the route the
    router records is lost (``HEAD`` is counted as the ``GET`` it is served as).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = getattr(scope["app"].state, "cellgate", None) if "app" in scope else None
        if scope["type"] != "http" or state is None:
            await self.app(scope, receive, send)
            return
        metrics: Metrics = state.metrics
        status = 500  # what the server answers when the app raises before responding
        start = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = _route(scope)
            metrics.http_requests.labels(route, scope["method"], str(status)).inc()
            metrics.http_duration.labels(route).observe(time.perf_counter() - start)
            if metrics.multiprocess_dir is not None:
                # Another worker may answer the next scrape: keep this one's breakers current.
                metrics.record_breakers(state.clients.values())
