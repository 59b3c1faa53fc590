"""The chaos run's oracle, and the checks of each walk against it.

The oracle reads every instance straight from each cell's PostgreSQL server (not through its
delay proxy, not through the gateway) and the mappings from the API database, before the
faults start and again after (the run writes nothing, so both must agree). It knows one
order, the default one the walkers ask for: ``created_at`` descending, ``uuid`` ascending,
NULL lowest; live rows only (``deleted = 0``, not ``soft-delete``). The full query language
has its own independent oracle in ``tests/support/oracle.py`` (scripts never import
tests).

:func:`check_walk` compares a walk's pages with the oracle's listing of the walk's scope.
It is :func:`check_history_walk` with every row live for the whole run; a run with writes
(:mod:`cgbench.chaoschurn`) builds a :class:`History` in which rows change. Each page
answers the rows after the previous page's last row up to its own last row (the
last page: up to the end); a row of that range missing from the page is *explained* when
the page named its cell in ``X-Cells-Unavailable``, else it is a *gap*. At 2.69+ a named
cell's rows must come back as stubs instead, each in its place (``stub_missing``), and a
stub must belong to a named cell (``stub_unnamed``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import asyncpg

__all__ = [
    "History",
    "Oracle",
    "Page",
    "Row",
    "State",
    "WalkCheck",
    "check_history_walk",
    "check_walk",
    "in_listing_order",
    "read_instances",
    "read_oracle",
]

_LOWEST = dt.datetime.min
State = Literal["stable", "changed", "gone"]


@dataclass(frozen=True)
class Row:
    uuid: str
    project_id: str | None
    created_at: dt.datetime | None
    cell: str


@dataclass(frozen=True)
class Page:
    """One 200 page of a walk: its rows and stubs in order, and the cells it named."""

    t_s: float
    ids: tuple[str, ...]  # rows and stubs, in the order served
    stubs: frozenset[str]
    unavailable: frozenset[str]
    last: bool
    with_stubs: bool  # microversion 2.69+: a named cell's rows come back as stubs


@dataclass(frozen=True)
class WalkCheck:
    """What a walk got wrong (every count's goal is 0 but ``explained``, the rows of
    named cells, and ``stub_extra``, stubs of instances the listing does not show)."""

    rows: int
    expected: int
    duplicates: int
    unknown: int  # rows the listing must not show (another project's, deleted)
    out_of_order: int
    gaps: int  # rows missing from a page that did not name their cell
    explained: int  # rows missing from a page that named their cell
    stub_missing: int  # 2.69+: rows of a named cell neither listed nor stubbed
    stub_unnamed: int  # 2.69+: stubs of cells the page did not name
    stub_extra: int  # 2.69+: stubs of instances outside the listing
    partial_pages: int
    stale: int = 0  # with writes: rows listed although deleted for the whole walk

    @property
    def complete(self) -> bool:
        return self.rows == self.expected and not (self.duplicates or self.unknown)


@dataclass(frozen=True)
class Oracle:
    """Every live instance of every cell in the default order; where each uuid lives."""

    rows: tuple[Row, ...]
    cell_of: Mapping[str, str]  # every instance's cell, deleted ones too
    fingerprint: tuple[int, int]  # (live rows, all rows): equal before and after a run

    def listing(self, project: str | None) -> list[str]:
        """The uuids ``project``'s listing shows (None: all projects), in order."""
        return [r.uuid for r in self.rows if project is None or r.project_id == project]


def in_listing_order(rows: list[Row]) -> tuple[Row, ...]:
    """``rows`` (sorted in place) in the walkers' order: newest first, then by uuid."""
    rows.sort(key=lambda r: r.uuid)  # the tiebreak, ascending
    rows.sort(key=lambda r: r.created_at or _LOWEST, reverse=True)  # stable: ties keep uuid
    return tuple(rows)


async def read_instances(cells: Mapping[str, str]) -> list[tuple[Row, bool]]:
    """Every instance of ``cells`` (name → direct PostgreSQL URL), deleted ones too, with
    whether it is live (``deleted = 0``, not ``soft-delete``)."""
    out: list[tuple[Row, bool]] = []
    for name, url in cells.items():
        conn = await asyncpg.connect(url, timeout=30)
        try:
            records = await conn.fetch(
                "SELECT uuid, project_id, created_at, deleted, vm_state FROM instances"
            )
        finally:
            await conn.close()
        for r in records:
            live = r["deleted"] == 0 and r["vm_state"] != "soft-delete"
            out.append((Row(r["uuid"], r["project_id"], r["created_at"], name), live))
    return out


