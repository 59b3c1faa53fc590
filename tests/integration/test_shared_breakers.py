"""Replicas that share what they learn (README: Shared breakers), as real processes: two
``cellgate serve`` replicas, a real Redis, and two private PostgreSQL servers holding the
cells, one of them frozen (SIGSTOP: a hung host). After replica A's breaker opens on the
frozen cell, replica B's first request does not wait for the cell's deadline: its
``/metrics`` says it received A's news and that none of its calls to the cell timed out,
and the answer names the cell in ``X-Cells-Unavailable``. Without Redis (the control), B
pays the deadline itself. Nothing here reads a clock.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from cells.seeding import SeedCell, SeedPlan, drop_database, reset_database, seed
from tests.support.dbservers import PgServers, require_pg
from tests.support.replicas import Replica, replicas
from tests.support.services import PG_BASE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

LIST = "/v2.1/servers/detail?all_tenants=1&limit=50"
ADMIN = {"X-Auth-Token": "admin:admin"}
OUTCOMES = "cellgate_cell_outcomes_total"
SHARES = "cellgate_cell_breaker_shares_total"
WAIT_S = 30  # an upper bound on waiting for news, never a measured time


@pytest.fixture(scope="module")
def pg_servers(postgres: str) -> Iterator[PgServers]:
    require_pg()
    with PgServers(2) as servers:
        yield servers


@pytest.fixture(scope="module")
async def api_url(pg_servers: PgServers) -> AsyncIterator[str]:
    url = f"{PG_BASE}/cg_shared_breakers_{os.getpid()}_api"
    cells = [
        SeedCell(f"cell{i}", s.database_url("shared")) for i, s in enumerate(pg_servers.servers, 1)
    ]
    await reset_database(url)
    await seed(url, cells, SeedPlan(instances=300, seed=5, empty_cells=0), progress=False)
    yield url
    await drop_database(url)


def _settings(api_url: str, redis: str | None) -> dict[str, str]:
    settings = {
        "CELLGATE_API_DATABASE_URL": api_url,
        "CELLGATE_AUTH_MODE": "noauth",
        "CELLGATE_CELL_TIMEOUT_S": "1",
        "CELLGATE_CELL_CONNECT_TIMEOUT_S": "1",
        # Long enough that no breaker probes again during the test.
        "CELLGATE_BREAKER_COOLDOWN_S": "120",
        "CELLGATE_PAGE_CACHE_TTL_S": "0",
        "CELLGATE_LOG_LEVEL": "WARNING",
    }
    if redis is not None:
        settings["CELLGATE_REDIS_URL"] = redis
        settings["CELLGATE_REDIS_PREFIX"] = f"replicas-test-{os.getpid()}-{time.time_ns()}"
    return settings


def _list(replica: Replica) -> httpx.Response:
    response = httpx.get(replica.url + LIST, headers=ADMIN, timeout=60)
    assert response.status_code == 200, response.text
    return response


def _wait_for_news(replica: Replica) -> None:
    deadline = time.monotonic() + WAIT_S
    while replica.metric(SHARES, cell="cell2", direction="received") < 1:
        if time.monotonic() > deadline:
            pytest.fail(
                f"{replica.name} never heard of cell2: {replica.stderr_path.read_text()[-2000:]}"
            )
        time.sleep(0.05)


@pytest.mark.parametrize("shared", [True, False], ids=["redis", "no-redis"])
def test_a_breaker_opened_in_one_replica_opens_in_the_other(
    api_url: str, pg_servers: PgServers, redis_url: str, tmp_path: Path, shared: bool
) -> None:
    frozen = pg_servers.servers[1]
    settings = _settings(api_url, redis_url if shared else None)
    with replicas(tmp_path, settings, settings) as (a, b):
        assert _list(a).headers.get("X-Cells-Unavailable") is None
        frozen.freeze()
        try:
            first = _list(a)
            assert first.headers["X-Cells-Unavailable"] == "cell2"
            assert a.metric(OUTCOMES, cell="cell2", outcome="timeout") == 1
            if shared:
                assert a.metric(SHARES, cell="cell2", direction="sent") == 1
                _wait_for_news(b)

            answer = _list(b)
            assert answer.headers["X-Cells-Unavailable"] == "cell2"
            assert answer.json()["servers"]  # cell1's rows
            if shared:
                # B skipped the cell from its first request: no deadline paid.
                assert b.metric(OUTCOMES, cell="cell2", outcome="timeout") == 0
                assert b.metric(OUTCOMES, cell="cell2", outcome="skipped") == 1
                assert b.metric("cellgate_cell_breaker_state", cell="cell2") == 2
                assert b.metric(SHARES, cell="cell2", direction="sent") == 0
            else:
                # On its own, B paid the deadline before its breaker opened.
                assert b.metric(OUTCOMES, cell="cell2", outcome="timeout") == 1
                assert b.metric(SHARES, cell="cell2") == 0
            assert b.metric(OUTCOMES, cell="cell1", outcome="ok") >= 1
        finally:
            frozen.thaw()
