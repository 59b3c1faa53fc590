"""What is particular to MariaDB cells: exact scopes under a case-insensitive collation, the
server's deadline, discarded connections, faults from the real server, and a deployment
mixing MariaDB and PostgreSQL cells that pages in one exact order."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text

from cells.errors import CellMisconfigured, InvalidQuery
from cells.executor import Query
from cells.fanout import CellOutcome, CellRows, CellSlow, CellTimedOut
from cells.mysql import MySqlExecutor
from cells.registry import EngineOptions, open_executor
from cells.seeding import SeedCell, SeedPlan, reset_database, seed
from cells.session import CellSession
from tests.support.apps import app_client
from tests.support.cellsets import CellSet, drop_postgres
from tests.support.names import vary_names
from tests.support.oracle import expected_uuids, load_snapshot, query_from_params, walk
from tests.support.services import MYSQL_BASE, PG_BASE

pytestmark = pytest.mark.integration

SERVERS = "/v2.1/servers"


async def test_a_project_differing_in_case_sees_nothing(mariadb_cells: CellSet) -> None:
    """Under utf8_general_ci 'DEMO' = 'demo'; the caller's scope must stay exact."""
    async with app_client(mariadb_cells.settings()) as client:
        own = await walk(client, SERVERS, [("limit", "1000")], "demo:demo")
        assert own.uuids
        for project in ("DEMO", "Demo", "dEmO"):
            got = await walk(client, SERVERS, [("limit", "1000")], f"mallory:{project}")
            assert got.uuids == [], project
            marker = await client.get(
                f"{SERVERS}?marker={own.uuids[0]}", headers={"X-Auth-Token": f"m:{project}"}
            )
            assert marker.status_code == 400, marker.text
            shown = await client.get(
                f"{SERVERS}/{own.uuids[0]}", headers={"X-Auth-Token": f"m:{project}"}
            )
            assert shown.status_code == 404, shown.text


async def test_a_regex_mariadb_rejects_is_the_clients_400(mariadb_cells: CellSet) -> None:
    # Python's re accepts \N{name}; MariaDB's PCRE2 does not (error 1139).
    async with app_client(mariadb_cells.settings()) as client:
        response = await client.get(
            SERVERS,
            params={"name": r"\N{LATIN SMALL LETTER E}"},
            headers={"X-Auth-Token": "demo:demo"},
        )
    assert response.status_code == 400, response.text
    assert "badRequest" in response.json()


def _session(cell_set: CellSet, timeout_s: float, **options: float) -> CellSession:
    """A session on the first cell, its engine built as the gateway builds one."""
    executor = open_executor(cell_set.cells[0].url, EngineOptions(**options), "cell1")  # type: ignore[arg-type]  # options are EngineOptions' own float fields, by name
    assert isinstance(executor, MySqlExecutor)
    return CellSession("cell1", executor, timeout_s)


async def _run(session: CellSession, statement: Query, probe: bool = True) -> CellOutcome:
    return await session.fetch(session.prepare(statement), {}, limit=1, probe=probe)


async def test_the_server_stops_a_statement_at_the_deadline(mariadb_cells: CellSet) -> None:
    """max_statement_time set at connect: error 1969 is a slow query, not a dead cell."""
    session = _session(mariadb_cells, 5.0, command_timeout_s=0.2)
    try:
        statement = select(text("COUNT(*) FROM instances a, instances b, instances c"))
        outcome = await _run(session, statement, probe=False)
    finally:
        await session.close()
        await session.executor.dispose()
    assert isinstance(outcome, CellSlow), outcome
    assert outcome.elapsed_ms < 2000, outcome


async def _connection_id(session: CellSession) -> int:
    outcome = await _run(session, select(text("CONNECTION_ID() AS id")))
    assert isinstance(outcome, CellRows), outcome
    return int(outcome.rows[0]["id"])  # type: ignore[arg-type]  # a row value is SqlValue; CONNECTION_ID() is an int


