"""The lister as a driver over in-memory sources: pages equal the oracle, failures drop a
cell (or swap in its stubs) without losing order, and one raising call cancels the rest.

Sources answer from Python lists through the independent sort oracle (tests/support).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cells.faults import CellMisconfigured, InvalidQuery
from cells.listing import merge_sources
from cells.order import Direction, Row, SortSpec, SqlValue
from cells.registry import Cell
from cells.sources import Source
from cells.walk import CellCursor
from tests.support.memory import MemorySource, Trouble, cell
from tests.support.sort_oracle import oracle_cmp, oracle_sorted

T0 = dt.datetime(2024, 1, 1)
POOLS: dict[str, list[SqlValue]] = {
    "display_name": [None, "", "a", "ab", "B", "é", "😀"],
    "power_state": [None, 0, 1, 4],
    "locked": [None, True, False],
    "launched_at": [None, T0, T0 + dt.timedelta(microseconds=1)],
    "created_at": [T0, T0 + dt.timedelta(seconds=1), dt.datetime(1999, 1, 1)],
}
KEYS = sorted(POOLS)


@st.composite
def cells_rows(draw: st.DrawFn) -> list[list[Row]]:
    k = draw(st.integers(1, 5))
    out: list[list[Row]] = []
    serial = 0
    for _ in range(k):
        rows: list[Row] = []
        for _ in range(draw(st.integers(0, 25))):
            serial += 1
            row: dict[str, SqlValue] = {"uuid": f"u{serial:04d}"}
            for name, pool in POOLS.items():
                row[name] = draw(st.sampled_from(pool))
            rows.append(row)
        out.append(rows)
    return out


orders = st.lists(
    st.tuples(st.sampled_from(KEYS), st.sampled_from(list(Direction))),
    min_size=0,
    max_size=3,
    unique_by=lambda pair: pair[0],
)


def sources_for(
    data: list[list[Row]], pairs: list[tuple[str, Direction]], **trouble: dict[int, Trouble]
) -> list[MemorySource]:
    return [
        MemorySource(cell(i), rows, pairs, dict(trouble.get(f"cell{i}", {})))
        for i, rows in enumerate(data)
    ]


def expected(rows: list[Row], pairs: list[tuple[str, Direction]]) -> list[SqlValue]:
    return [row["uuid"] for row in oracle_sorted(rows, pairs)]


async def walk(
    data: list[list[Row]],
    pairs: list[tuple[str, Direction]],
    limit: int,
    *,
    resume: bool,
) -> tuple[list[SqlValue], int]:
    """Every page, as ``?marker=`` (position of the last row) or resumed from the frontier."""
    spec = SortSpec.build(pairs)
    got: list[SqlValue] = []
    after: tuple[SqlValue, ...] | None = None
    frontier: dict[int, CellCursor] | None = None
    pages = 0
    while True:
        sources = sources_for(data, pairs)
        result = await merge_sources(
            sources, spec, limit, after if frontier is None else None, frontier, keep_rows=50
        )
        pages += 1
        assert len(result.rows) <= limit
        assert result.unavailable == []
        assert all(s.closed for s in sources)
        got.extend(row["uuid"] for row in result.rows)
        if not result.has_more:
            return got, pages
        assert len(result.rows) == limit  # a next link only after a full page
        after = spec.position_of(result.rows[-1])
        if resume:
            assert result.frontier is not None
            frontier = result.frontier
        assert pages < 1000


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=cells_rows(), pairs=orders, limit=st.integers(1, 12), resume=st.booleans())
async def test_pages_concatenate_to_the_oracle_order(
    data: list[list[Row]], pairs: list[tuple[str, Direction]], limit: int, resume: bool
) -> None:
    everything = [row for rows in data for row in rows]
    got, pages = await walk(data, pairs, limit, resume=resume)
    assert got == expected(everything, pairs)  # exact order: no duplicate, no gap
    assert pages == max(1, math.ceil(len(everything) / limit))  # no trailing empty page


async def outage_walk(
    data: list[list[Row]],
    pairs: list[tuple[str, Direction]],
    limit: int,
    down: set[int],
    trouble: Trouble,
    *,
    resume: bool,
) -> list[tuple[list[SqlValue], list[str]]]:
    """Every page (its ids and the cells it named) of a walk while cell0 fails every call
    on the pages in ``down``: resumed from each page's frontier, or by marker alone."""
    spec = SortSpec.build(pairs)
    after: tuple[SqlValue, ...] | None = None
    frontier: dict[int, CellCursor] | None = None
    pages: list[tuple[list[SqlValue], list[str]]] = []
    while len(pages) < 200:
        failing = {n: trouble for n in range(100)} if len(pages) in down else {}
        sources = sources_for(data, pairs, cell0=failing)
        result = await merge_sources(
            sources, spec, limit, after if frontier is None else None, frontier, keep_rows=50
        )
        pages.append(([r["uuid"] for r in result.rows], [c.name for c in result.unavailable]))
        if not result.has_more or not result.rows:
            break
        after = spec.position_of(result.rows[-1])
        frontier = result.frontier if resume else None
    return pages


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=cells_rows(),
    pairs=orders,
    limit=st.integers(1, 8),
    down=st.sets(st.integers(0, 6), max_size=4),
    trouble=st.sampled_from(["error", "timeout", "skipped"]),
)
async def test_a_walk_resumed_through_an_outage_pages_as_markers_do(
    data: list[list[Row]],
    pairs: list[tuple[str, Direction]],
    limit: int,
    down: set[int],
    trouble: Trouble,
) -> None:
    # Partial pages save a frontier too (cell0 at the page's last row). Resumed from it or
    # by marker alone, a walk through cell0's outage never repeats or reorders a row, and
    # a row it skips is cell0's, on a page that named cell0; with no page down, the walk
    # is exactly the oracle's. (A resumed page may show more of cell0 than a marker's:
    # rows buffered before the outage.)
    everything = expected([r for rows in data for r in rows], pairs)
    cell0 = {r["uuid"] for r in data[0]}
    for resume in (True, False):
        pages = await outage_walk(data, pairs, limit, down, trouble, resume=resume)
        got = [u for ids, _ in pages for u in ids]
        assert [everything.index(u) for u in got] == sorted(everything.index(u) for u in got)
        assert len(got) == len(set(got))
        shown = 0  # oracle rows up to the end of the pages so far
        for ids, named in pages:
            if not ids:
                continue
            end = everything.index(ids[-1]) + 1
            skipped = set(everything[shown:end]) - set(ids)
            assert not skipped or (skipped <= cell0 and named == ["cell0"]), (resume, skipped)
            shown = end
        if not down & set(range(len(pages))):
            assert got == everything


