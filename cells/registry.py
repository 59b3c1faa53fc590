"""The cells: where they are, one async engine each, and the API database that maps them.

Cells come from the API database's ``cell_mappings`` (Nova's), or from a static list. Their
``database_connection`` holds Nova-style *sync* URLs (or Nova's templates of one, filled from
the ``[database] connection`` URL), which :func:`~cells.urls.async_url` maps onto the async
drivers (asyncpg, asyncmy, aiosqlite); any other scheme is a startup error naming the cell.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cells.mysql import mysql_connect_args, mysql_session_setup
from cells.rawsql import RawSql, compile_for_asyncpg, driver_fetch
from cells.schema import cell_mappings, flavors, instance_mappings
from cells.urls import UnsupportedDatabase, async_url, format_db_url

__all__ = [
    "ApiDatabase",
    "Cell",
    "EngineOptions",
    "InstanceMapping",
    "PlanCacheMode",
    "UnsupportedDatabase",
    "async_url",
    "create_engine_for",
]

PlanCacheMode = Literal["auto", "force_custom_plan", "force_generic_plan"]
"""PostgreSQL's ``plan_cache_mode`` for the cell connections."""


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


class ApiDatabase:
    """Read-only queries on the API database.

    ``database_connection`` is ``[database] connection`` of ``nova.conf``, which fills
    templated ``cell_mappings`` URLs (:func:`~cells.urls.format_db_url`).
    """

    def __init__(self, engine: AsyncEngine, database_connection: str | None = None) -> None:
        self.engine = engine
        self.database_connection = database_connection

    async def load_cells(self) -> list[Cell]:
        """All cell mappings, ordered by id, their URL templates filled."""
        query = select(
            cell_mappings.c.id,
            cell_mappings.c.uuid,
            cell_mappings.c.name,
            cell_mappings.c.database_connection,
            cell_mappings.c.disabled,
        ).order_by(cell_mappings.c.id)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Cell(
                id=r.id,
                uuid=r.uuid,
                name=r.name or "",
                url=format_db_url(
                    r.database_connection or "", self.database_connection, f"cell {r.uuid}"
                ),
                disabled=bool(r.disabled),
            )
            for r in rows
        ]

    async def mapping(self, instance_uuid: str) -> InstanceMapping | None:
        """The mapping of one instance, or ``None``."""
        rows: Sequence[Any]
        async with self.engine.connect() as conn:
            if conn.dialect.driver == "asyncpg":  # a marker page's first round trip
                rows = await driver_fetch(conn, _mapping_sql(), uuid=instance_uuid)
            else:
                rows = (await conn.execute(_MAPPING.params(uuid=instance_uuid))).all()
        if not rows:
            return None
        uuid, cell_id, project_id, user_id, created_at, queued = rows[0]
        return InstanceMapping(uuid, cell_id, project_id, user_id, created_at, bool(queued))

    async def cell_counts(self, project_id: str | None) -> dict[int, int]:
        """Mapped instances per cell, for one project or all (cells with none are absent).

        An index-only count on ``(project_id, cell_id)`` (or ``(cell_id, ...)`` for all
        projects); the callers cache it.
        """
        c = instance_mappings.c
        query = select(c.cell_id, func.count()).where(c.cell_id.is_not(None)).group_by(c.cell_id)
        if project_id is not None:
            query = query.where(c.project_id == project_id)
        async with self.engine.connect() as conn:
            return {int(cell_id): int(n) for cell_id, n in (await conn.execute(query)).all()}

    async def flavor_ids(self, flavorid: str) -> frozenset[int]:
        """Internal ids of the flavor with public ``flavorid`` (empty when unknown)."""
        query = select(flavors.c.id).where(flavors.c.flavorid == flavorid)
        async with self.engine.connect() as conn:
            return frozenset((await conn.execute(query)).scalars())

    async def ping(self) -> None:
        """Raise if the API database cannot answer a trivial query."""
        async with self.engine.connect() as conn:
            await conn.execute(select(1))


_MAPPING = select(
    instance_mappings.c.instance_uuid,
    instance_mappings.c.cell_id,
    instance_mappings.c.project_id,
    instance_mappings.c.user_id,
    instance_mappings.c.created_at,
    instance_mappings.c.queued_for_delete,
).where(instance_mappings.c.instance_uuid == bindparam("uuid"))


@functools.cache
def _mapping_sql() -> RawSql:
    return compile_for_asyncpg(_MAPPING)
