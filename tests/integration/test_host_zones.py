"""``OS-EXT-AZ:availability_zone`` as Nova shows it, on PostgreSQL and MariaDB.

Aggregates written into the API database: az-a (compute-07, compute-08), one without a
zone (compute-09), az-b (compute-08 again, a later aggregate: Nova takes the first, and
compute-10). A hosted server shows its host's zone, else ``default_availability_zone``,
whatever its own row says; a server on no host shows its row's zone (or ``""``). Detail
and show agree; a moved host's new zone is refetched when a server's own row contradicts
the cached one (Nova's rule), else when the entry expires.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import delete, insert, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cells.registry import async_url
from cells.schema import aggregate_hosts, aggregate_metadata, aggregates
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet
from tests.support.names import HOST_VARIANTS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ZONES = {"compute-07": "az-a", "compute-08": "az-a", "compute-10": "az-b"}
DEFAULT = "az-default"


async def _write(url: str, *statements: object) -> None:
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(statement)  # type: ignore[call-overload]  # a list of mixed Core statements; execute's overloads want one kind
    finally:
        await engine.dispose()


@pytest.fixture(scope="module", params=["pg_cells", "mariadb_cells"])
def seeded(request: pytest.FixtureRequest) -> CellSet:
    found: CellSet = request.getfixturevalue(request.param)
    return found


@pytest.fixture(scope="module")
async def cell_set(seeded: CellSet) -> AsyncIterator[CellSet]:
    ids = (9001, 9002, 9003)
    await _write(
        seeded.api_url,
        insert(aggregates).values(
            [
                {"id": i, "uuid": f"00000000-0000-4000-8000-00000000{i}", "name": f"agg-{i}"}
                for i in ids
            ]
        ),
        insert(aggregate_hosts).values(
            [
                {"host": "compute-07", "aggregate_id": 9001},
                {"host": "compute-08", "aggregate_id": 9001},
                {"host": "compute-09", "aggregate_id": 9002},
                {"host": "compute-08", "aggregate_id": 9003},
                {"host": "compute-10", "aggregate_id": 9003},
            ]
        ),
        insert(aggregate_metadata).values(
            [
                {"aggregate_id": 9001, "key": "availability_zone", "value": "az-a"},
                {"aggregate_id": 9002, "key": "ssd", "value": "true"},
                {"aggregate_id": 9003, "key": "availability_zone", "value": "az-b"},
            ]
        ),
    )
    yield seeded
    await _write(
        seeded.api_url,
        delete(aggregate_metadata).where(aggregate_metadata.c.aggregate_id.in_(ids)),
        delete(aggregate_hosts).where(aggregate_hosts.c.aggregate_id.in_(ids)),
        delete(aggregates).where(aggregates.c.id.in_(ids)),
    )


def _headers() -> dict[str, str]:
    return {"X-Auth-Token": "admin:admin", "OpenStack-API-Version": "compute 2.90"}


async def _detail(client: httpx.AsyncClient) -> list[dict[str, object]]:
    servers: list[dict[str, object]] = []
    for host in ("compute-07", "compute-08", "compute-09", "compute-10", "compute-11"):
        url = f"/v2.1/servers/detail?all_tenants=1&limit=40&host={host}"
        response = await client.get(url, headers=_headers())
        assert response.status_code == 200, response.text
        servers += response.json()["servers"]
    response = await client.get("/v2.1/servers/detail?all_tenants=1&limit=300", headers=_headers())
    servers += response.json()["servers"]
    return servers


async def test_a_hosted_server_is_in_its_hosts_zone(cell_set: CellSet) -> None:
    settings = cell_set.settings(page_cache_ttl_s=0, default_availability_zone=DEFAULT)
    async with app_and_client(settings) as (_, client):
        servers = await _detail(client)
        shown: dict[str, int] = {}
        for server in servers:
            host = server["OS-EXT-SRV-ATTR:host"]
            if host in HOST_VARIANTS and host != "compute-01":
                continue  # MariaDB's collation variants: compared there as Nova's SQL does
            zone = server["OS-EXT-AZ:availability_zone"]
            if host is not None:
                assert zone == ZONES.get(str(host), DEFAULT), (host, server["id"])
            shown[str(zone)] = shown.get(str(zone), 0) + 1
        assert {"az-a", "az-b", DEFAULT} <= set(shown), shown
        unhosted = [s for s in servers if s["OS-EXT-SRV-ATTR:host"] is None]
        assert unhosted  # they show their rows' zones (checked in tests/unit/test_views.py)
        sample = next(s for s in servers if s["OS-EXT-SRV-ATTR:host"] == "compute-08")
        one = await client.get(f"/v2.1/servers/{sample['id']}", headers=_headers())
        assert one.json()["server"]["OS-EXT-AZ:availability_zone"] == "az-a"
        # compute-10 moves to az-c. Its servers' rows name another zone than the cached
        # az-b, so (as Nova) the entry is refetched at once.
        await _write(
            cell_set.api_url,
            update(aggregate_metadata)
            .where(aggregate_metadata.c.aggregate_id == 9003)
            .values(value="az-c"),
        )
        try:
            tenth = next(s for s in servers if s["OS-EXT-SRV-ATTR:host"] == "compute-10")
            assert tenth["OS-EXT-AZ:availability_zone"] == "az-b"
            fresh = await client.get(f"/v2.1/servers/{tenth['id']}", headers=_headers())
            assert fresh.json()["server"]["OS-EXT-AZ:availability_zone"] == "az-c"
        finally:
            await _write(
                cell_set.api_url,
                update(aggregate_metadata)
                .where(aggregate_metadata.c.aggregate_id == 9003)
                .values(value="az-b"),
            )
