"""A cached frontier is trusted for ``frontier_fresh_s`` after its rows were fetched, never
longer (found by ``scripts/chaos --writes``, issue #22).

A frontier is keyed by the walk and the marker, so every client that follows a page's next
link resumes from it. Its buffered rows are what the cells held when it was saved: an
instance created since, inside a cell's buffered range, is in no buffer and before that
cell's cursor. Trusted for its whole sliding TTL, the frontier hid such an instance from
every later walk through that marker for minutes, on pages that named no missing cell.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid as uuid_module
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from cells.schema import instances
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet, drop_postgres, seed_postgres

pytestmark = pytest.mark.integration

ADMIN = {"X-Auth-Token": "admin:admin"}
SERVERS = "/v2.1/servers"
# Slack for a slow machine: everything between the frontier's fetch and the page that must
# still resume from it (two pages, four row reads, one insert) has to fit in it.
FRESH_S = 3.0
_COLUMNS = [c.name for c in instances.columns if c.name != "id"]


@pytest.fixture(scope="module")
async def fresh_cells(postgres: str) -> AsyncIterator[CellSet]:
    cell_set = await seed_postgres(f"cg_fresh_{os.getpid()}", cells=3, instances=900)
    yield cell_set
    await drop_postgres(cell_set)


async def _page(client: httpx.AsyncClient, marker: str | None = None) -> list[str]:
    params = {"all_tenants": "1", "limit": "40"} | ({"marker": marker} if marker else {})
    response = await client.get(SERVERS, params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert "x-cells-unavailable" not in response.headers
    return [str(s["id"]) for s in response.json()["servers"]]


async def _created(cell_set: CellSet, uuid: str) -> tuple[str, dt.datetime]:
    """The cell (URL) holding ``uuid`` and its ``created_at``."""
    for cell in cell_set.cells:
        conn = await asyncpg.connect(cell.url)
        try:
            found = await conn.fetchval("SELECT created_at FROM instances WHERE uuid = $1", uuid)
        finally:
            await conn.close()
        if found is not None:
            return cell.url, found
    raise LookupError(uuid)


async def _insert_between(cell_set: CellSet, marker: str, after: str) -> str:
    """A new instance in ``after``'s cell, listed between ``marker`` and ``after`` (newest
    first): a clone of ``after`` created halfway between the two."""
    (_, top), (url, low) = await _created(cell_set, marker), await _created(cell_set, after)
    new = str(uuid_module.uuid4())
    values = {"uuid": "$2", "created_at": "$3", "updated_at": "NULL"}
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            f"INSERT INTO instances ({', '.join(_COLUMNS)}) SELECT "
            f"{', '.join(values.get(c, c) for c in _COLUMNS)} FROM instances WHERE uuid = $1",
            after, new, low + (top - low) / 2,
        )  # fmt: skip
    finally:
        await conn.close()
    return new


async def test_a_frontier_hides_no_instance_created_longer_ago_than_frontier_fresh_s(
    fresh_cells: CellSet,
) -> None:
    settings = fresh_cells.settings(page_cache_ttl_s=0, read_ahead_max=0, frontier_fresh_s=FRESH_S)
    async with app_and_client(settings) as (_, client):
        # A page boundary where the next row is strictly older than the marker (the seeded
        # instances come in bursts sharing one created_at).
        marker, following = "", [""]
        first = await _page(client)
        for _ in range(10):
            marker, following = first[-1], await _page(client, first[-1])
            (_, top), (_, low) = (
                await _created(fresh_cells, marker),
                await _created(fresh_cells, following[0]),
            )
            if top > low:
                break
            first = following
        assert top > low
        new = await _insert_between(fresh_cells, marker, following[0])
        # Within frontier_fresh_s the next client through that marker resumes from the
        # frontier saved before the insert: the trade-off the setting bounds.
        assert new not in await _page(client, marker)
        await asyncio.sleep(FRESH_S + 0.2)
        # Past it, the marker is resolved afresh and the cells queried: the new instance
        # is in its place, just before the row that followed the marker.
        again = await _page(client, marker)
        assert again[: again.index(following[0]) + 1][-2:] == [new, following[0]]
