"""Cells: schema, registry, keyset queries, the pure merge and the cross-cell lister.

A cell is reached only through its :class:`CellClient` (engine, driver executor, compile
cache, breaker, deadline), the API database through :class:`ApiDatabase`; what they raise
is a :class:`CellsError`. Never imports FastAPI or :mod:`gateway`; testable without HTTP.
"""

from cells.apidb import ApiDatabase
from cells.breaker import Breaker, BreakerEvent, BreakerState
from cells.client import CellClient
from cells.details import Details
from cells.errors import (
    ApiDatabaseUnavailable,
    CellMisconfigured,
    CellsError,
    InvalidQuery,
    MarkerNotFound,
    MarkerUnavailable,
    UnsupportedDatabase,
)
from cells.executor import Executor, SqlAlchemyExecutor, SqliteExecutor
from cells.fanout import (
    CellDetails,
    CellFailed,
    CellOutcome,
    CellRows,
    CellServer,
    CellSkipped,
    CellSlow,
    CellTimedOut,
    DetailsOutcome,
    DownOutcome,
    ServerOutcome,
    down_name,
    first_error,
    run_all,
)
from cells.faults import Blame, blame
from cells.filters import InstanceFilters
from cells.listing import CellStats, ListQuery, ListResult, list_instances, merge_sources
from cells.merge import Merge
from cells.order import Direction, Row, SortKey, SortSpec, SqlValue, key_function
from cells.rawsql import AsyncpgExecutor
from cells.registry import (
    Cell,
    EngineOptions,
    InstanceMapping,
    async_url,
    create_engine_for,
    executor_for,
)
from cells.session import CellSession
from cells.show import (
    CellDown,
    DownCellView,
    Found,
    Missing,
    ShowOutcome,
    down_cell_view,
    find_instance,
)
from cells.sources import InstanceSource, Source, StubRows
from cells.urls import MYSQL_DRIVER, format_db_url
from cells.walk import (
    CellCursor,
    Frontier,
    HeadShares,
    decode_frontier,
    encode_frontier,
    fingerprint,
    resolve_marker,
    walk_fingerprint,
)

__all__ = [
    "MYSQL_DRIVER",
    "ApiDatabase",
    "ApiDatabaseUnavailable",
    "AsyncpgExecutor",
    "Blame",
    "Breaker",
    "BreakerEvent",
    "BreakerState",
    "Cell",
    "CellClient",
    "CellCursor",
    "CellDetails",
    "CellDown",
    "CellFailed",
    "CellMisconfigured",
    "CellOutcome",
    "CellRows",
    "CellServer",
    "CellSession",
    "CellSkipped",
    "CellSlow",
    "CellStats",
    "CellTimedOut",
    "CellsError",
    "Details",
    "DetailsOutcome",
    "Direction",
    "DownCellView",
    "DownOutcome",
    "EngineOptions",
    "Executor",
    "Found",
    "Frontier",
    "HeadShares",
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
    "ServerOutcome",
    "ShowOutcome",
    "SortKey",
    "SortSpec",
    "Source",
    "SqlAlchemyExecutor",
    "SqlValue",
    "SqliteExecutor",
    "StubRows",
    "UnsupportedDatabase",
    "async_url",
    "blame",
    "create_engine_for",
    "decode_frontier",
    "down_cell_view",
    "down_name",
    "encode_frontier",
    "executor_for",
    "find_instance",
    "fingerprint",
    "first_error",
    "format_db_url",
    "key_function",
    "list_instances",
    "merge_sources",
    "resolve_marker",
    "run_all",
    "walk_fingerprint",
]
