"""Outage drills on real SQLite cells: each one is seen by the cell session as the real
outage it imitates, and ending it brings the cell back."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import literal, select

from cells import (
    Cell,
    CellFailed,
    CellRows,
    CellSession,
    CellTimedOut,
    Drills,
    EngineOptions,
    create_engine_for,
)
from tests.conftest import CellSet

pytestmark = pytest.mark.integration

ONE = select(literal(1))


def _cell(sqlite_cells: CellSet) -> Cell:
    seeded = sqlite_cells.cells[0]
    return Cell(id=1, uuid="u1", name=seeded.name, url=seeded.url)


async def test_down_is_a_refused_connection(sqlite_cells: CellSet) -> None:
    cell = _cell(sqlite_cells)
    drills = Drills(slow_s=0.2)
    engine = create_engine_for(cell.url, EngineOptions(), "cell")
    drills.install(cell.label, engine)
    drills.set(cell.label, "down")
    session = CellSession(cell, engine, 0.5)
    try:
        outcome = await session.fetch(ONE, 2)
        assert isinstance(outcome, CellFailed)
        assert "ConnectionRefusedError" in outcome.error
        drills.set(cell.label, "none")
        assert isinstance(await session.fetch(ONE, 2), CellRows)
    finally:
        await session.close()
        await engine.dispose()


async def test_hang_misses_the_deadline_and_the_probe(sqlite_cells: CellSet) -> None:
    cell = _cell(sqlite_cells)
    drills = Drills(slow_s=0.2)
    engine = create_engine_for(cell.url, EngineOptions(), "cell")
    drills.install(cell.label, engine)
    drills.set(cell.label, "hang")
    session = CellSession(cell, engine, 0.4)
    try:
        started = time.perf_counter()
        outcome = await session.fetch(ONE, 2)
        elapsed = time.perf_counter() - started
        # Dead, not merely slow: the liveness probe hung too.
        assert isinstance(outcome, CellTimedOut)
        assert elapsed < 2.0  # bounded by the deadline (plus the probe's grace), not the drill
        drills.set(cell.label, "none")
        assert isinstance(await session.fetch(ONE, 2), CellRows)
    finally:
        await session.close()
        await engine.dispose()


async def test_slow_answers_late(sqlite_cells: CellSet) -> None:
    cell = _cell(sqlite_cells)
    drills = Drills(slow_s=0.15)
    engine = create_engine_for(cell.url, EngineOptions(), "cell")
    drills.install(cell.label, engine)
    drills.set(cell.label, "slow")
    session = CellSession(cell, engine, 2.0)
    try:
        outcome = await session.fetch(ONE, 2)
        assert isinstance(outcome, CellRows)
        assert outcome.elapsed_ms >= 150
    finally:
        await session.close()
        await engine.dispose()


async def test_ending_a_hang_releases_its_statement(sqlite_cells: CellSet) -> None:
    cell = _cell(sqlite_cells)
    drills = Drills(slow_s=0.2)
    engine = create_engine_for(cell.url, EngineOptions(), "cell")
    drills.install(cell.label, engine)
    drills.set(cell.label, "hang")
    session = CellSession(cell, engine, 5.0)
    try:
        pending = asyncio.ensure_future(session.fetch(ONE, 2, probe=False))
        await asyncio.sleep(0.2)
        assert not pending.done()
        drills.set(cell.label, "none")
        outcome = await asyncio.wait_for(pending, 1.0)
        assert isinstance(outcome, CellRows)
    finally:
        await session.close()
        await engine.dispose()


def test_only_installed_cells_can_be_drilled() -> None:
    with pytest.raises(KeyError):
        Drills(slow_s=0.1).set("cell9", "down")
