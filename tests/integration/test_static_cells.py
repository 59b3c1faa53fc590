"""Static cells from settings, and a cell that refuses connections: partial listing,
breaker state in /readyz and /metrics."""

from __future__ import annotations

import pytest

from cells.seeding import cell_uuid
from gateway.settings import StaticCell
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet
from tests.support.liveserver import free_port

pytestmark = pytest.mark.integration

ADMIN = {"X-Auth-Token": "admin:admin"}


def _static(cells: CellSet, extra: list[StaticCell]) -> list[StaticCell]:
    """The seeded cells as a static list (uuids as in cell_mappings), plus ``extra``."""
    listed = [
        StaticCell(name=c.name, uuid=cell_uuid(c.name), database_url=c.url) for c in cells.cells
    ]
    return listed + extra


async def test_static_cells_list_like_mapped_cells(sqlite_cells: CellSet) -> None:
    async with app_and_client(sqlite_cells.settings()) as (_, client):
        mapped = (
            await client.get("/v2.1/servers?limit=50", headers={"X-Auth-Token": "demo:demo"})
        ).json()
    settings = sqlite_cells.settings(cells=_static(sqlite_cells, []))
    async with app_and_client(settings) as (_, client):
        page = await client.get("/v2.1/servers?limit=50", headers={"X-Auth-Token": "demo:demo"})
        assert page.status_code == 200
        assert page.json() == mapped
        marker = mapped["servers"][-1]["id"]
        after = await client.get(
            f"/v2.1/servers?limit=5&marker={marker}", headers={"X-Auth-Token": "demo:demo"}
        )
        assert after.status_code == 200
        assert len(after.json()["servers"]) == 5


async def test_refusing_cell_is_partial_and_its_breaker_opens(sqlite_cells: CellSet) -> None:
    dead = StaticCell(
        name="deadcell",
        uuid="11111111-2222-3333-4444-555555555555",
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/nothing",
    )
    settings = sqlite_cells.settings(
        cells=_static(sqlite_cells, [dead]), page_cache_ttl_s=0, breaker_failures=2
    )
    async with app_and_client(settings) as (app, client):
        for limit in (3, 4):
            response = await client.get(f"/v2.1/servers?all_tenants=1&limit={limit}", headers=ADMIN)
            assert response.status_code == 200
            assert response.headers["x-cells-unavailable"] == "deadcell"
            assert len(response.json()["servers"]) == limit
        metrics = (await client.get("/metrics")).text
        assert 'cellgate_cell_breaker_state{cell="deadcell"} 2.0' in metrics
        assert 'cellgate_cell_breaker_state{cell="cell1"} 0.0' in metrics
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "warn"
        assert body["checks"]["cell:deadcell"][0]["breaker"] == "open"
        assert body["checks"]["cell:cell1"][0]["status"] == "pass"
        # Open: the next request skips the cell without trying it.
        skipped = {"cell": "deadcell", "outcome": "skipped"}
        metrics = app.state.cellgate.metrics
        before = metrics.sample("cellgate_cell_outcomes_total", **skipped)
        response = await client.get("/v2.1/servers?all_tenants=1&limit=5", headers=ADMIN)
        assert response.headers["x-cells-unavailable"] == "deadcell"
        assert metrics.sample("cellgate_cell_outcomes_total", **skipped) == before + 1
