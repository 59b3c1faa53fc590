"""The rendered-page cache expires absolutely from its write: a page polled more often
than its TTL still shows a new server within ``page_cache_ttl_s`` (+1 s of polling)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid

import pytest
from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import create_async_engine

from cells import async_url
from cells.schema import instance_mappings, instances
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet
from tests.support.oracle import auth

pytestmark = pytest.mark.integration

TTL_S = 2.0


async def test_a_polled_page_goes_stale_within_its_ttl(pg_cells: CellSet) -> None:
    new = str(uuid.uuid4())
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=1)
    cell_engine = create_async_engine(async_url(pg_cells.cells[0].url))
    api_engine = create_async_engine(async_url(pg_cells.api_url))
    settings = pg_cells.settings(page_cache_ttl_s=TTL_S)
    try:
        async with app_and_client(settings) as (app, client):

            async def ids() -> list[str]:
                page = await client.get("/v2.1/servers?limit=5", headers=auth("demo:demo"))
                assert page.status_code == 200
                return [s["id"] for s in page.json()["servers"]]

            for _ in range(3):  # warm: the page is cached and polled
                assert new not in await ids()
                await asyncio.sleep(0.5)
            async with cell_engine.begin() as conn:
                await conn.execute(
                    insert(instances).values(
                        uuid=new,
                        project_id="demo",
                        user_id="alice",
                        display_name="brand-new",
                        hostname="brand-new",
                        vm_state="active",
                        power_state=1,
                        created_at=now,
                        updated_at=now,
                        deleted=0,
                    )
                )
            async with api_engine.begin() as conn:
                cell_id = next(c.id for c in app.state.cellgate.cells if c.name == "cell1")
                await conn.execute(
                    insert(instance_mappings).values(
                        instance_uuid=new,
                        cell_id=cell_id,
                        project_id="demo",
                        user_id="alice",
                        created_at=now,
                        queued_for_delete=False,
                    )
                )
            inserted = time.monotonic()
            seen_after = None
            while time.monotonic() - inserted < TTL_S + 3:
                if new in await ids():
                    seen_after = time.monotonic() - inserted
                    break
                await asyncio.sleep(0.5)
            hits = app.state.cellgate.metrics.sample("cellgate_page_cache_total", result="hit")
        print(f"\nnew server seen {seen_after} s after the insert (TTL {TTL_S} s), {hits} hits")
        assert hits >= 2  # the polls really were served from the page cache
        assert seen_after is not None
        assert seen_after <= TTL_S + 1
    finally:
        async with cell_engine.begin() as conn:
            await conn.execute(delete(instances).where(instances.c.uuid == new))
        async with api_engine.begin() as conn:
            await conn.execute(
                delete(instance_mappings).where(instance_mappings.c.instance_uuid == new)
            )
        await cell_engine.dispose()
        await api_engine.dispose()
