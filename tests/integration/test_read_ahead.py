"""Read-ahead against real PostgreSQL cells and Redis: a walk that reads its pages ahead
returns exactly the rows of one that does not, reads each row about once (rows read ÷
returned ≤ 1.1, the rows read ahead included), and a first page alone reads nothing ahead.

Counts only, from the gateway's own counters: no timing assertion.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from gateway.state import AppState
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet, drop_postgres, seed_postgres

pytestmark = pytest.mark.integration

REDIS = "redis://127.0.0.1:6379/0"
DEMO = {"X-Auth-Token": "demo:demo"}


@pytest.fixture(scope="module")
async def seeded(postgres: str) -> AsyncIterator[CellSet]:
    cell_set = await seed_postgres(f"cg_ahead_{os.getpid()}", cells=4, instances=8_000)
    yield cell_set
    await drop_postgres(cell_set)


def _counter(app: FastAPI, name: str, **labels: str) -> float:
    state: AppState = app.state.cellgate
    total = 0.0
    for metric in state.metrics.registry.collect():
        for sample in metric.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


async def _walk(
    seeded: CellSet, read_ahead_max: int, pages: int = 0
) -> tuple[list[str], dict[str, float]]:
    settings = seeded.settings(
        redis_url=REDIS,
        redis_prefix=f"cgtest-ahead-{uuid.uuid4().hex[:12]}",
        page_cache_ttl_s=0,
        read_ahead_max=read_ahead_max,
    )
    got: list[str] = []
    async with app_and_client(settings) as (app, client):
        url: str | None = "/v2.1/servers?limit=50"
        n = 0
        while url is not None and (not pages or n < pages):
            response = await client.get(url, headers=DEMO)
            assert response.status_code == 200, response.text
            body = response.json()
            got += [s["id"] for s in body["servers"]]
            links = body.get("servers_links") or []
            url = links[0]["href"].removeprefix("http://gateway.test") if links else None
            n += 1
        counts = {
            "read": _counter(app, "cellgate_cell_rows_fetched_total"),
            "returned": _counter(app, "cellgate_rows_returned_total"),
            "started": _counter(app, "cellgate_read_ahead_total", result="started"),
            "pages": float(n),
        }
    return got, counts


async def test_a_walk_read_ahead_returns_the_same_rows_and_reads_each_about_once(
    seeded: CellSet,
) -> None:
    plain, off = await _walk(seeded, 0)
    ahead, on = await _walk(seeded, 64)
    assert len(plain) > 500
    assert len(set(plain)) == len(plain)
    assert ahead == plain
    assert off["started"] == 0
    # Pages 2 to the one before the last may read ahead (not when their frontier already
    # covers the next page); page 1 and the last never do.
    assert 0 < on["started"] <= on["pages"] - 2
    assert on["returned"] == len(plain)
    assert on["read"] / on["returned"] <= 1.1, on


async def test_a_first_page_alone_reads_nothing_ahead(seeded: CellSet) -> None:
    _, counts = await _walk(seeded, 64, pages=1)
    assert counts["started"] == 0
    _, two = await _walk(seeded, 64, pages=2)
    assert two["started"] == 1  # the walk went on: its third page is read ahead
