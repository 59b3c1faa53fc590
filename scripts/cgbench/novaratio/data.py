"""novabench's databases: a PostgreSQL server of the run's own (``scripts/pgserver.py``)
holding an API database, the cells and nova-api's own ``[database]``, every one with all
of Nova's tables (Nova's DDL from its models: ``scripts/nova_conformance.py``) and seeded
by cellgate's seeder, as the parity suite does; and a cell made to refuse connections.

The server is private so that the run owns its connection limit and settings, and so that
refusing a cell (``ALLOW_CONNECTIONS false`` and its sessions ended) touches nobody else's
databases; it is stopped and its directory removed when the run ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from nova_conformance import create_db, nova_ddl
from pgserver import PgServer, Template, own_dir

from cells.seeding import SeedCell, SeedPlan, reset_database, seed
from cgbench.servers import free_port

__all__ = [
    "SETTINGS",
    "NovaDatabases",
    "accept",
    "count_visible",
    "private_server",
    "refuse",
    "seed_databases",
]

# Room for both servers' pools (2 x 8 cells x a few connections each, per worker); fsync
# off because the data is scratch, re-seeded by every run.
SETTINGS: dict[str, str] = {
    "max_connections": "300",
    "shared_buffers": "1GB",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
_VISIBLE = "deleted = 0 AND (vm_state <> 'soft-delete' OR vm_state IS NULL)"
_TIMEOUT_S = 30.0


@contextlib.contextmanager
def private_server(keep: bool = False) -> Iterator[PgServer]:
    """A PostgreSQL server on a free loopback port in a new temporary directory; stopped
    and the directory removed on exit (``keep``: the directory stays, for its log)."""
    root = Path(tempfile.mkdtemp(prefix="cellgate-novabench-pg-"))
    own_dir(root)
    server = PgServer(
        datadir=root / "data",
        port=free_port(),
        sockdir=root / "sock",
        logfile=root / "postgresql.log",
        options=SETTINGS,
    )
    try:
        Template(root / "template").copy_to(server.datadir)
        server.start()
        yield server
    finally:
        server.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class NovaDatabases:
    """The run's database URLs on one server (``base``: its URL without a database)."""

    base: str
    cells: int

    @property
    def api(self) -> str:
        return f"{self.base}/novabench_api"

    @property
    def nova(self) -> str:
        """nova-api's own ``[database]`` (its service row; not a listed cell)."""
        return f"{self.base}/novabench_nova"

    @property
    def cell_urls(self) -> tuple[str, ...]:
        return tuple(f"{self.base}/novabench_cell{n}" for n in range(1, self.cells + 1))

    def cell_database(self, name: str) -> str:
        """The database name of the cell called ``name`` (``cell3``)."""
        return f"novabench_{name}"


async def _execute(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url, timeout=_TIMEOUT_S)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def seed_databases(dbs: NovaDatabases, nova_python: Path, plan: SeedPlan) -> None:
    """Nova's tables everywhere (its own DDL), cellgate's seeder on top, then ``VACUUM
    ANALYZE`` (fresh ``COPY`` leaves no statistics or visibility map)."""
    main_ddl, api_ddl = await asyncio.gather(
        asyncio.to_thread(nova_ddl, nova_python, "main"),
        asyncio.to_thread(nova_ddl, nova_python, "api"),
    )
    urls = [dbs.api, dbs.nova, *dbs.cell_urls]
    await asyncio.gather(*(reset_database(url) for url in urls))
    await create_db(dbs.api, api_ddl)
    await asyncio.gather(*(create_db(url, main_ddl) for url in [dbs.nova, *dbs.cell_urls]))
    cells = [SeedCell(f"cell{n}", url) for n, url in enumerate(dbs.cell_urls, 1)]
    await seed(dbs.api, cells, plan, progress=False)
    await asyncio.gather(*(_execute(url, "VACUUM (ANALYZE)") for url in urls))


async def count_visible(url: str, project: str | None = None) -> tuple[int, int]:
    """(instance rows, rows a listing shows) in the cell ``url``, of ``project`` if given."""
    scope = "TRUE" if project is None else "project_id = $1"
    args = () if project is None else (project,)
    conn = await asyncpg.connect(url, timeout=_TIMEOUT_S)
    try:
        total = await conn.fetchval(f"SELECT count(*) FROM instances WHERE {scope}", *args)
        sql = f"SELECT count(*) FROM instances WHERE {scope} AND {_VISIBLE}"
        visible = await conn.fetchval(sql, *args)
    finally:
        await conn.close()
    return int(total), int(visible)


async def refuse(base: str, database: str) -> None:
    """``database`` refuses new connections, and its open ones are ended: to every client
    the cell is down (PostgreSQL answers ``database ... is not currently accepting
    connections``)."""
    await _execute(
        f"{base}/postgres",
        f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false',
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'",
    )


async def accept(base: str, database: str) -> None:
    """``database`` accepts connections again."""
    await _execute(f"{base}/postgres", f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
