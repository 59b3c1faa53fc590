"""Seeding: create the API and cell databases and tables, and fill them with generated rows.

The rows come from :mod:`cells.seeding.dataset` (pure); this module owns the I/O. Each database is
written in one transaction that first empties the seeded tables, so re-seeding is
idempotent and a failed run leaves the previous data in place. PostgreSQL is loaded with
``COPY`` (asyncpg ``copy_records_to_table``) and analysed afterwards; SQLite with
``executemany`` inserts; MariaDB/MySQL with batched multi-row inserts
(:mod:`cells.seeding.mysqlload`). On PostgreSQL, secondary indexes and foreign keys are dropped
before the load and recreated after it (:mod:`cells.seeding.pgload`).

Over the house size on purpose: one writer per backend (COPY, executemany, batched
inserts) behind one ``seed`` entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from sqlalchemy import MetaData, Table, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool
from tqdm import tqdm

from cells.registry import async_url
from cells.schema import (
    CELL0_UUID,
    api_metadata,
    cell_mappings,
    cell_metadata,
    flavors,
    instance_mappings,
    instances,
    services,
)
from cells.seeding.apirows import API_COLUMNS
from cells.seeding.dataset import (
    EPOCH,
    FLAVOR_COLUMNS,
    INSTANCE_COLUMNS,
    MAPPING_COLUMNS,
    SERVICE_COLUMNS,
    SIDE_COLUMNS,
    Row,
    SeedPlan,
    flavor_rows,
    service_rows,
)
from cells.seeding.generator import Chunk, iter_chunks
from cells.seeding.mysqlload import (
    mysql_drop_database,
    mysql_ensure_database,
    mysql_prepare_load,
)
from cells.seeding.pgload import drop_secondary_structures

__all__ = [
    "SeedCell",
    "SeedPlan",
    "SeedSummary",
    "cell_uuid",
    "drop_database",
    "ensure_database",
    "reset_database",
    "seed",
]

_CELL_NAMESPACE = uuid.UUID("6f1d3c2e-8a4b-5e7f-9c0d-1a2b3c4d5e6f")
_MAINTENANCE_DBS = frozenset({"postgres", "template0", "template1"})
_CONNECT_TIMEOUT_S = 10.0
_CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class SeedCell:
    """A cell to seed: its ``cell_mappings.name`` and Nova-style sync database URL."""

    name: str
    url: str


@dataclass(frozen=True)
class SeedSummary:
    """What :func:`seed` wrote: instance rows per cell name, mapping rows, wall time."""

    instances_per_cell: dict[str, int]
    mappings: int
    elapsed_s: float


async def ensure_database(url: str) -> None:
    """Create the database if it does not exist (SQLite: its parent directory)."""
    parsed = _parse(async_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(parsed)
        if path is not None:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        return
    if parsed.get_backend_name() == "mysql":
        await mysql_ensure_database(parsed)
        return
    name = _pg_database(parsed)
    conn = await _pg_maintenance_connect(parsed)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name) is None:
            # A concurrent creator winning the race is what we wanted anyway.
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f"CREATE DATABASE {_quote(name)}")
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    """Drop the database if it exists, disconnecting its sessions (SQLite: delete the file)."""
    parsed = _parse(async_url(url))
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(parsed)
        if path is not None:
            for suffix in ("", "-journal", "-wal", "-shm"):
                await asyncio.to_thread(Path(f"{path}{suffix}").unlink, missing_ok=True)
        return
    if parsed.get_backend_name() == "mysql":
        await mysql_drop_database(parsed)
        return
    name = _pg_database(parsed)
    conn = await _pg_maintenance_connect(parsed)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_quote(name)} WITH (FORCE)")
    finally:
        await conn.close()


def cell_uuid(name: str) -> str:
    """The uuid the seeder gives the cell called ``name`` (Nova's fixed one for cell0)."""
    return CELL0_UUID if name == "cell0" else str(uuid.uuid5(_CELL_NAMESPACE, name))


async def reset_database(url: str) -> None:
    """Drop and recreate the database, empty (for tests and devstack)."""
    await drop_database(url)
    await ensure_database(url)


async def seed(
    api_url: str, cells: Sequence[SeedCell], plan: SeedPlan, *, progress: bool = True
) -> SeedSummary:
    """Create the databases and tables, then replace their rows with generated data.

    Writes ``cell_mappings`` (one per cell, ``id`` = position + 1, in order), the flavor
    catalog, ``instance_mappings``, ``request_specs`` and server groups into the API
    database, and each cell's ``instances``
    with their side tables (``instance_extra``, ``instance_info_caches``, metadata, tags,
    faults, block device mappings).
    Cells must have distinct names and URLs, none equal to ``api_url``.
    """
    started = time.perf_counter()
    _check_targets(api_url, cells)
    await asyncio.gather(*(ensure_database(u) for u in [api_url, *(c.url for c in cells)]))
    counts = [0] * len(cells)
    mappings = 0
    async with AsyncExitStack() as stack:
        api = await stack.enter_async_context(_loading(api_url, api_metadata))
        dbs = [await stack.enter_async_context(_loading(c.url, cell_metadata)) for c in cells]
        await api.write(cell_mappings, _CELL_COLUMNS, _cell_rows(cells))
        await api.write(flavors, FLAVOR_COLUMNS, flavor_rows())
        seen = datetime.now(UTC).replace(tzinfo=None)
        for db in dbs:
            await db.write(services, SERVICE_COLUMNS, service_rows(seen))
        bar = stack.enter_context(
            tqdm(total=plan.instances, unit="inst", file=sys.stderr, disable=not progress)
        )
        # The next chunk is generated in a thread while this one is written: generation is
        # Python work, the COPY mostly PostgreSQL's.
        chunks = iter_chunks(len(cells), plan, _CHUNK_ROWS)
        pending = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
        try:
            while (chunk := await pending) is not None:
                pending = asyncio.ensure_future(asyncio.to_thread(next, chunks, None))
                async with asyncio.TaskGroup() as group:
                    group.create_task(_write_api(api, chunk))
                    for position, rows in enumerate(chunk.instances):
                        if rows:
                            side = chunk.side[position]
                            group.create_task(_write_cell(dbs[position], rows, side))
                            counts[position] += len(rows)
                mappings += len(chunk)
                bar.update(len(chunk))
        finally:
            await asyncio.gather(pending, return_exceptions=True)
        await asyncio.gather(api.finish(), *(db.finish() for db in dbs))
    return SeedSummary(
        instances_per_cell={c.name: n for c, n in zip(cells, counts, strict=True)},
        mappings=mappings,
        elapsed_s=time.perf_counter() - started,
    )


async def _write_api(api: _Loader, chunk: Chunk) -> None:
    """One connection, so one table after the other: a group before its members."""
    await api.write(instance_mappings, MAPPING_COLUMNS, chunk.mappings)
    for name, columns in API_COLUMNS.items():
        await api.write(api_metadata.tables[name], columns, chunk.api[name])


async def _write_cell(db: _Loader, rows: list[Row], side: dict[str, list[Row]]) -> None:
    """Instances first: the side tables' foreign keys point at them."""
    await db.write(instances, INSTANCE_COLUMNS, rows)
    for name, columns in SIDE_COLUMNS.items():
        await db.write(cell_metadata.tables[name], columns, side[name])


_CELL_COLUMNS = (
    "id", "uuid", "name", "transport_url", "database_connection", "disabled", "created_at",
    "updated_at",
)  # fmt: skip


def _cell_rows(cells: Sequence[SeedCell]) -> list[Row]:
    """``cell_mappings`` rows; a cell named ``cell0`` gets Nova's fixed cell0 uuid."""
    return [
        (
            position + 1,
            cell_uuid(cell.name),
            cell.name,
            "none:///",
            cell.url,
            False,
            EPOCH,
            None,
        )
        for position, cell in enumerate(cells)
    ]


def _check_targets(api_url: str, cells: Sequence[SeedCell]) -> None:
    if not cells:
        raise ValueError("seed needs at least one cell")
    names = [c.name for c in cells]
    urls = [api_url, *(c.url for c in cells)]
    if len(set(names)) != len(names):
        raise ValueError(f"cell names must be distinct: {names}")
    if len({async_url(u) for u in urls}) != len(urls):
        raise ValueError("the API database and every cell need their own database URL")


class _Loader:
    """One database being seeded: a connection that holds the seeding transaction."""

    def __init__(
        self,
        conn: AsyncConnection,
        copy_conn: asyncpg.Connection | None,
        metadata: MetaData,
        recreate: Sequence[str] = (),
    ) -> None:
        self._conn = conn
        self._copy_conn = copy_conn
        self._metadata = metadata
        self._recreate = recreate

    async def finish(self) -> None:
        """After the last write: rebuild indexes and foreign keys, move the id sequences
        past the written ids, analyse (still inside the transaction)."""
        conn = self._conn
        for statement in self._recreate:  # built once, after the COPY
            await conn.execute(text(statement))
        tables = [t.name for t in self._metadata.sorted_tables]
        if self._copy_conn is not None:
            for table in (t.name for t in self._metadata.sorted_tables if "id" in t.c):
                # Ids were written explicitly: move each serial past them.
                await conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"coalesce(max(id), 0) + 1, false) FROM {table}"
                    )
                )
        analyze = "ANALYZE TABLE" if conn.dialect.name == "mysql" else "ANALYZE"
        for table in tables:
            await conn.execute(text(f"{analyze} {table}"))

    async def write(self, table: Table, columns: Sequence[str], rows: list[Row]) -> None:
        """Append ``rows`` (tuples in ``columns`` order) to ``table``."""
        if not rows:
            return
        if self._copy_conn is not None:
            await self._copy_conn.copy_records_to_table(
                table.name, records=rows, columns=list(columns)
            )
        else:
            await self._conn.execute(
                table.insert(), [dict(zip(columns, r, strict=True)) for r in rows]
            )


