"""The MariaDB side of the scale run's data: the benchmark's own ``mariadbd`` (started
through ``scripts/mariadbserver.py``, tuned like the private PostgreSQL, left running so the
next run reuses its data sets), the data sets copied there row for row from the
PostgreSQL ones, and ``performance_schema``'s statement digests.

A MariaDB data set holds **the same rows** as the PostgreSQL one it is copied from: the
tables are created by ``cellgate seed`` (Nova's tables as Nova's migrations create them
on MySQL: InnoDB, ``utf8``; the cell mappings point at the MariaDB cells), then every
other table is exported with PostgreSQL's ``COPY ... TO`` (booleans as integers) into a
directory the server can read and loaded with the server-side ``LOAD DATA INFILE``: no row
crosses a client connection, unique and foreign-key checks off. Each data set is stamped
(``ALTER DATABASE ... COMMENT``) with its source's plan and reused by a later run.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import asyncmy
import asyncpg
from mariadbserver import MariaDBServer, Template, own_dir
from sqlalchemy import Boolean, MetaData, make_url

from cells.schema import api_metadata, cell_mappings, cell_metadata
from cells.seeding import SeedCell, SeedPlan, reset_database, seed
from cgbench.console import say
from cgbench.scale.data import DataSet, plan_stamp

__all__ = [
    "DEFAULT_PORT",
    "SETTINGS",
    "DigestRows",
    "mariadb_settings",
    "prepare_mariadb",
    "query_one",
    "reset_digests",
    "start_private",
    "statement_digests",
]

DEFAULT_DIR = Path(tempfile.gettempdir()) / "cellgate-scalebench-mariadb"
DEFAULT_PORT = 3399
# performance_schema for P2 (rows examined per the server's own statement digests); room
# for two workers x 8 cells x 16 connections; the 1M-row sets fit in the buffer pool; no
# durability (the data sets are scratch, copied again with --fresh): no log flush at
# commit, no doublewrite, a large redo log for the bulk loads (no binary log, and no
# secure_file_priv: the server's defaults).
SETTINGS: dict[str, str] = {
    "performance_schema": "ON",
    # A keyset query's column list alone is over the default 1,024 bytes of digest text.
    "max_digest_length": "16384",
    "performance_schema_max_digest_length": "16384",
    "max_connections": "400",
    "innodb_buffer_pool_size": "3G",
    "innodb_log_file_size": "512M",
    "innodb_flush_log_at_trx_commit": "0",
    "innodb_doublewrite": "0",
}
_SHOWN = (
    "version",
    "innodb_buffer_pool_size",
    "innodb_flush_log_at_trx_commit",
    "max_connections",
    "performance_schema",
    "collation_server",
)
_LOADS_AT_ONCE = 2


def start_private(root: Path = DEFAULT_DIR, port: int = DEFAULT_PORT) -> MariaDBServer:
    """Start (or find running) the private server under ``root``."""
    own_dir(root)
    server = MariaDBServer(
        datadir=root / "data",
        port=port,
        sockdir=root,
        logfile=root / "mariadbd.log",
        options=SETTINGS,
    )
    made = Template(root / "template").copy_to(server.datadir)
    started = server.start()
    state = "started" if started else "already running"
    say(f"private MariaDB {state} on {server.url} ({server.datadir}{', new' if made else ''})")
    return server


async def _connect(url: str) -> asyncmy.Connection:
    u = make_url(url)
    return await asyncmy.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 3306,
        user=u.username or "root",
        password=u.password or "",
        database=u.database or None,
        connect_timeout=30,
        autocommit=True,
    )


async def query_one(url: str, sql: str, *args: object) -> object:
    """The first column of the first row of ``sql`` (None when no row)."""
    conn = await _connect(url)
    try:
        async with conn.cursor() as cursor:
            await cursor.execute(sql, args or None)
            row = await cursor.fetchone()
    finally:
        conn.close()
    return None if row is None else row[0]


async def _execute(url: str, *statements: str) -> None:
    conn = await _connect(url)
    try:
        async with conn.cursor() as cursor:
            for sql in statements:
                await cursor.execute(sql)
    finally:
        conn.close()


async def mariadb_settings(base: str) -> dict[str, str]:
    """The server's version and the settings that shape the figures."""
    return {f"mariadb {n}": str(await query_one(base, f"SELECT @@{n}")) for n in _SHOWN}


def _twin(data: DataSet, base: str) -> DataSet:
    """``data``'s databases, by name, on the MariaDB server ``base``."""
    names = data.databases
    return DataSet(
        data.cells, data.indexes, f"{base}/{names[0]}", tuple(f"{base}/{n}" for n in names[1:])
    )


def _select(table_columns: list[tuple[str, bool]], table: str) -> str:
    cols = [f'"{c}"::int' if boolean else f'"{c}"' for c, boolean in table_columns]
    return f'SELECT {", ".join(cols)} FROM "{table}"'