async def read_oracle(cells: Mapping[str, str]) -> Oracle:
    """Read the instances of ``cells`` (name → direct PostgreSQL URL)."""
    rows = await read_instances(cells)
    live = [row for row, is_live in rows if is_live]
    cell_of = {row.uuid: row.cell for row, _ in rows}
    return Oracle(in_listing_order(live), cell_of, (len(live), len(cell_of)))


@dataclass(frozen=True)
class History:
    """Every instance live at some time in the run, in listing order, and when each changed
    (built by :func:`cgbench.chaoschurn.history`; without writes, :meth:`fixed`)."""

    rows: tuple[Row, ...]
    live_at_start: frozenset[str]
    changes: Mapping[str, tuple[tuple[float, float], ...]]  # (sent, answered or inf)
    cell_of: Mapping[str, str]  # every uuid written or read, the orphans' intended cells too

    @classmethod
    def fixed(cls, oracle: Oracle) -> History:
        """A run without writes: the oracle's live rows, each live throughout."""
        return cls(oracle.rows, frozenset(r.uuid for r in oracle.rows), {}, oracle.cell_of)

    def state(self, uuid: str, start_s: float, end_s: float) -> State:
        """``uuid`` over the walk ``[start_s, end_s]``: stable, changed or gone throughout."""
        windows = self.changes.get(uuid, ())
        if any(a <= end_s and b >= start_s for a, b in windows):
            return "changed"
        flips = sum(1 for _, b in windows if b < start_s)
        live = (uuid in self.live_at_start) != (flips % 2 == 1)
        return "stable" if live else "gone"


def check_walk(oracle: Oracle, project: str | None, pages: Sequence[Page]) -> WalkCheck:
    """Check the 200 pages of one finished walk of ``project``'s listing (see above)."""
    return check_history_walk(History.fixed(oracle), project, pages, 0.0, 0.0, 0.0)


def check_history_walk(
    h: History,
    project: str | None,
    pages: Sequence[Page],
    start_s: float,
    end_s: float,
    slack_s: float,
) -> WalkCheck:
    """Check the 200 pages of one walk made from ``start_s`` to ``end_s``, whose window
    opens ``slack_s`` early: a row *stable* over it must appear once, in its place, or be
    explained by its page naming its cell; a *changed* one may appear, never twice; one
    *gone* throughout is *stale* when listed, and one never live is *unknown*."""
    scope = [r for r in h.rows if project is None or r.project_id == project]
    pos = {r.uuid: i for i, r in enumerate(scope)}
    state = {r.uuid: h.state(r.uuid, start_s - slack_s, end_s) for r in scope}
    served = [u for p in pages for u in p.ids]
    stubs = {u for p in pages for u in p.stubs}
    seen = set(served)
    last = -1
    out_of_order = gaps = explained = stub_missing = stub_unnamed = stub_extra = 0
    for page in pages:
        for u in page.stubs:
            stub_unnamed += h.cell_of.get(u) not in page.unavailable
            stub_extra += state.get(u, "gone") == "gone"
        known = [pos[u] for u in page.ids if u in pos]
        out_of_order += sum(1 for a, b in zip([last, *known], known, strict=False) if b <= a)
        end = len(scope) - 1 if page.last else max([last, *known])
        for i in range(last + 1, end + 1):
            u = scope[i].uuid
            if u in seen or state[u] != "stable":
                continue
            if scope[i].cell in page.unavailable:
                explained += 1
                stub_missing += page.with_stubs
            else:
                gaps += 1
        last = max(last, end)
    rows = [u for u in served if u not in stubs]
    return WalkCheck(
        rows=len(rows),
        expected=sum(1 for s in state.values() if s == "stable"),
        duplicates=sum(n - 1 for n in Counter(served).values() if n > 1),
        unknown=sum(1 for u in rows if u not in pos),
        out_of_order=out_of_order,
        gaps=gaps,
        explained=explained,
        stub_missing=stub_missing,
        stub_unnamed=stub_unnamed,
        stub_extra=stub_extra,
        partial_pages=sum(1 for p in pages if p.unavailable),
        stale=sum(1 for u in rows if state.get(u) == "gone"),
    )