async def test_a_cancelled_statement_never_returns_its_connection(
    mariadb_cells: CellSet,
) -> None:
    # The server's own limit is the deadline too: it ends the statement, and then sees the
    # closed socket and ends the session.
    session = _session(mariadb_cells, 0.3, pool_size=1, max_overflow=0, command_timeout_s=0.3)
    engine = session.executor.engine
    try:
        first = await _connection_id(session)
        outcome = await _run(session, select(text("SLEEP(3)")), probe=False)
        assert isinstance(outcome, CellSlow | CellTimedOut), outcome
        second = await _connection_id(session)  # the pool's only slot, a new connection
        assert second != first
        await session.close()
        await asyncio.sleep(1.0)
        async with engine.connect() as conn:
            alive = set((await conn.exec_driver_sql("SHOW PROCESSLIST")).scalars())
        assert first not in alive, "the cancelled connection is still open on the server"
    finally:
        await session.close()
        await engine.dispose()


async def test_a_missing_column_is_misconfiguration(mariadb_cells: CellSet) -> None:
    session = _session(mariadb_cells, 5.0)
    try:
        with pytest.raises(CellMisconfigured, match="1054"):
            await _run(session, select(text("no_such_column FROM instances")))
        with pytest.raises(CellMisconfigured, match="1146"):
            await _run(session, select(text("1 FROM no_such_table")))
        with pytest.raises(InvalidQuery, match="1139"):
            await _run(session, select(text("1")).where(text("'a' REGEXP 'a('")))
    finally:
        await session.close()
        await session.executor.dispose()


# --- MariaDB and PostgreSQL cells in one deployment ---------------------------------------


@pytest.fixture(scope="module")
async def mixed_cells(mariadb: str, postgres: str) -> AsyncIterator[CellSet]:
    """API database on PostgreSQL; cell1 and cell3 on MariaDB, cell2 on PostgreSQL; the
    same colliding names written over some rows in every cell."""
    prefix = f"cg_mixed_{os.getpid()}"
    api_url = f"{PG_BASE}/{prefix}_api"
    cells = [
        SeedCell("cell1", f"{MYSQL_BASE}/{prefix}_cell1"),
        SeedCell("cell2", f"{PG_BASE}/{prefix}_cell2"),
        SeedCell("cell3", f"{MYSQL_BASE}/{prefix}_cell3"),
    ]
    await asyncio.gather(*(reset_database(u) for u in [api_url, *(c.url for c in cells)]))
    await seed(api_url, cells, SeedPlan(instances=1_500, seed=19), progress=False)
    await asyncio.gather(*(vary_names(c.url, every=3) for c in cells))
    cell_set = CellSet(api_url, cells, 1_500)
    yield cell_set
    await drop_postgres(cell_set)


@pytest.mark.parametrize(
    "params",
    [
        [],
        [("sort_key", "display_name"), ("sort_dir", "asc")],
        [("sort_key", "display_name"), ("sort_dir", "desc")],
        [("sort_key", "host"), ("sort_dir", "asc"), ("sort_key", "created_at")],
        [("sort_key", "uuid"), ("sort_dir", "desc")],
    ],
    ids=["default", "name-asc", "name-desc", "host-asc-created", "uuid-desc"],
)
async def test_mixed_cells_page_in_one_exact_order(
    mixed_cells: CellSet, params: list[tuple[str, str]]
) -> None:
    snapshot = await load_snapshot(mixed_cells)
    query = [("all_tenants", "1"), *params]
    want = expected_uuids(snapshot, query_from_params(query, "admin"))
    assert len(want) > 1000
    async with app_client(mixed_cells.settings()) as client:
        for limit in ("7", "100"):
            got = await walk(client, SERVERS, [*query, ("limit", limit)], "admin:admin")
            assert got.uuids == want, (params, limit)
