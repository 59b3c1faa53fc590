"""Outage drills on real SQLite cells: each one is seen by the cell session (what every
CellClient call runs on) as the real outage it imitates, and ending it brings the cell
back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import literal, select

from cells import (
    Cell,
    CellFailed,
    CellOutcome,
    CellRows,
    CellSession,
    CellTimedOut,
    EngineOptions,
    create_engine_for,
    executor_for,
)
from gateway.demo.drills import Drill, Drills
from tests.support.cellsets import CellSet

pytestmark = pytest.mark.integration

ONE = select(literal(1))


async def _one(session: CellSession, probe: bool = True) -> CellOutcome:
    return await session.fetch(session.prepare(ONE), {}, limit=2, probe=probe)


@contextlib.asynccontextmanager
async def _drilled(
    sqlite_cells: CellSet, drill: Drill, timeout_s: float, slow_s: float = 0.2
) -> AsyncIterator[tuple[Drills, CellSession]]:
    """A session on the first SQLite cell with ``drill`` in force on its engine."""
    seeded = sqlite_cells.cells[0]
    cell = Cell(id=1, uuid="u1", name=seeded.name, url=seeded.url)
    drills = Drills(slow_s=slow_s)
    engine = create_engine_for(cell.url, EngineOptions(), "cell")
    drills.install(cell.label, engine)
    drills.set(cell.label, drill)
    session = CellSession(cell.label, executor_for(engine), timeout_s)
    try:
        yield drills, session
    finally:
        await session.close()
        await engine.dispose()


async def test_down_is_a_refused_connection(sqlite_cells: CellSet) -> None:
    async with _drilled(sqlite_cells, "down", 0.5) as (drills, session):
        outcome = await _one(session)
        assert isinstance(outcome, CellFailed)
        assert "ConnectionRefusedError" in outcome.error
        drills.set(session.label, "none")
        assert isinstance(await _one(session), CellRows)


async def test_hang_misses_the_deadline_and_the_probe(sqlite_cells: CellSet) -> None:
    async with _drilled(sqlite_cells, "hang", 0.4) as (drills, session):
        started = time.perf_counter()
        outcome = await _one(session)
        elapsed = time.perf_counter() - started
        # Dead, not merely slow: the liveness probe hung too.
        assert isinstance(outcome, CellTimedOut)
        assert elapsed < 2.0  # bounded by the deadline (plus the probe's grace), not the drill
        drills.set(session.label, "none")
        assert isinstance(await _one(session), CellRows)


async def test_slow_answers_late(sqlite_cells: CellSet) -> None:
    async with _drilled(sqlite_cells, "slow", 2.0, slow_s=0.15) as (_, session):
        outcome = await _one(session)
        assert isinstance(outcome, CellRows)
        assert outcome.elapsed_ms >= 150


async def test_ending_a_hang_releases_its_statement(sqlite_cells: CellSet) -> None:
    async with _drilled(sqlite_cells, "hang", 5.0) as (drills, session):
        pending = asyncio.ensure_future(_one(session, probe=False))
        await asyncio.sleep(0.2)
        assert not pending.done()
        drills.set(session.label, "none")
        outcome = await asyncio.wait_for(pending, 1.0)
        assert isinstance(outcome, CellRows)


def test_only_installed_cells_can_be_drilled() -> None:
    with pytest.raises(KeyError):
        Drills(slow_s=0.1).set("cell9", "down")
