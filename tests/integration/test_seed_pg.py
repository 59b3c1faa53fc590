"""Seeding real databases: PostgreSQL on 127.0.0.1:5432 (trust auth), and SQLite files."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cells.registry import async_url
from cells.schema import cell_mappings, instance_mappings, instances
from cells.seeding import (
    SeedCell,
    SeedPlan,
    SeedSummary,
    drop_database,
    reset_database,
    seed,
)

pytestmark = pytest.mark.integration

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
PLAN = SeedPlan(instances=20_000, seed=3)


async def _require_postgres() -> None:
    try:
        conn = await asyncpg.connect(f"{PG_SERVER}/postgres", timeout=5)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        message = f"PostgreSQL at {PG_SERVER} unreachable: {exc!r}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    await conn.close()


@pytest.fixture
async def pg_targets() -> AsyncIterator[tuple[str, list[SeedCell]]]:
    await _require_postgres()
    api = f"{PG_SERVER}/cg_seedtest_api"
    cells = [SeedCell(f"cell{i}", f"{PG_SERVER}/cg_seedtest_cell{i}") for i in range(1, 5)]
    urls = [api, *(c.url for c in cells)]
    for url in urls:
        await reset_database(url)
    try:
        yield api, cells
    finally:
        for url in urls:
            await drop_database(url)


@pytest.fixture
def sqlite_targets(tmp_path: Path) -> tuple[str, list[SeedCell]]:
    api = f"sqlite:///{tmp_path}/db/api.db"
    return api, [SeedCell(f"cell{i}", f"sqlite:///{tmp_path}/db/cell{i}.db") for i in range(1, 5)]


async def _check(api_url: str, cells: Sequence[SeedCell], summary: SeedSummary) -> None:
    """Compare what the databases hold with the summary, using SQL only."""
    assert summary.mappings == PLAN.instances
    assert sum(summary.instances_per_cell.values()) == PLAN.instances
    assert summary.instances_per_cell["cell4"] == 0

    api = create_async_engine(async_url(api_url), poolclass=NullPool)
    try:
        async with api.connect() as conn:
            cell_ids = dict(
                (await conn.execute(select(cell_mappings.c.name, cell_mappings.c.id))).all()
            )
            connections = (
                await conn.execute(select(cell_mappings.c.database_connection))
            ).scalars()
            assert set(connections) == {c.url for c in cells}
            mapped = (
                await conn.execute(
                    select(
                        instance_mappings.c.instance_uuid,
                        instance_mappings.c.cell_id,
                        instance_mappings.c.queued_for_delete,
                    )
                )
            ).all()
    finally:
        await api.dispose()
    assert len(mapped) == PLAN.instances
    cell_of = {uuid: cell_id for uuid, cell_id, _ in mapped}
    queued = {uuid: q for uuid, _, q in mapped}

    held: dict[str, int] = {}
    for cell in cells:
        engine = create_async_engine(async_url(cell.url), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(instances.c.uuid, instances.c.id, instances.c.deleted)
                    )
                ).all()
                ties = await conn.scalar(
                    text(
                        "SELECT coalesce(max(n), 0) FROM "
                        "(SELECT count(*) AS n FROM instances GROUP BY created_at) AS t"
                    )
                )
        finally:
            await engine.dispose()
        held[cell.name] = len(rows)
        for uuid, iid, deleted in rows:
            assert cell_of[uuid] == cell_ids[cell.name]
            assert deleted in (0, iid)
            assert queued[uuid] is (deleted != 0)
        if rows:
            assert ties >= 2
    assert held == summary.instances_per_cell
    assert [name for name, n in held.items() if n == 0] == ["cell4"]


async def test_seed_postgres(pg_targets: tuple[str, list[SeedCell]]) -> None:
    api, cells = pg_targets
    summary = await seed(api, cells, PLAN, progress=False)
    await _check(api, cells, summary)

    again = await seed(api, cells, PLAN, progress=False)
    assert again.instances_per_cell == summary.instances_per_cell
    await _check(api, cells, again)

    conn = await asyncpg.connect(f"{PG_SERVER}/cg_seedtest_cell1")
    try:
        # Ids were written explicitly; the serial must still hand out fresh ones.
        next_id = await conn.fetchval("SELECT nextval('instances_id_seq')")
        analysed = await conn.fetchval(
            "SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL "
            "FROM pg_stat_user_tables WHERE relname = 'instances'"
        )
    finally:
        await conn.close()
    assert next_id == summary.instances_per_cell["cell1"] + 1
    assert analysed


async def test_seed_sqlite(sqlite_targets: tuple[str, list[SeedCell]]) -> None:
    api, cells = sqlite_targets
    summary = await seed(api, cells, PLAN, progress=False)
    await _check(api, cells, summary)

    again = await seed(api, cells, PLAN, progress=False)
    assert again == SeedSummary(summary.instances_per_cell, summary.mappings, again.elapsed_s)
    await _check(api, cells, again)

    await drop_database(cells[0].url)
    assert not await asyncio.to_thread(Path(cells[0].url.removeprefix("sqlite:///")).exists)
