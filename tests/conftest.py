"""Shared fixtures: real PostgreSQL/Redis checks, seeded cell sets, live apps.

The helpers behind them live in :mod:`tests.support` (tests import them from there); this
file holds only fixtures and pytest configuration. Under ``CI=true`` a missing service
fails the test; elsewhere it skips.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from gateway.settings import Settings
from tests.support.cellsets import (
    CellSet,
    drop_postgres,
    seed_broken_postgres,
    seed_mariadb,
    seed_postgres,
    seed_sqlite,
)
from tests.support.liveserver import LiveServer, start_live_server, stop_live_server
from tests.support.services import (
    MYSQL_BASE,
    PG_BASE,
    REDIS_HOST,
    REDIS_PORT,
    require_service,
)

# No per-example deadline: property tests check results, never timings (the benchmarks do),
# and on a loaded 2-core machine hypothesis' 200 ms default failed correct examples.
hypothesis_settings.register_profile("cellgate", deadline=None)
hypothesis_settings.load_profile("cellgate")


@pytest.fixture(scope="session")
def postgres() -> str:
    """The base URL of the real PostgreSQL server."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    return PG_BASE


@pytest.fixture(scope="session")
def mariadb() -> str:
    """The base URL of the real MariaDB server (Nova's usual ``mysql+pymysql`` form)."""
    require_service("MariaDB", "127.0.0.1", 3306)
    return MYSQL_BASE


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of the real Redis server."""
    require_service("Redis", REDIS_HOST, REDIS_PORT)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture(scope="session")
async def pg_cells(postgres: str) -> AsyncIterator[CellSet]:
    """4 PostgreSQL cells (the last one empty) with 6,000 instances."""
    cell_set = await seed_postgres(f"cg_test_{os.getpid()}", cells=4, instances=6_000)
    yield cell_set
    await drop_postgres(cell_set)


@pytest.fixture(scope="session")
async def mariadb_cells(mariadb: str) -> AsyncIterator[CellSet]:
    """4 MariaDB cells (the last one empty) with 6,000 instances, some names colliding
    under ``utf8_general_ci``."""
    cell_set = await seed_mariadb(f"cg_test_{os.getpid()}", cells=4, instances=6_000)
    yield cell_set
    await drop_postgres(cell_set)


@pytest.fixture(scope="session")
async def sqlite_cells(tmp_path_factory: pytest.TempPathFactory) -> CellSet:
    """3 SQLite cells (the last one empty) with 3,000 instances."""
    root: Path = tmp_path_factory.mktemp("sqlite-cells")
    return await seed_sqlite(root, cells=3, instances=3_000, seed_value=11)


@pytest.fixture
def live_server_factory() -> Iterator[object]:
    """``factory(settings) -> LiveServer``; every server started is stopped after the test."""
    started: list[LiveServer] = []

    def factory(settings: Settings) -> LiveServer:
        live = start_live_server(settings)
        started.append(live)
        return live

    yield factory
    for live in started:
        stop_live_server(live)


@pytest.fixture(scope="module")
async def broken(postgres: str) -> AsyncIterator[CellSet]:
    """One cell lacking a column cellgate reads (``MISSING_COLUMN``): the start-up check's
    and the doctor's subject."""
    cell_set = await seed_broken_postgres(f"cg_docbad_{os.getpid()}")
    yield cell_set
    await drop_postgres(cell_set)
