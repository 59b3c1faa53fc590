"""The chaos run's pure parts: the seeded schedule and the walk check against the oracle."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable

import pytest
from cgbench.chaoscheck import Oracle, Page, Row, check_walk
from cgbench.chaosplan import CELL_KINDS, FaultKind, make_schedule

CELLS = [f"cell{i}" for i in range(1, 9)]


def test_a_schedule_is_repeatable_and_keeps_its_promises() -> None:
    kinds = list(FaultKind)
    one = make_schedule(22, kinds, CELLS, 60, 700)
    assert one == make_schedule(22, kinds, CELLS, 60, 700)
    assert one != make_schedule(23, kinds, CELLS, 60, 700)
    assert {f.kind for f in one} == set(FaultKind)  # 640 s hold every kind
    for f in one:
        assert 60 <= f.start_s < f.end_s <= 700
        assert f.instant or 10 <= f.end_s - f.start_s <= 40
    for t in range(60, 700):
        active = [f for f in one if f.active(t)]
        cells = [c for f in active for c in f.cells]
        assert len(cells) == len(set(cells)), (t, active)  # one fault per cell at a time
        assert len(cells) <= 3
        shared = [x for f in active if f.kind not in CELL_KINDS for x in f.targets]
        assert len(shared) == len(set(shared))
    assert any(a.end_s > b.start_s for a, b in itertools.pairwise(one))  # overlaps


def test_a_schedule_needs_three_cells() -> None:
    with pytest.raises(ValueError, match="3 cells"):
        make_schedule(1, [FaultKind.CELL_STOP], CELLS[:2], 0, 100)


def _oracle() -> Oracle:
    t = dt.datetime(2026, 1, 1)
    rows = [
        Row(f"u{i:02d}", "p" if i % 2 else "q", t - dt.timedelta(minutes=i), f"cell{i % 3 + 1}")
        for i in range(12)
    ]
    return Oracle(tuple(rows), {r.uuid: r.cell for r in rows}, (12, 12))


def _page(
    ids: list[str],
    named: Iterable[str] = (),
    *,
    last: bool = False,
    stubs: Iterable[str] = (),
    v269: bool = False,
) -> Page:
    return Page(0.0, tuple(ids), frozenset(stubs), frozenset(named), last, v269)


def test_a_complete_walk_is_clean() -> None:
    o = _oracle()
    ids = o.listing(None)
    check = check_walk(o, None, [_page(ids[:5]), _page(ids[5:10]), _page(ids[10:], last=True)])
    assert check.complete
    assert (check.gaps, check.duplicates, check.out_of_order, check.explained) == (0, 0, 0, 0)


def test_missing_rows_are_gaps_unless_the_page_named_their_cell() -> None:
    o = _oracle()
    ids = o.listing(None)
    no_cell1 = [u for u in ids if o.cell_of[u] != "cell1"]
    named = check_walk(o, None, [_page(no_cell1, {"cell1"}, last=True)])
    assert (named.gaps, named.explained, named.partial_pages) == (0, 4, 1)
    silent = check_walk(o, None, [_page(no_cell1[:4]), _page(no_cell1[4:], last=True)])
    assert silent.gaps == 4
    assert not silent.complete
    wrong = check_walk(o, None, [_page(no_cell1, {"cell2"}, last=True)])
    assert wrong.gaps == 4


def test_duplicates_order_and_foreign_rows_are_counted() -> None:
    o = _oracle()
    ids = o.listing("p")
    check = check_walk(o, "p", [_page(ids[:3]), _page([ids[2], "u00", *ids[3:]], last=True)])
    assert check.duplicates == 1
    assert check.unknown == 1  # u00 belongs to project q
    assert check.out_of_order == 1


def test_269_partials_must_stub_exactly_the_named_cells_rows() -> None:
    o = _oracle()
    ids = o.listing(None)
    cell1 = {u for u in ids if o.cell_of[u] == "cell1"}
    good = check_walk(o, None, [_page(ids, {"cell1"}, last=True, stubs=cell1, v269=True)])
    assert (good.gaps, good.stub_missing, good.stub_unnamed, good.rows) == (0, 0, 0, 8)
    without = [u for u in ids if u not in cell1]
    missing = check_walk(o, None, [_page(without, {"cell1"}, last=True, v269=True)])
    assert missing.stub_missing == 4
    unnamed = check_walk(o, None, [_page(ids, {"cell2"}, last=True, stubs=cell1, v269=True)])
    assert unnamed.stub_unnamed == 4