@settings(max_examples=100, deadline=None)
@given(
    data=cells_rows(),
    pairs=orders,
    limit=st.integers(1, 12),
    failing_call=st.integers(0, 3),
    trouble=st.sampled_from(["error", "timeout", "slow", "skipped"]),
)
async def test_a_failing_cell_drops_out_and_the_rest_stays_in_order(
    data: list[list[Row]],
    pairs: list[tuple[str, Direction]],
    limit: int,
    failing_call: int,
    trouble: Trouble,
) -> None:
    spec = SortSpec.build(pairs)
    sources = sources_for(data, pairs, cell0={failing_call: trouble})
    result = await merge_sources(sources, spec, limit)
    live = [row for rows in data[1:] for row in rows]
    got = [row["uuid"] for row in result.rows]
    assert len(got) == len(set(got))
    if sources[0].queries > failing_call:  # the trouble happened on this page
        assert result.unavailable == [sources[0].cell]
        if got:  # the dead cell resumes where a marker would ask it: after the last row
            assert result.frontier is not None
            assert result.frontier[0] == CellCursor(spec.position_of(result.rows[-1]), False, [])
        assert result.stats[0].outcome == {"error": "error", "timeout": "timeout"}.get(
            trouble, trouble
        )
        assert result.slow == ([sources[0].cell] if trouble == "slow" else [])
        # Among live cells: exactly the oracle's prefix (the dead cell's rows emitted
        # before it failed may be interleaved, in order).
        live_got = [u for u in got if u not in {r["uuid"] for r in data[0]}]
        assert live_got == expected(live, pairs)[: len(live_got)]
        cmp = functools.cmp_to_key(oracle_cmp(pairs))
        assert [cmp(r) for r in result.rows] == sorted(cmp(r) for r in result.rows)
    else:
        assert result.unavailable == []
        everything = [row for rows in data for row in rows]
        assert got == expected(everything, pairs)[:limit]
    assert all(s.closed for s in sources)


