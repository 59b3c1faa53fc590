"""The cells: where they are, one async engine each, and each engine's executor.

Cells come from the API database's ``cell_mappings`` (Nova's), or from a static list. Their
``database_connection`` holds Nova-style *sync* URLs (or Nova's templates of one, filled from
the ``[database] connection`` URL), which :func:`~cells.urls.async_url` maps onto the async
drivers (asyncpg, asyncmy, aiosqlite); any other scheme is a startup error naming the cell.
Which executor runs a database's statements is decided here, once per engine
(:func:`executor_for`): the only place that asks which driver a database speaks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cells.errors import UnsupportedDatabase
from cells.executor import Executor, SqlAlchemyExecutor, SqliteExecutor
from cells.mysql import MySqlExecutor, mysql_connect_args, mysql_session_setup
from cells.rawsql import AsyncpgExecutor
from cells.urls import async_url

__all__ = [
    "Cell",
    "EngineOptions",
    "InstanceMapping",
    "PlanCacheMode",
    "UnsupportedDatabase",
    "async_url",
    "create_engine_for",
    "executor_for",
    "open_executor",
]

PlanCacheMode = Literal["auto", "force_custom_plan", "force_generic_plan"]
"""PostgreSQL's ``plan_cache_mode`` for the cell connections."""

# The executor of each async driver (cells.executor); another SQLAlchemy driver gets the
# generic one. A new backend adds its driver's executor here.
_EXECUTORS: dict[str, Callable[[AsyncEngine], Executor]] = {
    "asyncpg": AsyncpgExecutor,
    "aiosqlite": SqliteExecutor,
    "asyncmy": MySqlExecutor,
}


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """Pool and timeout settings for one cell engine."""

    pool_size: int = 5
    max_overflow: int = 5
    pool_timeout_s: float = 2.0
    connect_timeout_s: float = 2.0
    command_timeout_s: float = 5.0
    plan_cache_mode: PlanCacheMode = "force_custom_plan"
    # asyncpg's prepared statements per connection (and SQLAlchemy's adapter's): ~12 KiB
    # each, filled slowly as a connection meets new query shapes (a soak's slow RSS drift).
    statement_cache_size: int = 64
    # PostgreSQL's max_parallel_workers_per_gather: 0, no parallel plans. The planner picks
    # a Gather over a detail page's side-data union on a big cell (1M instances: 14 ms with
    # two workers, 2.6 ms without); a gateway's many small queries want none.
    parallel_workers: int = 0


def create_engine_for(url: str, options: EngineOptions, owner: str = "database") -> AsyncEngine:
    """One async engine for a cell (or the API DB): read-only use, autocommit, no resets.

    Autocommit avoids a BEGIN/ROLLBACK pair around every read; the gateway never writes.
    On PostgreSQL, ``statement_timeout`` is the call deadline, and ``plan_cache_mode``
    the option's, ``force_custom_plan`` by default: a generic plan of the keyset query,
    chosen without seeing the project or the position (and ``auto`` switches to one after
    five runs of a prepared statement), was measured slower on Nova's own index set
    (BENCHMARKS.md, "Plans on Nova's indexes"). On MariaDB/MySQL, ``max_statement_time``
    / ``max_execution_time`` is the call deadline (:mod:`cells.mysql`).
    """
    target = async_url(url, owner)
    connect_args: dict[str, object] = {"timeout": options.command_timeout_s}  # aiosqlite
    if target.startswith("postgresql"):
        connect_args = {
            "timeout": options.connect_timeout_s,
            "command_timeout": options.command_timeout_s,
            "statement_cache_size": options.statement_cache_size,
            "prepared_statement_cache_size": options.statement_cache_size,
            "server_settings": {
                "application_name": "cellgate",
                "plan_cache_mode": options.plan_cache_mode,
                "max_parallel_workers_per_gather": str(options.parallel_workers),
                # The server's own backstop: a listing query never outlives its deadline,
                # even if the cancel request sent at the deadline is lost.
                "statement_timeout": str(max(1, round(options.command_timeout_s * 1000))),
            },
        }
    elif target.startswith("mysql"):
        connect_args = mysql_connect_args(target, options.connect_timeout_s)
    engine = create_async_engine(
        target,
        pool_size=options.pool_size,
        max_overflow=options.max_overflow,
        pool_timeout=options.pool_timeout_s,
        isolation_level="AUTOCOMMIT",
        connect_args=connect_args,
    )
    if target.startswith("mysql"):
        mysql_session_setup(engine, options.command_timeout_s)
    return engine


@dataclass(frozen=True, slots=True)
class Cell:
    """A cell database: Nova's cell mapping plus our engine for it."""

    id: int
    uuid: str
    name: str
    url: str
    disabled: bool = False

    @property
    def label(self) -> str:
        """The name shown to operators (falls back to the uuid)."""
        return self.name or self.uuid


@dataclass(frozen=True, slots=True)
class InstanceMapping:
    """Where an instance lives (``instance_mappings`` row)."""

    instance_uuid: str
    cell_id: int | None
    project_id: str
    user_id: str | None
    created_at: dt.datetime | None
    queued_for_delete: bool


def executor_for(engine: AsyncEngine) -> Executor:
    """The executor for ``engine``'s driver: the one place a driver is named at run time."""
    make = _EXECUTORS.get(engine.dialect.driver, SqlAlchemyExecutor)
    return make(engine)


def open_executor(url: str, options: EngineOptions, owner: str = "database") -> Executor:
    """An engine for ``url`` (:func:`create_engine_for`) and its driver's executor."""
    return executor_for(create_engine_for(url, options, owner))
