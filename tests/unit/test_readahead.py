"""Read-ahead: what it asks each cell for (bounded by the next pages' needs and the
frontier's bound), that a walk resumed from read-ahead frontiers equals the oracle and
reads each row once, and the in-flight registry's bound and cancellation."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cells.listing import merge_sources
from cells.order import Direction, Row, SortSpec
from cells.readahead import read_ahead, read_ahead_sizes
from cells.walk import CellCursor
from gateway.readahead import ReadAheads
from tests.support.memory import MemorySource, cell
from tests.support.sort_oracle import oracle_sorted

PAIRS = [("created_at", Direction.DESC)]
T0 = dt.datetime(2024, 1, 1)


def _at(i: int) -> dt.datetime:
    return T0 + dt.timedelta(seconds=i)


SPEC = SortSpec.build(PAIRS)


def _rows(n: int) -> list[Row]:
    return [{"uuid": f"u{i:05d}", "created_at": _at(i)} for i in range(n)]  # type: ignore[misc]  # a dict literal as Row (a Mapping of SqlValue)


def test_sizes_skip_exhausted_and_covered_cells_and_respect_keep() -> None:
    frontier = {
        1: CellCursor((5,), True, []),  # exhausted: never asked
        2: CellCursor((5,), False, _rows(60)),  # covers its part of the next page
        3: CellCursor((5,), False, []),  # drained: always asked
        4: CellCursor((5,), False, _rows(3)),  # short of its part
    }
    shares = {1: 0.1, 2: 0.5, 3: 0.2, 4: 0.2}
    sizes = read_ahead_sizes(frontier, shares, limit=100, keep=30, pages=2)
    assert set(sizes) == {3, 4}
    assert sizes[3] == 30  # its two pages' part (~60) capped by keep
    assert sizes[4] == 30 - 3  # never past keep buffered rows
    unbounded = read_ahead_sizes(frontier, shares, limit=100, keep=10_000, pages=2)
    for cell_id, n in unbounded.items():
        expected = 2 * 101 * shares[cell_id]
        assert expected <= n + len(frontier[cell_id].rows) <= expected + 3 * expected**0.5 + 1


def test_a_cell_with_no_share_is_asked_for_one_row_when_drained() -> None:
    frontier = {1: CellCursor(None, False, []), 2: CellCursor(None, False, _rows(300))}
    assert read_ahead_sizes(frontier, {1: 0.0, 2: 1.0}, limit=100, keep=1000) == {1: 1}
    # Nothing at all to read: every cell exhausted.
    done = {1: CellCursor(None, True, []), 2: CellCursor(None, True, [])}
    assert read_ahead_sizes(done, None, limit=100, keep=1000) == {}


async def test_a_cell_that_fails_keeps_its_cursor() -> None:
    rows = _rows(10)
    ok = MemorySource(cell(1), rows, PAIRS)
    bad = MemorySource(cell(2), rows, PAIRS, {0: "error"})
    frontier = {1: CellCursor(None, False, []), 2: CellCursor(None, False, [])}
    refilled = await read_ahead({1: ok, 2: bad}, SPEC, frontier, {1: 4, 2: 4})
    assert refilled[2] == frontier[2]
    assert [r["uuid"] for r in refilled[1].rows] == [
        r["uuid"] for r in oracle_sorted(rows, PAIRS)[:4]
    ]
    assert refilled[1].position == SPEC.position_of(refilled[1].rows[-1])
    assert not refilled[1].exhausted


@st.composite
def layouts(draw: st.DrawFn) -> list[list[Row]]:
    sizes = draw(st.lists(st.integers(0, 60), min_size=1, max_size=5))
    serial = iter(range(10_000))
    return [
        [
            {"uuid": f"u{next(serial):05d}", "created_at": _at(draw(st.integers(0, 40)))}
            for _ in range(n)
        ]  # type: ignore[misc]  # a dict literal as Row (a Mapping of SqlValue)
        for n in sizes
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=layouts(), limit=st.integers(1, 15), extra=st.integers(0, 30))
async def test_a_walk_with_read_ahead_equals_the_oracle_and_reads_each_row_once(
    data: list[list[Row]], limit: int, extra: int
) -> None:
    """Every page resumed from the previous page's frontier refilled by a read-ahead: the
    rows in order, and over the whole walk no row read twice (rows read = rows returned),
    when the frontier may keep what a page's refill leaves (a smaller bound forgets rows
    and reads them again, read-ahead or not)."""
    keep = 2 * (limit + 1) + extra
    everything = [row for rows in data for row in rows]
    got: list[object] = []
    frontier: dict[int, CellCursor] | None = None
    read = 0
    for _ in range(1000):
        sources = [MemorySource(cell(i), rows, PAIRS) for i, rows in enumerate(data)]
        result = await merge_sources(sources, SPEC, limit, None, frontier, keep_rows=keep)
        read += sum(s.rows_fetched for s in sources)
        got.extend(row["uuid"] for row in result.rows)
        if not result.has_more:
            break
        assert result.frontier is not None
        ahead = {i: MemorySource(cell(i), rows, PAIRS) for i, rows in enumerate(data)}
        sizes = read_ahead_sizes(result.frontier, None, limit, keep)
        frontier = await read_ahead(ahead, SPEC, result.frontier, sizes)
        read += sum(s.rows_fetched for s in ahead.values())
    assert got == [row["uuid"] for row in oracle_sorted(everything, PAIRS)]
    assert read <= len(everything)  # each row read once at most, read-ahead included


async def _settle() -> None:
    """Let cancellations land and done-callbacks run (loop turns, no clock)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def _hang(started: asyncio.Event) -> dict[int, CellCursor] | None:
    started.set()
    await asyncio.Event().wait()
    return None


