"""A cell whose tables or columns are missing is a fault of that cell, not of everyone.

On a real PostgreSQL and a real MariaDB set of three cells (the last empty), cell2 loses
its ``instances`` table, one of its columns, or its ``instance_extra`` side table. Every
listing must then be the healthy listing without cell2's servers (or with them as the
2.69 stubs), name cell2 in ``X-Cells-Unavailable``, log the fault at ERROR and count it
by reason, never move cell2's breaker, and walk page after page exactly; ``/readyz`` and
``cellgate doctor`` name the cause. A client's bad input is still a 400, and the repaired
cell is served at once.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cells.doctor import diagnose
from cells.registry import async_url
from cells.schema import instance_mappings
from gateway.settings import Settings
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet, drop_postgres, seed_mariadb, seed_postgres
from tests.support.logs import JsonLines, captured_lines

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ADMIN = "admin:admin"
BROKEN = "cell2"
SERVERS = "/v2.1/servers"
DETAIL = "/v2.1/servers/detail"


@pytest.fixture(scope="module", params=["postgresql", "mariadb"])
async def cell_set(request: pytest.FixtureRequest) -> AsyncIterator[CellSet]:
    """Three cells of this module's own (they get broken), on each backend."""
    prefix = f"nova_views_broken_{os.getpid()}"
    if request.param == "postgresql":
        request.getfixturevalue("postgres")
        found = await seed_postgres(prefix, cells=3, instances=240, seed_value=3)
    else:
        request.getfixturevalue("mariadb")
        found = await seed_mariadb(prefix, cells=3, instances=240, seed_value=3)
    yield found
    await drop_postgres(found)


async def _execute(url: str, *statements: str) -> None:
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


@asynccontextmanager
async def _broken(cell_set: CellSet, breaking: str, repairing: str) -> AsyncIterator[None]:
    url = next(c.url for c in cell_set.cells if c.name == BROKEN)
    await _execute(url, breaking)
    try:
        yield
    finally:
        await _execute(url, repairing)


