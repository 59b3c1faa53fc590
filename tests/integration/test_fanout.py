"""One cell call against real databases: each failure lands on the right side of the
fault taxonomy (cells.faults), and a slow query stops in the database, not only in us.
The calls run on a cell session (cells.session) over the driver's executor, as every
CellClient call does."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import column, func, literal, select, table, text

from cells import (
    BreakerState,
    CellFailed,
    CellMisconfigured,
    CellOutcome,
    CellRows,
    CellsError,
    CellSession,
    CellSlow,
    EngineOptions,
    InvalidQuery,
    create_engine_for,
    executor_for,
)
from cells.executor import Query
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet
from tests.support.liveserver import free_port
from tests.support.oracle import auth

pytestmark = pytest.mark.integration

OPTIONS = EngineOptions(command_timeout_s=0.5, connect_timeout_s=0.5, pool_timeout_s=0.5)


async def _fetch(session: CellSession, statement: Query, limit: int) -> CellOutcome:
    return await session.fetch(session.prepare(statement), {}, limit=limit)


async def test_postgresql_slow_query_is_slow_not_down_and_stops_in_the_server(
    pg_cells: CellSet,
) -> None:
    url = pg_cells.cells[0].url
    engine = create_engine_for(url, OPTIONS)
    try:
        session = CellSession("cell1", executor_for(engine), 0.5)
        started = time.perf_counter()
        outcome = await _fetch(session, select(func.pg_sleep(3)), 1)
        elapsed = time.perf_counter() - started
        await session.close()
        assert isinstance(outcome, CellSlow), outcome
        assert elapsed < 0.5 * 1.2
        await asyncio.sleep(0.3)
        async with engine.connect() as conn:
            running = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE state = 'active' AND query LIKE '%pg_sleep%' "
                        "AND pid <> pg_backend_pid()"
                    )
                )
            ).scalar_one()
        assert running == 0  # the backend stopped working on it
    finally:
        await engine.dispose()


async def test_postgresql_client_and_configuration_errors_raise(pg_cells: CellSet) -> None:
    url = pg_cells.cells[0].url
    engine = create_engine_for(url, OPTIONS)
    try:
        session = CellSession("cell1", executor_for(engine), 2.0)
        with pytest.raises(InvalidQuery) as invalid:  # SQLSTATE 2201B: the client's pattern
            await _fetch(session, select(literal("web").regexp_match("(?P<x>web)")), 1)
        assert isinstance(invalid.value, CellsError)
        with pytest.raises(CellMisconfigured) as raised:  # SQLSTATE 42703: our schema
            await _fetch(
                session, select(column("no_such_column")).select_from(table("instances")), 1
            )
        assert "no_such_column" in raised.value.message
        assert isinstance(raised.value, CellsError)
        ok = await _fetch(session, select(literal(1)), 2)  # the session is usable again
        assert isinstance(ok, CellRows)
        await session.close()
    finally:
        await engine.dispose()


async def test_a_refused_connection_is_the_cells_fault() -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    engine = create_engine_for(url, OPTIONS)
    try:
        session = CellSession("cell1", executor_for(engine), 1.0)
        outcome = await _fetch(session, select(literal(1)), 1)
        await session.close()
        assert isinstance(outcome, CellFailed), outcome
    finally:
        await engine.dispose()


async def test_sqlite_slow_regex_is_interrupted_and_a_400_for_that_request_only(
    sqlite_cells: CellSet,
) -> None:
    settings = sqlite_cells.settings(cell_timeout_s=0.2, request_budget_s=2.0, page_cache_ttl_s=0)
    async with app_and_client(settings) as (app, client):
        cpu_before = time.process_time()
        started = time.perf_counter()
        slow = await client.get(
            "/v2.1/servers", params={"name": "(.*)*(.*)*(.*)*x"}, headers=auth("demo:demo")
        )
        elapsed = time.perf_counter() - started
        assert slow.status_code == 400, slow.text
        assert "could not be evaluated" in slow.json()["badRequest"]["message"]
        assert elapsed < 1.0
        # The interrupted statements stop: the process idles after the answer.
        await asyncio.sleep(0.2)
        idle_from = time.process_time()
        await asyncio.sleep(1.0)
        assert time.process_time() - idle_from < 0.3, (cpu_before, idle_from)
        ok = await client.get("/v2.1/servers?limit=5", headers=auth("demo:demo"))
        assert ok.status_code == 200
        assert "x-cells-unavailable" not in ok.headers
        states = {c.breaker_state for c in app.state.cellgate.clients.values()}
        assert states == {BreakerState.CLOSED}


async def test_postgresql_statement_caches_are_bounded(pg_cells: CellSet) -> None:
    """Each cell connection keeps at most ``statement_cache_size`` prepared statements:
    asyncpg's own cache and SQLAlchemy's adapter's (a long soak's memory depends on it)."""
    url = pg_cells.cells[0].url
    engine = create_engine_for(url, EngineOptions(statement_cache_size=3))
    try:
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            for n in range(6):  # six distinct statements on one connection
                await driver.fetch(f"SELECT {n} AS n, $1::int AS x", n)
                await conn.execute(text(f"SELECT {n} AS n"))
            assert driver._stmt_cache.get_max_size() == 3
            assert len(driver._stmt_cache) <= 3
            # SQLAlchemy's LRU prunes back to its size once it holds 1.5 times as many.
            assert len(raw.dbapi_connection._prepared_statement_cache) <= 3 * 1.5
            # And no parallel plans for the gateway's small queries (the option's default).
            workers = await driver.fetchval("SHOW max_parallel_workers_per_gather")
            assert workers == "0"
    finally:
        await engine.dispose()