async def test_the_registry_is_bounded_and_cancels_its_oldest() -> None:
    outcomes: list[str] = []
    reads = ReadAheads(2, 60.0, outcomes.append)
    events = [asyncio.Event() for _ in range(3)]
    for i, event in enumerate(events):
        reads.start(f"k{i}", lambda e=event: _hang(e))  # type: ignore[misc]  # a lambda's default binds the loop variable
        await asyncio.sleep(0)
    assert reads.in_flight() == 2
    await _settle()
    assert outcomes.count("started") == 3
    assert outcomes.count("cancelled") == 1  # k0, the oldest
    assert await reads.claim("k0") is None  # gone: the page reads the saved frontier
    await reads.close()
    assert reads.in_flight() == 0
    assert outcomes.count("cancelled") == 3


async def test_a_page_awaits_its_read_ahead_and_takes_its_frontier() -> None:
    reads = ReadAheads(4, 60.0)
    release = asyncio.Event()
    refilled = {1: CellCursor(None, False, _rows(2))}

    async def run() -> dict[int, CellCursor] | None:
        await release.wait()
        return refilled

    reads.start("k", run)
    claim = asyncio.ensure_future(reads.claim("k"))
    await asyncio.sleep(0)
    assert not claim.done()  # still reading ahead: the page waits rather than read twice
    release.set()
    assert await claim is refilled
    assert reads.in_flight() == 0


async def test_a_page_asked_again_keeps_its_read_ahead_instead_of_restarting_it() -> None:
    outcomes: list[str] = []
    reads = ReadAheads(4, 60.0, outcomes.append)
    started = asyncio.Event()
    runs = 0

    async def run() -> dict[int, CellCursor] | None:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()
        return {1: CellCursor(None, False, _rows(2))}

    release = asyncio.Event()
    reads.start("next", run)
    await started.wait()
    reads.start("next", run)  # the same page answered again: same next key
    await _settle()
    assert reads.in_flight() == 1
    assert outcomes == ["started", "kept"]  # never cancelled mid-statement
    release.set()
    await _settle()
    reads.start("next", run)  # done and unclaimed: its frontier is kept too
    assert outcomes == ["started", "kept", "saved", "kept"]
    assert runs == 1
    assert await reads.claim("next") is not None
    reads.start("next", run)  # claimed: a later page may read ahead again
    await _settle()
    assert runs == 2


async def test_a_failed_read_ahead_is_a_miss_and_a_disabled_registry_starts_none() -> None:
    reads = ReadAheads(4, 60.0)

    async def boom() -> dict[int, CellCursor] | None:
        raise RuntimeError("cell gone")

    reads.start("k", boom)
    assert await reads.claim("k") is None
    off = ReadAheads(0)
    off.start("k", boom)
    assert off.in_flight() == 0


async def test_a_cancelled_page_does_not_cancel_the_read_ahead() -> None:
    reads = ReadAheads(4, 60.0)
    started = asyncio.Event()
    reads.start("k", lambda: _hang(started))
    await started.wait()
    claim = asyncio.ensure_future(reads.claim("k"))
    await asyncio.sleep(0)
    claim.cancel()
    with pytest.raises(asyncio.CancelledError):
        await claim
    assert reads.in_flight() == 1  # still there for the page asked next
    await reads.close()


async def test_a_finished_read_ahead_is_kept_for_its_page_within_a_row_bound() -> None:
    reads = ReadAheads(8, 60.0, max_ready_rows=5)
    small = {1: CellCursor(None, False, _rows(2))}
    other = {1: CellCursor(None, False, _rows(3))}
    big = {1: CellCursor(None, False, _rows(6))}

    async def give(frontier: dict[int, CellCursor]) -> dict[int, CellCursor] | None:
        return frontier

    reads.start("a", lambda: give(small))
    reads.start("b", lambda: give(other))
    reads.start("c", lambda: give(big))  # more rows than the bound: never kept
    await _settle()
    assert reads.in_flight() == 0
    assert await reads.claim("c") is None
    assert await reads.claim("a") is small  # finished, kept: no store read needed
    assert await reads.claim("a") is None  # taken once
    reads.start("d", lambda: give(small))  # 3 + 2 rows: at the bound, both kept
    await _settle()
    assert await reads.claim("b") is other
    reads.start("e", lambda: give(other))  # 2 + 3 fits; then f pushes out the oldest
    reads.start("f", lambda: give(small))
    await _settle()
    assert await reads.claim("d") is None  # the oldest went out first
    assert await reads.claim("f") is small


async def test_a_finished_read_ahead_older_than_fresh_s_is_neither_claimed_nor_kept() -> None:
    outcomes: list[str] = []
    # fresh_s leaves a loaded machine a second between start and the first claim.
    reads = ReadAheads(8, 60.0, outcomes.append, fresh_s=1.0)
    frontier = {1: CellCursor(None, False, _rows(2))}

    async def give() -> dict[int, CellCursor] | None:
        return frontier

    reads.start("a", give)
    reads.start("b", give)
    await _settle()
    assert await reads.claim("a") is frontier  # young enough
    await asyncio.sleep(1.1)
    assert await reads.claim("b") is None  # read too long ago: the page resolves afresh
    reads.start("b", give)  # asked again: read again, not kept
    await _settle()
    assert outcomes.count("started") == 3
    assert "kept" not in outcomes
