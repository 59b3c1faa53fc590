"""HAProxy's health check of the replicas with a hung cell: ``/readyz`` asks every cell
whose breaker is closed, a hung one for a whole cell deadline (3 s by default) before it
answers "warn". With the snippet as shipped (``timeout check 5s``) the replica stays up and
listings name the hung cell; with that line removed — the control, HAProxy's check timeout
falling back to ``inter`` (2 s) — HAProxy marks it down. No listing traffic meanwhile, so
no breaker opens: a quiet replica is the one /readyz alone decides about.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from haproxyrun import SNIPPET, HaProxy, binary

from cells.seeding import SeedCell, SeedPlan, drop_database, reset_database, seed
from tests.support.dbservers import PgServers, require_pg
from tests.support.replicas import free_port, replicas
from tests.support.services import PG_BASE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

CHECKS_S = 10  # five health checks (inter 2 s); a wait for HAProxy's verdict, not a measure


@pytest.fixture(scope="module")
def pg_servers(postgres: str) -> Iterator[PgServers]:
    if binary() is None:
        message = "haproxy not installed (apt-get install haproxy)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    require_pg()
    with PgServers(2) as servers:
        yield servers


@pytest.fixture(scope="module")
def api_url(pg_servers: PgServers) -> Iterator[str]:
    url = f"{PG_BASE}/cg_haproxy_readyz_{os.getpid()}_api"
    cells = [
        SeedCell(f"cell{i}", s.database_url("readyz")) for i, s in enumerate(pg_servers.servers, 1)
    ]

    async def prepare() -> None:
        await reset_database(url)
        await seed(url, cells, SeedPlan(instances=100, seed=3, empty_cells=0), progress=False)

    asyncio.run(prepare())
    yield url
    asyncio.run(drop_database(url))


@pytest.mark.parametrize("shipped", [True, False], ids=["snippet", "without-timeout-check"])
def test_a_hung_cell_does_not_take_the_replicas_out(
    api_url: str, pg_servers: PgServers, tmp_path: Path, shipped: bool
) -> None:
    text = SNIPPET.read_text()
    if not shipped:
        text = "\n".join(line for line in text.splitlines() if "timeout check" not in line)
    settings = {"CELLGATE_API_DATABASE_URL": api_url, "CELLGATE_AUTH_MODE": "noauth"}
    hung = pg_servers.servers[1]
    with replicas(tmp_path, settings) as (replica,):
        address = [("127.0.0.1", replica.port)]
        with HaProxy(free_port(), address, snippet=text, work=tmp_path / "lb") as lb:
            hung.freeze()
            try:
                time.sleep(CHECKS_S)
                downs = [line for line in lb.log.read_text().splitlines() if " is DOWN" in line]
                response = httpx.get(
                    f"{lb.url}/v2.1/servers?all_tenants=1",
                    headers={"X-Auth-Token": "admin:admin"},
                    timeout=60,
                )
            finally:
                hung.thaw()
    if shipped:
        assert not [line for line in downs if "cellgate_back" in line], downs
        assert response.status_code == 200, response.text
        assert response.headers["X-Cells-Unavailable"] == "cell2"
    else:
        assert [line for line in downs if "cellgate_back/cellgate1" in line]
        assert response.status_code == 503  # no replica left, and no nova-api here
