"""``cellgate doctor``: the API database and every cell as the listing sees them, read-only.

Per database: reachable, latency (``SELECT 1`` on an open connection), server version and
the schema check (:mod:`cells.schemacheck`); per cell also the non-deleted instances
(``deleted = 0``), the collation (:mod:`cells.doctor.catalog`), and how its indexes serve the
listing orders (:mod:`cells.doctor.indexes`), with the statement that would serve each order an
index does not fully serve.

The doctor never writes: each database gets its own engine without a pool, PostgreSQL
sessions run with ``default_transaction_read_only = on``, MariaDB/MySQL sessions with
``SET SESSION TRANSACTION READ ONLY`` (and a statement deadline), and SQLite files are
opened with ``mode=ro`` (so a missing file is reported, not created). A cell that cannot
be connected to within the deadline is reported unreachable; any later failure is reported
as that step's error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from sqlalchemy import MetaData, func, literal, select
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from cells.apidb import ApiDatabase
from cells.doctor.catalog import (
    bound_statements,
    dialect_of,
    read_collation,
    read_indexes,
    read_version,
)
from cells.doctor.indexes import Coverage, ListingOrder, Serving, coverage, create_statement
from cells.errors import CellsError
from cells.faults import blame
from cells.registry import Cell, async_url, executor_for
from cells.schema import api_metadata, cell_metadata, instances
from cells.schemacheck import check_schema

__all__ = [
    "DatabaseReport",
    "Diagnosis",
    "OrderReport",
    "diagnose",
    "examine_cell",
    "read_only_engine",
    "read_only_engine_for",
]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class OrderReport:
    """One listing order on one cell; ``statement`` is set unless it is fully served."""

    order: str
    coverage: Coverage
    statement: str | None


@dataclass(frozen=True, slots=True)
class DatabaseReport:
    """What the doctor found in one database (the API database or a cell)."""

    name: str
    uuid: str = ""
    reachable: bool = False
    disabled: bool = False
    errors: tuple[str, ...] = ()
    latency_ms: float | None = None
    backend: str | None = None
    version: str | None = None
    instances: int | None = None
    collation: str | None = None
    schema_problems: tuple[str, ...] = ()
    orders: tuple[OrderReport, ...] = ()


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """The API database's report and every cell's."""

    api: DatabaseReport
    cells: tuple[DatabaseReport, ...]

    @property
    def ok(self) -> bool:
        """The API database and every reachable cell pass the schema check."""
        reports = (self.api, *self.cells)
        return self.api.reachable and not any(r.schema_problems for r in reports)


def read_only_engine(url: str, owner: str, timeout_s: float) -> AsyncEngine:
    """An engine for a Nova-style URL that cannot write (see :func:`read_only_engine_for`)."""
    return read_only_engine_for(make_url(async_url(url, owner)), timeout_s)


def read_only_engine_for(target: URL, timeout_s: float) -> AsyncEngine:
    """An engine for an async SQLAlchemy URL that cannot write: read-only sessions
    (PostgreSQL, MariaDB/MySQL), ``mode=ro`` (SQLite)."""
    backend = target.get_backend_name()
    if backend == "sqlite":
        path = target.database or ""
        if path and path != ":memory:" and not path.startswith("file:"):
            target = target.set(database=f"file:{path}").update_query_dict(
                {"mode": "ro", "uri": "true"}
            )
        return create_async_engine(target, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    if backend in ("mysql", "mariadb"):
        # aiomysql and asyncmy take the same two (PyMySQL's names).
        return create_async_engine(
            target,
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
            connect_args={
                "connect_timeout": max(1, round(timeout_s)),
                "init_command": "SET SESSION TRANSACTION READ ONLY",
            },
        )
    return create_async_engine(
        target,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={
            "timeout": timeout_s,
            "command_timeout": timeout_s,
            "server_settings": {
                "application_name": "cellgate-doctor",
                "default_transaction_read_only": "on",
                "statement_timeout": str(max(1, round(timeout_s * 1000))),
            },
        },
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer within the deadline"
    if isinstance(exc, DBAPIError):
        return blame(exc).message
    return str(exc) or type(exc).__name__


class _Steps:
    """Runs one read step under the deadline, recording its error instead of raising."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.errors: list[str] = []

    async def run(self, what: str, step: Awaitable[_T]) -> _T | None:
        try:
            async with asyncio.timeout(self.timeout_s):
                return await step
        except (TimeoutError, OSError, DBAPIError, CellsError) as exc:
            self.errors.append(f"{what}: {_reason(exc)}")
            return None

    def all(self, report: DatabaseReport) -> tuple[str, ...]:
        """The report's errors so far, then these steps'."""
        return (*report.errors, *self.errors)


