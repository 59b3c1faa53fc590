"""The cell-count cache (gateway.state.ProjectCells) and the first-page shares it is
blended with (cells.walk.HeadShares)."""

from __future__ import annotations

import asyncio

from cells.walk import HeadShares
from gateway.state import ProjectCells


class Loads:
    """A count loader that records its calls and can be held until released."""

    def __init__(self, counts: dict[int, int]) -> None:
        self.counts = counts
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self) -> dict[int, int]:
        self.calls += 1
        await self.gate.wait()
        return dict(self.counts)


async def test_concurrent_misses_share_one_query() -> None:
    cache = ProjectCells(ttl_s=60)
    load = Loads({1: 10, 2: 5})
    load.gate.clear()
    waiting = [asyncio.ensure_future(cache.counts("p1", load)) for _ in range(8)]
    await asyncio.sleep(0)
    load.gate.set()
    assert [await w for w in waiting] == [{1: 10, 2: 5}] * 8
    assert load.calls == 1
    assert await cache.counts("p1", load) == {1: 10, 2: 5}  # cached now
    assert load.calls == 1


async def test_a_stale_project_is_loaded_again_before_answering() -> None:
    cache = ProjectCells(ttl_s=0)
    load = Loads({1: 1})
    assert await cache.counts("p1", load) == {1: 1}
    load.counts = {1: 1, 2: 1}  # the project now has an instance in cell 2
    assert await cache.counts("p1", load) == {1: 1, 2: 1}  # never the stale answer
    assert load.calls == 2


async def test_stale_all_is_answered_while_one_refresh_runs() -> None:
    cache = ProjectCells(ttl_s=0)
    load = Loads({1: 100})
    assert await cache.counts(ProjectCells.ALL, load) == {1: 100}
    load.counts = {1: 100, 2: 50}
    load.gate.clear()
    # Stale: answered at once with the old counts, one refresh behind them for all callers.
    answers = [await cache.counts(ProjectCells.ALL, load) for _ in range(5)]
    assert answers == [{1: 100}] * 5
    assert len(cache._refreshing) == 1  # one refresh task, not one per stale answer
    for _ in range(3):
        await asyncio.sleep(0)
    assert load.calls == 2
    load.gate.set()
    for _ in range(3):
        await asyncio.sleep(0)
    assert cache._entries[ProjectCells.ALL][1] == {1: 100, 2: 50}


async def test_a_failed_refresh_keeps_the_stale_counts() -> None:
    cache = ProjectCells(ttl_s=0)
    assert await cache.counts(ProjectCells.ALL, Loads({1: 7})) == {1: 7}

    async def broken() -> dict[int, int]:
        raise ConnectionError("api database gone")

    assert await cache.counts(ProjectCells.ALL, broken) == {1: 7}
    for _ in range(3):
        await asyncio.sleep(0)
    assert await cache.counts(ProjectCells.ALL, broken) == {1: 7}


async def test_close_cancels_a_running_refresh() -> None:
    cache = ProjectCells(ttl_s=0)
    load = Loads({1: 1})
    assert await cache.counts(ProjectCells.ALL, load) == {1: 1}
    load.gate.clear()  # the refresh will hang
    assert await cache.counts(ProjectCells.ALL, load) == {1: 1}
    await asyncio.sleep(0)
    assert len(cache._refreshing) == 1
    await cache.close()
    assert not cache._refreshing


def test_head_shares_blend_the_last_first_page_with_the_counts() -> None:
    shares = HeadShares()
    counted = {1: 0.5, 2: 0.5}
    assert shares.blend("walk", counted, [1, 2]) == counted  # nothing learned yet
    shares.learn("walk", {1: 80, 2: 20})
    blended = shares.blend("walk", counted, [1, 2])
    assert blended is not None
    assert abs(blended[1] - (0.75 * 0.8 + 0.25 * 0.5)) < 1e-9
    assert abs(blended[2] - (0.75 * 0.2 + 0.25 * 0.5)) < 1e-9
    # Without counts (equal shares), the prior is 1/k; a cell absent from the page gets
    # only the prior's part.
    shares.learn("other", {1: 10})
    assert shares.blend("other", None, [1, 2]) == {1: 0.75 + 0.125, 2: 0.125}
    assert shares.blend("unknown", None, [1, 2]) is None


def test_head_shares_are_bounded() -> None:
    shares = HeadShares(max_entries=3)
    for n in range(10):
        shares.learn(f"walk-{n}", {1: 1})
    assert len(shares._entries) == 3
    assert shares.blend("walk-0", None, [1]) is None  # the oldest went first
    shares.learn("empty", {})  # a page with no rows teaches nothing
    assert shares.blend("empty", None, [1]) is None
