"""The API database unable to count a project's instances per cell (its
``instance_mappings`` gone, as when it is away) does not fail a project's first page: every
enabled cell is asked instead (a superset of the project's cells), so the page is the same,
and the fallback is counted. A lookup nothing can stand in for (show's mapping) is still a
503. The chaos soak (issue #22) found project listings 503 for the whole of an API database
restart."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from cells.seeding import SeedCell, SeedPlan, seed
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet
from tests.support.oracle import auth

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
        shown = await client.get(f"/v2.1/servers/{ids[0]}", headers=auth("demo:demo"))
        assert shown.status_code == 200, shown.text
        assert metrics.sample("cellgate_api_database_fallbacks_total", lookup="cell_counts") == 0

        _sqlite(two_cells.api_url, "ALTER TABLE instance_mappings RENAME TO gone")
        after = await client.get(path, headers=auth("demo:demo"))
        assert after.status_code == 200, after.text
        assert "X-Cells-Unavailable" not in after.headers
        assert [s["id"] for s in after.json()["servers"]] == ids
        assert metrics.sample("cellgate_api_database_fallbacks_total", lookup="cell_counts") == 1
        # Show needs the instance's mapping: nothing stands in for it.
        shown = await client.get(f"/v2.1/servers/{ids[0]}", headers=auth("demo:demo"))
        assert shown.status_code == 503, shown.text
        assert shown.headers["Retry-After"]
