"""``host_status`` (2.16) from the cell's ``services`` table, on PostgreSQL and MariaDB.

The seeder writes one ``nova-compute`` row per host (cells.seeding.dataset.service_rows):
compute-01 disabled, compute-02 forced down, compute-03 last seen a day ago, compute-04
without a row, compute-05 disabled and forced down. The test marks the other hosts seen
now, then checks every server of a detail page and of show against Nova's rule (forced
down → DOWN, disabled → MAINTENANCE, seen within service_down_time → UP, else UNKNOWN, no
host or no row → ""), for an admin; a non-admin (Nova's default policy) sees no key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cells.registry import async_url
from cells.schema import services
from tests.support.apps import app_client
from tests.support.cellsets import CellSet
from tests.support.names import HOST_VARIANTS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EXPECTED = {
    "compute-01": "MAINTENANCE",
    "compute-02": "DOWN",
    "compute-03": "UNKNOWN",
    "compute-04": "",
    "compute-05": "DOWN",
}


@pytest.fixture(scope="module", params=["pg_cells", "mariadb_cells"])
def seeded(request: pytest.FixtureRequest) -> CellSet:
    found: CellSet = request.getfixturevalue(request.param)
    return found


@pytest.fixture(scope="module")
async def cell_set(seeded: CellSet) -> CellSet:
    """The seeded cells, every host but compute-03 seen up now."""
    found = seeded
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for cell in found.cells:
        engine = create_async_engine(async_url(cell.url), poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    update(services)
                    .where(services.c.host.not_in(["compute-03"]))
                    .values(last_seen_up=now)
                )
        finally:
            await engine.dispose()
    return found


@pytest.fixture(scope="module")
async def client(cell_set: CellSet) -> AsyncIterator[httpx.AsyncClient]:
    settings = cell_set.settings(page_cache_ttl_s=0, service_down_time_s=3600)
    async with app_client(settings) as http:
        yield http


def _headers(token: str, version: str) -> dict[str, str]:
    return {"X-Auth-Token": token, "OpenStack-API-Version": f"compute {version}"}


async def test_host_status_follows_the_services_table(
    cell_set: CellSet, client: httpx.AsyncClient
) -> None:
    # On MariaDB the join compares hosts under utf8_general_ci, as Nova's own SQL does there:
    # an instance on "Compute-01", "compute-01 " or "cömpute-01" (support.names writes
    # them) has compute-01's service.
    fold = cell_set.backend == "mysql"
    url = "/v2.1/servers/detail?all_tenants=1&limit=400&deleted=false"
    response = await client.get(url, headers=_headers("admin:admin", "2.16"))
    assert response.status_code == 200, response.text
    seen: dict[str, int] = {}
    for server in response.json()["servers"]:
        host = server["OS-EXT-SRV-ATTR:host"]
        key = "compute-01" if fold and host in HOST_VARIANTS else host
        want = "" if key is None else EXPECTED.get(key, "UP")
        assert server["host_status"] == want, (host, server["id"])
        seen[want] = seen.get(want, 0) + 1
    assert set(seen) == {"", "UP", "DOWN", "MAINTENANCE", "UNKNOWN"}, seen
    shown = next(s for s in response.json()["servers"] if s["host_status"] == "MAINTENANCE")
    one = await client.get(f"/v2.1/servers/{shown['id']}", headers=_headers("admin:admin", "2.16"))
    assert one.json()["server"]["host_status"] == "MAINTENANCE"
    old = await client.get(f"/v2.1/servers/{shown['id']}", headers=_headers("admin:admin", "2.15"))
    assert "host_status" not in old.json()["server"]


async def test_host_status_is_hidden_from_a_non_admin(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v2.1/servers/detail?limit=50", headers=_headers("demo:demo", "2.16")
    )
    assert response.status_code == 200
    assert all("host_status" not in s for s in response.json()["servers"])


async def test_a_short_service_down_time_makes_hosts_unknown(cell_set: CellSet) -> None:
    settings = cell_set.settings(page_cache_ttl_s=0, service_down_time_s=0.001)
    async with app_client(settings) as client:
        url = "/v2.1/servers/detail?all_tenants=1&limit=400"
        response = await client.get(url, headers=_headers("admin:admin", "2.90"))
    statuses = {s["host_status"] for s in response.json()["servers"]}
    assert "UP" not in statuses
    assert "UNKNOWN" in statuses