async def _examine(
    conn: AsyncConnection,
    report: DatabaseReport,
    metadata: MetaData,
    orders: Sequence[ListingOrder],
    timeout_s: float,
) -> DatabaseReport:
    steps = _Steps(timeout_s)
    dialect = dialect_of(conn)
    version = await steps.run("version", read_version(conn, dialect))
    if dialect == "mysql" and version is not None:
        await steps.run("statement deadline", bound_statements(conn, version, timeout_s))
    report = replace(report, backend=dialect, version=version)
    owner = "API database" if metadata is api_metadata else f"cell {report.name}"
    problems = await steps.run("schema check", check_schema(conn, metadata, owner)) or []
    if metadata is api_metadata:
        return replace(report, schema_problems=tuple(problems), errors=steps.all(report))
    collation = await steps.run("collation", read_collation(conn, dialect))
    count = select(func.count()).select_from(instances).where(instances.c.deleted == 0)
    counted = await steps.run("instance count", conn.scalar(count))
    indexes = await steps.run("indexes", read_indexes(conn, dialect))
    order_reports: list[OrderReport] = []
    if indexes is not None:
        for order in orders:
            cov = coverage(order, indexes, dialect)
            statement = None if cov.serving is Serving.SERVED else create_statement(order, dialect)
            order_reports.append(OrderReport(order.label, cov, statement))
    return replace(
        report,
        errors=steps.all(report),
        schema_problems=tuple(problems),
        collation=collation,
        instances=None if counted is None else int(counted),
        orders=tuple(order_reports),
    )


async def _database(
    engine: AsyncEngine,
    report: DatabaseReport,
    metadata: MetaData,
    orders: Sequence[ListingOrder],
    timeout_s: float,
) -> tuple[DatabaseReport, list[Cell]]:
    """Examine one database; for the API database also return its cell mappings."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            async with asyncio.timeout(timeout_s):
                conn = await stack.enter_async_context(engine.connect())
                await conn.execute(select(literal(1)))  # the dialect's first-connect set-up
                started = time.perf_counter()
                await conn.execute(select(literal(1)))
                latency_ms = (time.perf_counter() - started) * 1000
        except (TimeoutError, OSError, DBAPIError) as exc:
            return replace(report, errors=(_reason(exc),)), []
        report = replace(report, reachable=True, latency_ms=latency_ms)
        report = await _examine(conn, report, metadata, orders, timeout_s)
        cells: list[Cell] = []
        if metadata is api_metadata and not report.schema_problems:
            steps = _Steps(timeout_s)
            api = ApiDatabase(executor_for(engine), timeout_s)
            cells = await steps.run("cell mappings", api.load_cells()) or []
            report = replace(report, errors=steps.all(report))
        return report, cells


async def examine_cell(
    engine: AsyncEngine, name: str, orders: Sequence[ListingOrder], timeout_s: float
) -> DatabaseReport:
    """One cell's report, on an engine the caller made (:func:`read_only_engine_for`)."""
    report, _ = await _database(engine, DatabaseReport(name), cell_metadata, orders, timeout_s)
    return report


async def _one(
    url: str,
    report: DatabaseReport,
    metadata: MetaData,
    orders: Sequence[ListingOrder],
    timeout_s: float,
) -> tuple[DatabaseReport, list[Cell]]:
    owner = "API database" if metadata is api_metadata else f"cell {report.name}"
    try:
        engine = read_only_engine(url, owner, timeout_s)
    except ValueError as exc:  # an unsupported or unparsable URL
        return replace(report, errors=(str(exc),)), []
    try:
        return await _database(engine, report, metadata, orders, timeout_s)
    finally:
        await engine.dispose()


async def diagnose(
    api_url: str,
    static_cells: Sequence[Cell],
    orders: Sequence[ListingOrder],
    timeout_s: float,
) -> Diagnosis:
    """Examine the API database, then every cell concurrently (``static_cells`` when given,
    else the API database's ``cell_mappings``); ``timeout_s`` bounds each step."""
    api, mapped = await _one(api_url, DatabaseReport("API database"), api_metadata, (), timeout_s)
    cells = list(static_cells) or mapped
    reports = await asyncio.gather(
        *(
            _one(
                cell.url,
                DatabaseReport(cell.label, cell.uuid, disabled=cell.disabled),
                cell_metadata,
                orders,
                timeout_s,
            )
            for cell in cells
        )
    )
    return Diagnosis(api, tuple(report for report, _ in reports))