async def _copy_database(source: str, target: str, metadata: MetaData, files: Path) -> None:
    """Every table of ``metadata`` but ``cell_mappings`` from ``source`` (PostgreSQL) into
    ``target`` (MariaDB, tables made), through files ``files`` holds."""
    pg = await asyncpg.connect(source, timeout=30)
    try:
        statements = ["SET SESSION unique_checks = 0, foreign_key_checks = 0"]
        for table in metadata.sorted_tables:
            if table.name == cell_mappings.name:
                continue
            columns = [(c.name, isinstance(c.type, Boolean)) for c in table.columns]
            path = files / f"{make_url(target).database}.{table.name}.tsv"
            await pg.copy_from_query(_select(columns, table.name), output=str(path))
            path.chmod(0o644)
            names = ", ".join(f"`{c}`" for c, _ in columns)
            statements += [
                f"DELETE FROM `{table.name}`",
                f"LOAD DATA INFILE '{path}' INTO TABLE `{table.name}` CHARACTER SET utf8mb4 "
                f"({names})",
            ]
        await _execute(target, *statements, "ANALYZE TABLE instances" if "instances"
                       in metadata.tables else "DO 0")  # fmt: skip
    finally:
        await pg.close()


async def _copy(pg: DataSet, target: DataSet, plan: SeedPlan, root: Path) -> None:
    await asyncio.gather(*(reset_database(u) for u in (target.api_url, *target.cell_urls)))
    cells = [SeedCell(f"cell{n}", u) for n, u in enumerate(target.cell_urls, 1)]
    await seed(target.api_url, cells, SeedPlan(instances=0, seed=plan.seed), progress=False)
    files = own_dir(root / "load")
    gate = asyncio.Semaphore(_LOADS_AT_ONCE)

    async def one(source: str, into: str, metadata: MetaData) -> None:
        async with gate:
            await _copy_database(source, into, metadata, files)

    pairs = zip((pg.api_url, *pg.cell_urls), (target.api_url, *target.cell_urls), strict=True)
    try:
        await asyncio.gather(
            *(one(s, t, api_metadata if i == 0 else cell_metadata) for i, (s, t) in
              enumerate(pairs))
        )  # fmt: skip
    finally:
        shutil.rmtree(files, ignore_errors=True)


async def prepare_mariadb(
    pg_sets: list[DataSet], base: str, plan: SeedPlan, root: Path, reuse: bool
) -> list[DataSet]:
    """A MariaDB twin of each PostgreSQL data set (same database names on ``base``), copied
    unless ``reuse`` finds it stamped with the same plan; counted and checked."""
    out: list[DataSet] = []
    for pg in pg_sets:
        target = _twin(pg, base)
        stamp = f"{plan_stamp(plan)} cells={pg.cells}"
        sql = "SELECT schema_comment FROM information_schema.schemata WHERE schema_name = %s"
        if reuse and await query_one(base, sql, target.databases[0]) == stamp:
            say(f"reusing MariaDB {target.name}")
        else:
            started = time.perf_counter()
            say(f"copying {pg.name} ({sum(pg.per_cell):,} instances) to MariaDB")
            await _copy(pg, target, plan, root)
            await _execute(base, f"ALTER DATABASE `{target.databases[0]}` COMMENT '{stamp}'")
            say(f"  copied in {time.perf_counter() - started:.0f} s")
        counts = [
            int(str(await query_one(u, "SELECT count(*) FROM instances"))) for u in target.cell_urls
        ]
        if tuple(counts) != pg.per_cell:
            raise RuntimeError(f"MariaDB {target.name}: {counts} instances, not {pg.per_cell}")
        out.append(replace(target, per_cell=pg.per_cell, visible=pg.visible))
    return out


@dataclass(frozen=True)
class DigestRows:
    """What ``performance_schema`` says a stretch of work did on the cells: the keyset
    queries on ``instances`` and the side-table reads, rows examined and sent, calls."""

    keyset_examined: int
    keyset_sent: int
    keyset_calls: int
    side_examined: int
    side_sent: int


async def reset_digests(base: str) -> None:
    """Zero the statement digests (server-wide)."""
    await _execute(base, "TRUNCATE performance_schema.events_statements_summary_by_digest")


async def statement_digests(base: str, databases: tuple[str, ...]) -> DigestRows:
    """Totals since the last reset over ``databases``."""
    conn = await _connect(base)
    try:
        async with conn.cursor() as cursor:
            marks = ", ".join(["%s"] * len(databases))
            await cursor.execute(
                "SELECT digest_text, sum_rows_examined, sum_rows_sent, count_star "
                "FROM performance_schema.events_statements_summary_by_digest "
                f"WHERE schema_name IN ({marks})",
                databases,
            )
            rows = await cursor.fetchall()
    finally:
        conn.close()
    keyset = [r for r in rows if "FROM `instances`" in r[0] and "UNION ALL" not in r[0]]
    side = [r for r in rows if "UNION ALL" in r[0] and "instance_extra" in r[0]]
    return DigestRows(
        sum(int(r[1]) for r in keyset),
        sum(int(r[2]) for r in keyset),
        sum(int(r[3]) for r in keyset),
        sum(int(r[1]) for r in side),
        sum(int(r[2]) for r in side),
    )
