"""Cells: schema, registry, keyset queries, the pure merge and the cross-cell lister.

Never imports FastAPI or :mod:`gateway`; testable without HTTP.
"""

from cells.breaker import Breaker, BreakerState
from cells.details import Details, fetch_details
from cells.fanout import CellFailed, CellOutcome, CellRows, CellSession, CellTimedOut, InvalidQuery
from cells.filters import InstanceFilters
from cells.lister import (
    CellResume,
    CellStats,
    CellTarget,
    ListQuery,
    ListResult,
    StubSource,
    list_instances,
)
from cells.markers import MarkerNotFound, MarkerUnavailable, resolve_marker
from cells.merge import Merge
from cells.order import Direction, Row, SortKey, SortSpec, SqlValue, key_function
from cells.registry import (
    ApiDatabase,
    Cell,
    EngineOptions,
    InstanceMapping,
    UnsupportedDatabase,
    async_url,
    create_engine_for,
)

__all__ = [
    "ApiDatabase",
    "Breaker",
    "BreakerState",
    "Cell",
    "CellFailed",
    "CellOutcome",
    "CellResume",
    "CellRows",
    "CellSession",
    "CellStats",
    "CellTarget",
    "CellTimedOut",
    "Details",
    "Direction",
    "EngineOptions",
    "InstanceFilters",
    "InstanceMapping",
    "InvalidQuery",
    "ListQuery",
    "ListResult",
    "MarkerNotFound",
    "MarkerUnavailable",
    "Merge",
    "Row",
    "SortKey",
    "SortSpec",
    "SqlValue",
    "StubSource",
    "UnsupportedDatabase",
    "async_url",
    "create_engine_for",
    "fetch_details",
    "key_function",
    "list_instances",
    "resolve_marker",
]
