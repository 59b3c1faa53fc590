"""What the API database unable to answer (its tables renamed away, on a real SQLite API
database) costs, lookup by lookup:

* a project's cell counts: every enabled cell is asked instead (a superset of the
  project's cells), so the page is the same;
* show's mapping: every enabled cell is asked for the server (scoped as the mapping would
  have been), a 404 only when every cell answered without it;
* a host's availability zone: its last known one is shown past the cache's TTL; a host
  never seen is a 503 (a guessed zone could be wrong).

Each fallback is counted. The chaos soak (issue #22) found project listings, show and
detail pages 503 for the whole of an API database restart."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import uuid
from pathlib import Path

import pytest

from cells.seeding import SeedCell, SeedPlan, seed
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet
from tests.support.oracle import auth

ADMIN = auth("admin:admin")

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@pytest.fixture
async def two_cells(tmp_path: Path) -> CellSet:
    cells = [SeedCell(f"cell{i}", f"sqlite:///{tmp_path / f'cell{i}.db'}") for i in (1, 2)]
    api_url = f"sqlite:///{tmp_path / 'api.db'}"
    await seed(api_url, cells, SeedPlan(instances=120, seed=11), progress=False)
    return CellSet(api_url, cells, 120)


def _sqlite(url: str, statement: str) -> None:
    with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
        conn.execute(statement)
        conn.commit()


async def test_project_listing_asks_every_cell_without_the_counts(two_cells: CellSet) -> None:
    # No cached counts: every listing asks the API database first.
    settings = two_cells.settings(project_cells_ttl_s=0, page_cache_ttl_s=0)
    path = "/v2.1/servers?limit=1000"
    async with app_and_client(settings) as (app, client):
        metrics = app.state.cellgate.metrics
        before = await client.get(path, headers=auth("demo:demo"))
        assert before.status_code == 200, before.text
        ids = [s["id"] for s in before.json()["servers"]]
        assert ids, "the demo project must have servers"
        assert metrics.sample("cellgate_api_database_fallbacks_total", lookup="cell_counts") == 0

        _sqlite(two_cells.api_url, "ALTER TABLE instance_mappings RENAME TO gone")
        after = await client.get(path, headers=auth("demo:demo"))
        assert after.status_code == 200, after.text
        assert "X-Cells-Unavailable" not in after.headers
        assert [s["id"] for s in after.json()["servers"]] == ids
        assert metrics.sample("cellgate_api_database_fallbacks_total", lookup="cell_counts") == 1


async def test_show_and_zones_without_the_api_database(two_cells: CellSet) -> None:
    settings = two_cells.settings(page_cache_ttl_s=0, host_zones_ttl_s=0.2)
    detail = "/v2.1/servers/detail?all_tenants=1&limit=1000"
    async with app_and_client(settings) as (app, client):
        metrics = app.state.cellgate.metrics
        listed = await client.get(detail, headers=ADMIN)
        assert listed.status_code == 200, listed.text
        servers = listed.json()["servers"]
        assert any(s["OS-EXT-SRV-ATTR:host"] for s in servers)
        demo = next(s for s in servers if s["tenant_id"] == "demo")
        other = next(s for s in servers if s["tenant_id"] != "demo")
        shown = {
            s["id"]: (await client.get(f"/v2.1/servers/{s['id']}", headers=ADMIN)).json()
            for s in (demo, other)
        }

        for table in ("instance_mappings", "aggregate_hosts"):
            _sqlite(two_cells.api_url, f"ALTER TABLE {table} RENAME TO {table}_gone")
        await asyncio.sleep(0.3)  # every host's zone past its TTL
        again = await client.get(detail, headers=ADMIN)
        assert again.status_code == 200, again.text
        assert again.json()["servers"] == servers  # zones as last known
        for server_id, body in shown.items():
            found = await client.get(f"/v2.1/servers/{server_id}", headers=ADMIN)
            assert found.status_code == 200, found.text
            assert found.json() == body
        # Scoped as the mapping would have been: another project's server is not found.
        own = await client.get(f"/v2.1/servers/{demo['id']}", headers=auth("demo:demo"))
        assert own.status_code == 200, own.text
        foreign = await client.get(f"/v2.1/servers/{other['id']}", headers=auth("demo:demo"))
        assert foreign.status_code == 404, foreign.text
        unknown = await client.get(f"/v2.1/servers/{uuid.uuid4()}", headers=ADMIN)
        assert unknown.status_code == 404, unknown.text
        assert metrics.sample("cellgate_api_database_fallbacks_total", lookup="mapping") == 5

    # A gateway that never saw the hosts has no zone to show for them: 503, not a guess.
    fresh_settings = settings.model_copy(update={"check_schema_at_startup": False})
    async with app_and_client(fresh_settings) as (_, client):
        fresh = await client.get(detail, headers=ADMIN)
    assert fresh.status_code == 503, fresh.text
    assert fresh.headers["Retry-After"]
