"""Structured concurrency under load: 200 interleaved good and bad requests at concurrency
16 over PostgreSQL cells. A bad request's 400 cancels its sibling cell queries, whose
connections must be dropped, never returned mid-query: no "another operation is in
progress", and no good request ever sees a cell as unavailable."""

from __future__ import annotations

import asyncio
import logging
import random
import time

import pytest

from cells import BreakerState
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet
from tests.support.oracle import auth

pytestmark = pytest.mark.integration


async def test_interleaved_good_and_bad_requests_keep_every_cell_healthy(
    pg_cells: CellSet, caplog: pytest.LogCaptureFixture
) -> None:
    rnd = random.Random(8)
    settings = pg_cells.settings(page_cache_ttl_s=0, cell_pool_size=4, cell_pool_max_overflow=4)
    caplog.set_level(logging.WARNING)
    async with app_and_client(settings) as (app, client):
        expected: dict[int, list[str]] = {}
        for limit in range(20, 60):
            page = await client.get(f"/v2.1/servers?limit={limit}", headers=auth("demo:demo"))
            expected[limit] = [s["id"] for s in page.json()["servers"]]
        # A regex Python accepts and PostgreSQL rejects (SQLSTATE 2201B): it fails inside the
        # cells while the sibling cells' queries are still running.
        plan = [("bad" if i % 2 else "good", rnd.randrange(20, 60)) for i in range(200)]
        gate = asyncio.Semaphore(16)
        outcomes: list[tuple[str, int, bool, bool]] = []
        started = time.perf_counter()

        async def one(kind: str, limit: int) -> None:
            query = f"limit={limit}" + ("&name=(?P<x>web)" if kind == "bad" else "")
            async with gate:
                r = await client.get(f"/v2.1/servers?{query}", headers=auth("demo:demo"))
            ids = [s["id"] for s in r.json()["servers"]] if r.status_code == 200 else None
            complete = kind == "bad" or ids == expected[limit]
            outcomes.append((kind, r.status_code, "x-cells-unavailable" in r.headers, complete))

        await asyncio.gather(*(one(kind, limit) for kind, limit in plan))
        elapsed = time.perf_counter() - started
        breakers = [c.breaker_state for c in app.state.cellgate.clients.values()]
    good = [o for o in outcomes if o[0] == "good"]
    bad = [o for o in outcomes if o[0] == "bad"]
    print(
        f"\n200 requests at concurrency 16 in {elapsed:.2f} s: "
        f"{sum(o[1] == 200 for o in good)}/{len(good)} good 200, "
        f"{sum(o[1] == 400 for o in bad)}/{len(bad)} bad 400"
    )
    assert all(status == 200 and not partial and complete for _, status, partial, complete in good)
    assert all(status == 400 for _, status, _, _ in bad)
    assert all(state is BreakerState.CLOSED for state in breakers)
    assert "another operation is in progress" not in caplog.text
    assert "failed after" not in caplog.text  # no cell call failed on its own
