"""A cell that answers a detail page's keyset query but not its side data (a lock held on
``instance_extra`` by another session, on a real PostgreSQL cell) makes the page a 503
with ``Retry-After`` naming the cell, never a 500: the chaos run (issue #22) found the
error wrapped in the task group that reads the side data beside Neutron and the API
database, which no error handler knew."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support.apps import app_client
from tests.support.cellsets import CellSet
from tests.support.oracle import auth

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def test_a_cell_failing_its_side_data_is_a_503_not_a_500(pg_cells: CellSet) -> None:
    settings = pg_cells.settings(page_cache_ttl_s=0, cell_timeout_s=0.5, request_budget_s=5)
    path = "/v2.1/servers/detail?all_tenants=1&limit=200"
    async with app_client(settings) as client:
        healthy = await client.get(path, headers=auth("admin:admin"))
        assert healthy.status_code == 200
        locker = await asyncpg.connect(pg_cells.cells[0].url)
        try:
            async with locker.transaction():
                await locker.execute("LOCK TABLE instance_extra IN ACCESS EXCLUSIVE MODE")
                locked = await client.get(path, headers=auth("admin:admin"))
        finally:
            await locker.close()
    assert locked.status_code == 503, locked.text
    assert locked.headers["Retry-After"]
    assert "cell1" in locked.json()["serviceUnavailable"]["message"]
