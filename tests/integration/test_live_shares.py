"""A cell whose breaker is open supplies no row: the other cells' first batches bring its
part of the page (cells.listing._live_shares), instead of each refilling sequentially."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cells.breaker import Breaker
from cells.client import CellClient
from cells.filters import InstanceFilters
from cells.listing import ListQuery, _live_shares, list_instances
from cells.order import Direction, SortSpec
from cells.registry import Cell, EngineOptions, create_engine_for, executor_for
from tests.support.cellsets import CellSet

LIMIT = 60


@pytest.fixture
async def targets(sqlite_cells: CellSet) -> AsyncIterator[list[tuple[CellClient, Breaker]]]:
    """Two cells' clients, each with its breaker (to open by hand)."""
    out = []
    for i, seed_cell in enumerate(sqlite_cells.cells[:2], start=1):
        cell = Cell(i, f"uuid-{i}", seed_cell.name, seed_cell.url)
        breaker = Breaker()
        engine = create_engine_for(cell.url, EngineOptions())
        out.append((CellClient(cell, executor_for(engine), 5.0, breaker), breaker))
    yield out
    for client, _ in out:
        await client.dispose()


def _query() -> ListQuery:
    spec = SortSpec.build([("created_at", Direction.DESC)])
    return ListQuery(spec, InstanceFilters(), LIMIT, columns=("uuid", "created_at"))


def _open(breaker: Breaker) -> None:
    for _ in range(breaker.failure_threshold):
        breaker.record_failure(timed_out=False)
    assert breaker.skipping


Targets = list[tuple[CellClient, Breaker]]


async def test_a_skipped_cells_share_goes_to_the_others(targets: Targets) -> None:
    shares = {1: 0.5, 2: 0.5}
    _open(targets[0][1])
    clients = [client for client, _ in targets]
    result = await list_instances(clients, _query(), shares=shares)
    assert len(result.rows) == LIMIT
    assert [c.label for c in result.unavailable] == [clients[0].cell.label]
    live = result.stats[1]
    assert live.outcome == "ok"
    assert live.queries == 1  # one batch of the whole page, no sequential refill
    assert live.rows_fetched == LIMIT + 1


async def test_equal_shares_too(targets: Targets) -> None:
    _open(targets[0][1])
    result = await list_instances([client for client, _ in targets], _query(), shares=None)
    assert len(result.rows) == LIMIT
    assert result.stats[1].queries == 1


def test_healthy_cells_keep_their_shares(targets: Targets) -> None:
    shares = {1: 0.7, 2: 0.3}
    clients = [client for client, _ in targets]
    assert _live_shares(clients, shares) is shares
    assert _live_shares(clients, None) is None
    _open(targets[1][1])
    assert _live_shares(clients, shares) == {1: 1.0, 2: 0.0}
    _open(targets[0][1])  # every cell skipped: nothing to spread over
    assert _live_shares(clients, shares) is shares