async def _cell_of(cell_set: CellSet) -> dict[str, int]:
    engine = create_async_engine(async_url(cell_set.api_url), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            im = instance_mappings.c
            rows = (await conn.execute(select(im.instance_uuid, im.cell_id))).all()
    finally:
        await engine.dispose()
    return {str(uuid): int(cell_id) for uuid, cell_id in rows if cell_id is not None}


def _headers(version: str) -> dict[str, str]:
    return {"X-Auth-Token": ADMIN, "OpenStack-API-Version": f"compute {version}"}


async def _walk(
    client: httpx.AsyncClient, path: str, version: str, limit: int
) -> tuple[list[dict[str, object]], set[str]]:
    """Every page of ``path`` (all tenants) through its next links: the servers in order,
    and the cells the pages named unavailable."""
    url: str | None = f"{path}?all_tenants=1&limit={limit}"
    servers: list[dict[str, object]] = []
    named: set[str] = set()
    while url is not None:
        response = await client.get(url, headers=_headers(version))
        assert response.status_code == 200, response.text
        if "X-Cells-Unavailable" in response.headers:
            named |= set(response.headers["X-Cells-Unavailable"].split(","))
        body = response.json()
        servers += body["servers"]
        links = body.get("servers_links", [])
        url = links[0]["href"].removeprefix("http://gateway.test") if links else None
    return servers, named


def _settings(cell_set: CellSet) -> Settings:
    return cell_set.settings(page_cache_ttl_s=0, check_schema_at_startup=False)


@pytest.fixture
def fault_log() -> Iterator[JsonLines]:
    with captured_lines("cells.client") as lines:
        yield lines


async def _healthy(cell_set: CellSet, path: str) -> list[str]:
    async with app_and_client(_settings(cell_set)) as (_, client):
        servers, named = await _walk(client, path, "2.1", 1000)
    assert not named
    return [str(s["id"]) for s in servers]


@pytest.mark.parametrize(
    ("breaking", "repairing", "reason"),
    [
        (
            "ALTER TABLE instances RENAME TO instances_gone",
            "ALTER TABLE instances_gone RENAME TO instances",
            "missing_table",
        ),
        (
            "ALTER TABLE instances RENAME COLUMN display_name TO display_name_gone",
            "ALTER TABLE instances RENAME COLUMN display_name_gone TO display_name",
            "missing_column",
        ),
    ],
    ids=["no-instances-table", "no-display_name-column"],
)
async def test_a_cell_without_its_table_or_column_is_left_out(
    cell_set: CellSet, fault_log: JsonLines, breaking: str, repairing: str, reason: str
) -> None:
    healthy = await _healthy(cell_set, SERVERS)
    cell_of = await _cell_of(cell_set)
    broken_id = next(i for i, c in enumerate(cell_set.cells, 1) if c.name == BROKEN)
    lost = {u for u in healthy if cell_of[u] == broken_id}
    assert lost
    assert len(lost) < len(healthy)
    async with _broken(cell_set, breaking, repairing):
        async with app_and_client(_settings(cell_set)) as (app, client):
            for path in (SERVERS, DETAIL):
                # Below 2.69 the cell's servers are left out; the walk is exact page by page.
                servers, named = await _walk(client, path, "2.1", 7)
                assert [s["id"] for s in servers] == [u for u in healthy if u not in lost]
                assert named == {BROKEN}
                # From 2.69 they are the down-cell stubs, in their places.
                servers, named = await _walk(client, path, "2.69", 1000)
                assert [s["id"] for s in servers] == healthy
                assert {str(s["id"]) for s in servers if s.get("status") == "UNKNOWN"} == lost
                assert named == {BROKEN}
            # A client's bad input is still a 400, whatever the cells' state.
            bad = await client.get(f"{SERVERS}?all_tenants=1&name=a(", headers=_headers("2.1"))
            assert bad.status_code == 400, bad.text
            state = app.state.cellgate
            metrics = state.metrics
            assert metrics.sample("cellgate_cell_config_errors_total", cell=BROKEN, reason=reason)
            assert metrics.sample(
                "cellgate_cell_outcomes_total", cell=BROKEN, outcome="misconfigured"
            )
            assert metrics.sample("cellgate_cell_breaker_state", cell=BROKEN) == 0
            assert all(c.breaker_state.value == "closed" for c in state.clients.values())
            ready = (await client.get("/readyz")).json()
            check = ready["checks"][f"cell:{BROKEN}"][0]
            assert ready["status"] == "warn"
            assert check["status"] == "warn"
            assert check["output"].startswith(f"misconfigured: {reason}: ")
            # Show: a server of the broken cell is the 2.69 view, a 503 below.
            victim = sorted(lost)[0]
            shown = await client.get(f"{SERVERS}/{victim}", headers=_headers("2.69"))
            assert shown.status_code == 200, shown.text
            assert shown.json()["server"]["status"] == "UNKNOWN"
            old = await client.get(f"{SERVERS}/{victim}", headers=_headers("2.1"))
            assert old.status_code == 503, old.text
        report = await diagnose(cell_set.api_url, (), (), 10.0)
        [doctor] = [c for c in report.cells if c.name == BROKEN]
        wanted = "table instances is missing" if reason == "missing_table" else "display_name"
        assert any(wanted in p for p in doctor.schema_problems), doctor.schema_problems
        assert not report.ok
    errors = [line for line in fault_log.lines if line.get("level") == "ERROR"]
    assert errors
    assert all(line["cell"] == BROKEN for line in errors)
    assert {line["reason"] for line in errors} == {reason}
    # Repaired: served again at once (its breaker never opened).
    async with app_and_client(_settings(cell_set)) as (_, client):
        servers, named = await _walk(client, SERVERS, "2.1", 1000)
    assert [s["id"] for s in servers] == healthy
    assert not named


async def test_a_cell_without_a_side_table_is_left_out_of_the_detail_view(
    cell_set: CellSet,
) -> None:
    healthy = await _healthy(cell_set, DETAIL)
    cell_of = await _cell_of(cell_set)
    broken_id = next(i for i, c in enumerate(cell_set.cells, 1) if c.name == BROKEN)
    lost = {u for u in healthy if cell_of[u] == broken_id}
    async with (
        _broken(
            cell_set,
            "ALTER TABLE instance_extra RENAME TO instance_extra_gone",
            "ALTER TABLE instance_extra_gone RENAME TO instance_extra",
        ),
        app_and_client(_settings(cell_set)) as (app, client),
    ):
        summary, named = await _walk(client, SERVERS, "2.1", 1000)
        assert [s["id"] for s in summary] == healthy
        assert not named
        servers, named = await _walk(client, DETAIL, "2.1", 7)
        assert [s["id"] for s in servers] == [u for u in healthy if u not in lost]
        assert named == {BROKEN}
        servers, named = await _walk(client, DETAIL, "2.69", 9)
        assert [s["id"] for s in servers] == healthy
        assert {str(s["id"]) for s in servers if s["status"] == "UNKNOWN"} >= lost
        assert all(
            set(s) == {"id", "status", "links", "tenant_id", "created"}
            for s in servers
            if s["id"] in lost
        )
        metrics = app.state.cellgate.metrics
        assert metrics.sample(
            "cellgate_cell_config_errors_total", cell=BROKEN, reason="missing_table"
        )
        assert metrics.sample("cellgate_cell_breaker_state", cell=BROKEN) == 0