@settings(max_examples=100, deadline=None)
@given(data=cells_rows(), limit=st.integers(1, 12), failing_call=st.integers(0, 2))
async def test_stubs_stand_in_for_a_down_cell_in_order(
    data: list[list[Row]], limit: int, failing_call: int
) -> None:
    pairs = [("created_at", Direction.DESC)]
    spec = SortSpec.build(pairs)
    stubbed: list[MemorySource] = []

    def stubs(failed: Cell) -> Source:
        stub = MemorySource(failed, data[failed.id], pairs)
        stubbed.append(stub)
        return stub

    everything = [row for rows in data for row in rows]
    got: list[SqlValue] = []
    after: tuple[SqlValue, ...] | None = None
    while True:
        sources = sources_for(data, pairs, cell0={failing_call: "timeout"})
        result = await merge_sources(sources, spec, limit, after, stubs=stubs)
        got.extend(row["uuid"] for row in result.rows)
        if sources[0].queries > failing_call:
            assert result.stubbed == [sources[0].cell]
        if not result.has_more:
            break
        after = spec.position_of(result.rows[-1])
    # Stubs page like the rows they stand for: the whole walk is the oracle's order.
    assert got == expected(everything, pairs)
    assert all(s.closed for s in stubbed)


async def _raising(first: Trouble, second: Trouble) -> type[BaseException]:
    pairs = [("created_at", Direction.DESC)]
    rows: list[Row] = [{"uuid": f"u{i}", "created_at": T0} for i in range(5)]
    sources = sources_for([rows, rows, rows], pairs, cell0={0: first}, cell1={0: second})
    with pytest.raises((InvalidQuery, CellMisconfigured)) as raised:
        async with asyncio.timeout(5):
            await merge_sources(sources, SortSpec.build(pairs), 10)
    for source in sources:
        assert source.closed
        if source.cancelled:  # cancelled before its connection went back
            assert source.closed_after_cancel
    return type(raised.value)


async def test_a_client_error_cancels_the_other_cells_before_closing_them() -> None:
    assert await _raising("invalid", "hang") is InvalidQuery


async def test_a_configuration_error_wins_over_a_client_error() -> None:
    assert await _raising("invalid", "config") is CellMisconfigured
    assert await _raising("config", "invalid") is CellMisconfigured


async def test_a_hanging_sibling_is_cancelled_not_awaited() -> None:
    pairs = [("created_at", Direction.DESC)]
    rows: list[Row] = [{"uuid": "u1", "created_at": T0}]
    sources = sources_for([rows, rows], pairs, cell0={0: "invalid"}, cell1={0: "hang"})
    with pytest.raises(InvalidQuery):
        async with asyncio.timeout(5):
            await merge_sources(sources, SortSpec.build(pairs), 10)
    assert sources[1].cancelled
    assert sources[1].closed_after_cancel


async def test_only_the_drained_cell_is_refilled() -> None:
    pairs = [("created_at", Direction.ASC)]
    base = dt.datetime(2024, 1, 1)
    # cell0 holds the 30 oldest rows, cell1 the 30 newest: an ascending page of 20 drains
    # cell0 repeatedly and never needs more than cell1's first batch.
    old = [{"uuid": f"a{i:02d}", "created_at": base + dt.timedelta(seconds=i)} for i in range(30)]
    new = [
        {"uuid": f"b{i:02d}", "created_at": base + dt.timedelta(days=1, seconds=i)}
        for i in range(30)
    ]
    sources = sources_for([old, new], pairs)  # type: ignore[list-item]  # plain dict rows where a Row (Mapping of SqlValue) is expected
    result = await merge_sources(sources, SortSpec.build(pairs), 20)
    assert [r["uuid"] for r in result.rows] == [f"a{i:02d}" for i in range(20)]
    assert sources[1].queries == 1
    assert sources[0].queries > 1
    assert sources[0].asked[1] >= 2 * sources[0].asked[0] or sum(sources[0].asked) >= 21
