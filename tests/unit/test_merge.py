"""Tests for cells.merge: a simulated driver feeds random batches; the output must be the
oracle-sorted union of the cells' rows, whatever the batch sizes, page limits and drops.

The oracle compares rows with explicit per-key rules through ``functools.cmp_to_key`` and
never calls :func:`cells.order.key_function` (the merge itself needs those key tuples).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cells.merge import Merge
from cells.order import Direction, Row, SortSpec, SqlValue, key_function
from tests.support.sort_oracle import KIND_OF, oracle_cmp, oracle_sorted

KINDS: dict[str, str] = {
    name: KIND_OF[name]
    for name in ("display_name", "power_state", "locked", "launched_at", "created_at", "uuid")
}
# Small pools: ties inside and across cells on every non-unique key, and many NULLs.
POOLS: dict[str, list[SqlValue]] = {
    "display_name": [None, None, "", "a", "ab", "abc", "B", "é", "😀"],
    "power_state": [None, None, 0, 1, -1],
    "locked": [None, True, False],
    "launched_at": [None, None, dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 0, 1)],
    "created_at": [dt.datetime(2023, 5, 1), dt.datetime(2024, 1, 1), dt.datetime(1999, 1, 1)],
}


# --- the oracle -----------------------------------------------------------------------------


# --- a driver standing in for cells.listing --------------------------------------------------


@dataclass
class Driver:
    """Feeds cells from in-memory "databases" in random batch sizes, like the lister."""

    streams: list[list[Row]]
    key_of: Callable[[Row], tuple[object, ...]]
    rnd: random.Random
    merge: Merge = field(init=False)
    pos: list[int] = field(init=False)
    exhausted: set[int] = field(default_factory=set)
    dropped: set[int] = field(default_factory=set)
    emitted: list[Row] = field(default_factory=list)
    queries: int = 0

    def __post_init__(self) -> None:
        self.merge = Merge(len(self.streams))
        self.pos = [0] * len(self.streams)

    def feed(self, cell: int) -> None:
        assert cell not in self.exhausted
        assert cell not in self.dropped
        n = self.rnd.randint(1, 12)
        chunk = self.streams[cell][self.pos[cell] : self.pos[cell] + n]
        self.pos[cell] += len(chunk)
        self.queries += 1
        done = len(chunk) < n  # a short batch ends the cell: no extra empty query
        if done:
            self.exhausted.add(cell)
        self.merge.feed(cell, [(self.key_of(row), row) for row in chunk], exhausted=done)

    def drop(self, cell: int) -> None:
        self.merge.drop(cell)
        self.dropped.add(cell)
        assert cell not in self.merge.starved()

    def live(self) -> list[int]:
        return [i for i in range(len(self.streams)) if i not in self.dropped]

    def remaining(self) -> set[object]:
        """Uuids of rows of live cells not emitted yet (buffered or still "in the DB")."""
        seen = {row["uuid"] for row in self.emitted}
        return {
            row["uuid"] for i in self.live() for row in self.streams[i] if row["uuid"] not in seen
        }

    def take_checked(self, n: int) -> tuple[list[Row], int | None]:
        """``take`` plus the invariant: nothing is emitted while a live cell is starved."""
        before = self.merge.starved()
        taken = self.merge.take(n)
        rows = [row for _, row in taken.rows]
        assert len(rows) <= n
        self.emitted.extend(rows)
        if before:
            assert rows == []
            assert taken.refill == before[0]
        else:
            # It stops the moment a live cell drains; that cell is the only starved one.
            expected = [] if taken.refill is None else [taken.refill]
            assert self.merge.starved() == expected
        for i in self.merge.starved():
            assert i not in self.dropped
            assert i not in self.exhausted
        if self.merge.starved():
            assert self.merge.has_more  # a starved cell may still hold rows
        if not self.merge.has_more:
            assert not self.remaining()
        return rows, taken.refill

    def start(self, drop_probability: float) -> None:
        """First batches in random order, trying to take between them (it must refuse)."""
        order = list(range(len(self.streams)))
        self.rnd.shuffle(order)
        for cell in order:
            rows, _ = self.take_checked(self.rnd.randint(1, 5))
            assert rows == []
            if self.rnd.random() < drop_probability:
                self.drop(cell)  # the first batch failed
            else:
                self.feed(cell)

    def page(self, limit: int) -> list[Row]:
        out: list[Row] = []
        while len(out) < limit:
            rows, refill = self.take_checked(limit - len(out))
            out.extend(rows)
            starved = self.merge.starved()
            if refill is None and not starved:
                if len(out) < limit:
                    assert not self.merge.has_more
                    break
                continue
            for cell in dict.fromkeys([*([] if refill is None else [refill]), *starved]):
                if cell in self.merge.starved():
                    self.feed(cell)
            # Sometimes fetch ahead for a cell that does not need it yet.
            ahead = [i for i in self.live() if i not in self.exhausted]
            if ahead and self.rnd.random() < 0.2:
                self.feed(self.rnd.choice(ahead))
        # As the lister does: settle starved cells so has_more is exact.
        for cell in self.merge.starved():
            self.feed(cell)
        assert self.merge.starved() == []
        return out

    def run(self, drop_probability: float) -> None:
        self.start(drop_probability)
        while True:
            limit = self.rnd.randint(1, 20)
            page = self.page(limit)
            remaining = self.remaining()
            assert self.merge.has_more is bool(remaining)
            if len(page) < limit:
                assert not remaining
            live = self.live()
            if live and self.rnd.random() < drop_probability:
                self.drop(self.rnd.choice(live))
                assert self.merge.has_more is bool(self.remaining())
            if not self.merge.has_more:
                assert not self.remaining()
                break


# --- strategies -----------------------------------------------------------------------------

COLUMNS = sorted(POOLS)
sort_pairs = st.lists(
    st.tuples(st.sampled_from([*COLUMNS, "uuid"]), st.sampled_from(list(Direction))),
    min_size=1,
    max_size=4,
)


@st.composite
def cell_rows(draw: st.DrawFn) -> list[list[Row]]:
    """1–8 cells of 0–60 rows each (often empty), with globally unique uuids."""
    k = draw(st.integers(1, 8))
    sizes = draw(st.lists(st.one_of(st.just(0), st.integers(0, 60)), min_size=k, max_size=k))
    rnd = draw(st.randoms(use_true_random=True))
    # Unique by construction (an odd multiplier is a bijection mod 2**128), random in order.
    ids = list(range(1, sum(sizes) + 1))
    rnd.shuffle(ids)
    uuids = [str(uuid.UUID(int=(i * 0x9E3779B97F4A7C15F39CC0605CEDC835) % 2**128)) for i in ids]
    cells: list[list[Row]] = []
    for size in sizes:
        rows: list[Row] = []
        for _ in range(size):
            row: dict[str, SqlValue] = {name: rnd.choice(POOLS[name]) for name in COLUMNS}
            row["uuid"] = uuids.pop()
            rows.append(row)
        cells.append(rows)
    return cells


def uuids_of(rows: Sequence[Mapping[str, SqlValue]]) -> list[SqlValue]:
    return [row["uuid"] for row in rows]


# --- tests ----------------------------------------------------------------------------------

SETTINGS = settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(cells=cell_rows(), pairs=sort_pairs, rnd=st.randoms(use_true_random=True))
def test_pages_concatenate_to_the_oracle_order(
    cells: list[list[Row]], pairs: list[tuple[str, Direction]], rnd: random.Random
) -> None:
    streams = [oracle_sorted(rows, pairs) for rows in cells]
    driver = Driver(streams, key_function(SortSpec.build(pairs)), rnd)
    driver.run(drop_probability=0.0)
    got = uuids_of(driver.emitted)
    assert len(set(got)) == len(got)  # no duplicates
    assert got == uuids_of(oracle_sorted([r for rows in cells for r in rows], pairs))  # no gaps
    assert not driver.merge.has_more


@SETTINGS
@given(cells=cell_rows(), pairs=sort_pairs, rnd=st.randoms(use_true_random=True))
def test_dropped_cells_lose_only_their_unemitted_rows(
    cells: list[list[Row]], pairs: list[tuple[str, Direction]], rnd: random.Random
) -> None:
    streams = [oracle_sorted(rows, pairs) for rows in cells]
    driver = Driver(streams, key_function(SortSpec.build(pairs)), rnd)
    driver.run(drop_probability=0.25)
    got = uuids_of(driver.emitted)
    assert len(set(got)) == len(got)
    emitted = set(got)
    # Everything of the live cells, plus what dropped cells gave before they were dropped.
    expected = [
        row
        for i, rows in enumerate(streams)
        for row in rows
        if i not in driver.dropped or row["uuid"] in emitted
    ]
    assert got == uuids_of(oracle_sorted(expected, pairs))


@SETTINGS
@given(
    cells=cell_rows(),
    pairs=st.lists(
        st.tuples(st.sampled_from(COLUMNS), st.sampled_from(list(Direction))),
        min_size=1,
        max_size=2,
    ),
    rnd=st.randoms(use_true_random=True),
)
def test_exact_ties_across_cells_keep_each_cells_order(
    cells: list[list[Row]], pairs: list[tuple[str, Direction]], rnd: random.Random
) -> None:
    # A spec without the unique uuid: whole key tuples tie across cells.
    spec = SortSpec(tuple(key for key in SortSpec.build(pairs).keys if key.name != "uuid"))
    cmp = oracle_cmp(pairs, uuid_last=False)
    streams = [sorted(rows, key=functools.cmp_to_key(cmp)) for rows in cells]
    driver = Driver(streams, key_function(spec), rnd)
    driver.run(drop_probability=0.0)
    got = driver.emitted
    assert sorted(uuids_of(got), key=str) == sorted(
        uuids_of([r for rows in cells for r in rows]), key=str
    )
    for a, b in itertools.pairwise(got):
        assert cmp(a, b) <= 0
    position = {row["uuid"]: i for i, row in enumerate(got)}
    for rows in streams:
        assert [position[row["uuid"]] for row in rows] == sorted(
            position[row["uuid"]] for row in rows
        )


def test_nothing_is_emitted_before_every_cell_answered() -> None:
    key_of = key_function(SortSpec.build([("created_at", Direction.DESC)]))
    row: Row = {"uuid": "a", "created_at": dt.datetime(2024, 1, 1)}
    merge = Merge(2)
    assert merge.starved() == [0, 1]
    merge.feed(0, [(key_of(row), row)], exhausted=True)
    taken = merge.take(5)
    assert taken.rows == []
    assert taken.refill == 1
    assert merge.has_more
    merge.feed(1, [], exhausted=True)
    assert [r for _, r in merge.take(5).rows] == [row]
    assert not merge.has_more


def test_a_drained_live_cell_stops_the_merge_until_refilled() -> None:
    key_of = key_function(SortSpec.build([("power_state", Direction.ASC)]))
    rows: list[Row] = [{"uuid": str(i), "power_state": i} for i in range(4)]
    merge = Merge(2)
    merge.feed(0, [(key_of(rows[0]), rows[0])], exhausted=False)
    merge.feed(1, [(key_of(r), r) for r in (rows[1], rows[3])], exhausted=True)
    taken = merge.take(10)
    assert [r for _, r in taken.rows] == [rows[0]]
    assert taken.refill == 0
    assert merge.starved() == [0]
    merge.feed(0, [(key_of(rows[2]), rows[2])], exhausted=True)
    assert [r for _, r in merge.take(10).rows] == rows[1:]
    assert not merge.has_more


def test_drop_forgets_buffered_rows() -> None:
    key_of = key_function(SortSpec.build([("power_state", Direction.ASC)]))
    rows: list[Row] = [{"uuid": str(i), "power_state": i} for i in range(4)]
    merge = Merge(2)
    merge.feed(0, [(key_of(r), r) for r in rows[:2]], exhausted=False)
    merge.feed(1, [(key_of(r), r) for r in rows[2:]], exhausted=True)
    merge.drop(0)
    assert merge.starved() == []
    assert [r for _, r in merge.take(10).rows] == rows[2:]
    assert not merge.has_more


def test_an_added_cell_must_be_fed_before_anything_more_is_taken() -> None:
    key_of = key_function(SortSpec.build([("power_state", Direction.ASC)]))
    rows: list[Row] = [{"uuid": str(i), "power_state": i} for i in range(4)]
    merge = Merge(1)
    merge.feed(0, [(key_of(r), r) for r in (rows[0], rows[2])], exhausted=True)
    assert [r for _, r in merge.take(1).rows] == [rows[0]]
    added = merge.add_cell()
    assert added == 1
    assert merge.starved() == [added]
    taken = merge.take(10)
    assert taken.rows == []
    assert taken.refill == added
    merge.feed(added, [(key_of(r), r) for r in (rows[1], rows[3])], exhausted=True)
    assert [r for _, r in merge.take(10).rows] == rows[1:]
    assert not merge.has_more
