"""Cells: schema, registry, keyset queries, the pure merge and the cross-cell lister.

Never imports FastAPI or :mod:`gateway`; testable without HTTP.
"""

from cells.breaker import Breaker, BreakerState
from cells.details import Details, fetch_details
from cells.drills import DRILLS, Drill, Drills
from cells.fanout import (
    CellFailed,
    CellOutcome,
    CellRows,
    CellSession,
    CellSkipped,
    CellSlow,
    CellTimedOut,
    run_all,
)
from cells.faults import Blame, CellMisconfigured, InvalidQuery, blame
from cells.filters import InstanceFilters
from cells.frontier import CellCursor, Frontier, decode_frontier, encode_frontier
from cells.lister import CellStats, ListQuery, ListResult, list_instances, merge_sources
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
from cells.show import (
    CellDown,
    DownCellView,
    Found,
    Missing,
    ShowOutcome,
    down_cell_view,
    find_instance,
    server_group,
)
from cells.sources import CellTarget, InstanceSource, Source, StubRows
from cells.urls import MYSQL_DRIVER, format_db_url

__all__ = [
    "DRILLS",
    "MYSQL_DRIVER",
    "ApiDatabase",
    "Blame",
    "Breaker",
    "BreakerState",
    "Cell",
    "CellCursor",
    "CellDown",
    "CellFailed",
    "CellMisconfigured",
    "CellOutcome",
    "CellRows",
    "CellSession",
    "CellSkipped",
    "CellSlow",
    "CellStats",
    "CellTarget",
    "CellTimedOut",
    "Details",
    "Direction",
    "DownCellView",
    "Drill",
    "Drills",
    "EngineOptions",
    "Found",
    "Frontier",
    "InstanceFilters",
    "InstanceMapping",
    "InstanceSource",
    "InvalidQuery",
    "ListQuery",
    "ListResult",
    "MarkerNotFound",
    "MarkerUnavailable",
    "Merge",
    "Missing",
    "Row",
    "ShowOutcome",
    "SortKey",
    "SortSpec",
    "Source",
    "SqlValue",
    "StubRows",
    "UnsupportedDatabase",
    "async_url",
    "blame",
    "create_engine_for",
    "decode_frontier",
    "down_cell_view",
    "encode_frontier",
    "fetch_details",
    "find_instance",
    "format_db_url",
    "key_function",
    "list_instances",
    "merge_sources",
    "resolve_marker",
    "run_all",
    "server_group",
]