@asynccontextmanager
async def _loading(url: str, metadata: MetaData) -> AsyncIterator[_Loader]:
    """Create ``metadata``'s tables, empty them, yield a loader; commit on exit (the
    caller runs :meth:`_Loader.finish` first)."""
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
            tables = [t.name for t in metadata.sorted_tables]
            if conn.dialect.name == "postgresql":
                await conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
                recreate = await drop_secondary_structures(conn, tables)
                raw = await conn.get_raw_connection()
                yield _Loader(conn, raw.driver_connection, metadata, recreate)
            elif conn.dialect.name == "mysql":
                await mysql_prepare_load(conn, tables)
                yield _Loader(conn, None, metadata)
            else:
                for table in reversed(tables):
                    await conn.execute(text(f"DELETE FROM {table}"))
                yield _Loader(conn, None, metadata)
    finally:
        await engine.dispose()


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError as exc:
        raise ValueError("not a database URL") from exc


def _sqlite_path(parsed: URL) -> Path | None:
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _pg_database(parsed: URL) -> str:
    name = parsed.database
    if not name or name in _MAINTENANCE_DBS:
        raise ValueError(f"refusing to manage PostgreSQL database {name!r}")
    return name


async def _pg_maintenance_connect(parsed: URL) -> asyncpg.Connection:
    """Connect to the ``postgres`` database on the same server as ``parsed``."""
    host = parsed.host or parsed.query.get("host")
    return await asyncpg.connect(
        host=host if isinstance(host, str) else None,
        port=parsed.port,
        user=parsed.username,
        password=parsed.password,
        database="postgres",
        timeout=_CONNECT_TIMEOUT_S,
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'
