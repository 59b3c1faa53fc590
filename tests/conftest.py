"""Shared fixtures: real PostgreSQL/Redis checks, seeded cell sets, in-process and live apps.

Under ``CI=true`` a missing service fails the test; elsewhere it skips.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from hypothesis import settings as hypothesis_settings

from cells.seed import SeedCell, SeedPlan, drop_database, reset_database, seed
from gateway.app import create_app
from gateway.settings import Settings
from tests.support.names import vary_names

# No per-example deadline: property tests check results, never timings (the benchmarks do),
# and on a loaded 2-core machine hypothesis' 200 ms default failed correct examples.
hypothesis_settings.register_profile("cellgate", deadline=None)
hypothesis_settings.load_profile("cellgate")

PG_BASE = "postgresql://postgres@127.0.0.1:5432"
MYSQL_BASE = "mysql+pymysql://root@127.0.0.1:3306"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    """Fail (CI) or skip (elsewhere) when a real service is not reachable."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


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


@dataclass(frozen=True)
class CellSet:
    """A seeded API DB and its cells."""

    api_url: str
    cells: list[SeedCell]
    instances: int

    @property
    def backend(self) -> str:
        """``postgresql``, ``mysql`` or ``sqlite``: the cells' backend (the first one's)."""
        scheme = self.cells[0].url.partition(":")[0]
        return scheme.partition("+")[0].replace("mariadb", "mysql")

    def settings(self, **overrides: object) -> Settings:
        fields: dict[str, object] = {"api_database_url": self.api_url, "auth_mode": "noauth"}
        return Settings(**(fields | overrides))  # type: ignore[arg-type]


async def seed_postgres(
    prefix: str, cells: int, instances: int, seed_value: int = 7, base: str = PG_BASE
) -> CellSet:
    """Reset and seed ``<prefix>_api`` and ``<prefix>_cell1..N`` on the real PostgreSQL
    (or the server of ``base``)."""
    api_url = f"{base}/{prefix}_api"
    targets = [SeedCell(f"cell{i}", f"{base}/{prefix}_cell{i}") for i in range(1, cells + 1)]
    await asyncio.gather(*(reset_database(u) for u in [api_url, *(t.url for t in targets)]))
    await seed(api_url, targets, SeedPlan(instances=instances, seed=seed_value), progress=False)
    return CellSet(api_url, targets, instances)


async def seed_mariadb(prefix: str, cells: int, instances: int, seed_value: int = 7) -> CellSet:
    """:func:`seed_postgres` on the real MariaDB (``utf8_general_ci`` databases), then
    names that collide under that collation written over some (:mod:`support.names`)."""
    cell_set = await seed_postgres(prefix, cells, instances, seed_value, MYSQL_BASE)
    await asyncio.gather(*(vary_names(cell.url) for cell in cell_set.cells))
    return cell_set


async def drop_postgres(cell_set: CellSet) -> None:
    """Drop every database of ``cell_set``."""
    await asyncio.gather(
        *(drop_database(u) for u in [cell_set.api_url, *(t.url for t in cell_set.cells)])
    )


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
    targets = [SeedCell(f"cell{i}", f"sqlite:///{root / f'cell{i}.db'}") for i in range(1, 4)]
    api_url = f"sqlite:///{root / 'api.db'}"
    await seed(api_url, targets, SeedPlan(instances=3_000, seed=11), progress=False)
    return CellSet(api_url, targets, 3_000)


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The app driven through its lifespan, with an httpx client bound to it."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client


@asynccontextmanager
async def app_and_client(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Like :func:`app_client`, also yielding the app (its state is ``app.state.cellgate``)."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield app, client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    url: str
    server: uvicorn.Server
    thread: threading.Thread


def start_live_server(settings: Settings) -> LiveServer:
    """Run the gateway in a real uvicorn on a free loopback port, in a thread."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    return LiveServer(f"http://127.0.0.1:{port}", server, thread)


def stop_live_server(live: LiveServer) -> None:
    live.server.should_exit = True
    live.thread.join(timeout=20)


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
