"""The cross-cell listing: concurrent keyset batches per cell, merged in global order.

Algorithm (DESIGN §4.6–4.7):

1. Every cell gets a first batch of ``ceil((limit+1)/k) + slack`` rows after the start
   position, all issued concurrently.
2. The pure :class:`~cells.merge.Merge` emits rows until a cell that is not exhausted drains;
   only that cell is refilled (its batch doubling, never more than the page still needs),
   and a batch shorter than asked marks it exhausted without an extra empty query.
3. The merge stops at ``limit`` rows, then makes sure it can tell whether a ``limit + 1``-th
   row exists, which decides the next link exactly.

A cell that fails or times out is dropped from this page and reported in
:attr:`ListResult.unavailable`; what to do about it (partial 200, 503) is the caller's call.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncEngine

from cells.breaker import Breaker
from cells.fanout import CellFailed, CellOutcome, CellRows, CellSession, CellTimedOut
from cells.filters import InstanceFilters
from cells.merge import CellBuffer, Keyed, Merge
from cells.order import Row, SortSpec, SqlValue, key_function
from cells.plan import Position, QueryPlan, Statement
from cells.registry import Cell
from cells.stubs import stub_statement

__all__ = [
    "CellResume",
    "CellStats",
    "CellTarget",
    "ListQuery",
    "ListResult",
    "StubSource",
    "first_batch_size",
    "list_instances",
    "share_batch_size",
]


@dataclass(frozen=True, slots=True)
class CellTarget:
    """A cell to ask, with its engine, per-call deadline and circuit breaker."""

    cell: Cell
    engine: AsyncEngine
    timeout_s: float
    breaker: Breaker = field(default_factory=Breaker)


@dataclass(frozen=True, slots=True)
class StubSource:
    """Where down-cell stubs come from: the API database, within a project scope."""

    target: CellTarget
    project_id: str | None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One page request, already validated and scoped."""

    spec: SortSpec
    filters: InstanceFilters
    limit: int
    after: tuple[SqlValue, ...] | None = None
    columns: tuple[str, ...] | None = None  # None: every column (detail view)


@dataclass(frozen=True, slots=True)
class CellResume:
    """Where one cell's cursor stood after a page: its unreturned rows, in order, and the
    position of the last row fetched (the next query starts after it)."""

    position: tuple[SqlValue, ...] | None
    exhausted: bool
    rows: list[Row]


@dataclass(slots=True)
class CellStats:
    """What one cell cost this request."""

    cell: Cell
    queries: int = 0
    rows_fetched: int = 0
    elapsed_ms: float = 0.0
    outcome: str = "ok"


@dataclass(slots=True)
class ListResult:
    """A page: rows in order, whether more exist, and which cells could not answer."""

    rows: list[Row]
    has_more: bool
    unavailable: list[Cell] = field(default_factory=list)
    stats: list[CellStats] = field(default_factory=list)
    # Per cell id, the cursor after this page (only when every cell answered).
    frontier: dict[int, CellResume] | None = None
    # Instance uuid -> id of the cell that returned it (not for stubs): where the page's
    # detail data lives (cells.details).
    cell_of: dict[str, int] = field(default_factory=dict)


def first_batch_size(limit: int, k: int) -> int:
    """``ceil((limit+1)/k)`` plus a slack of ``2·sqrt(limit/k)``, at most ``limit + 1``.

    Too small a first batch forces a sequential refill on most pages; too large reads rows
    no page needs (perf notes).
    """
    want = limit + 1
    if k <= 1:
        return want
    share = math.ceil(want / k)
    return min(want, share + math.ceil(2 * math.sqrt(limit / k)))


def share_batch_size(limit: int, share: float) -> int:
    """A first batch for a cell expected to hold ``share`` of the page's rows: its share of
    ``limit + 1`` plus a slack of about two standard deviations, at most ``limit + 1``.

    With equal shares this is :func:`first_batch_size`; with skewed cells the big ones stop
    refilling on every first page and the small ones stop reading rows no page needs. An
    estimate of 0 still asks for one row: shares come from (cached) mapping counts.
    """
    want = limit + 1
    expected = want * max(0.0, min(1.0, share))
    return max(1, min(want, math.ceil(expected + 2 * math.sqrt(expected))))


@dataclass(slots=True)
class _Cursor:
    target: CellTarget
    session: CellSession
    position: Position
    statement: Statement
    breaker: Breaker | None
    batch: int = 0
    plan: QueryPlan | None = None

    async def fetch(self, n: int) -> CellOutcome:
        session = self.session
        if self.plan is not None and session.asyncpg:
            raw = self.plan.raw(self.position, n, session.engine.dialect)
            return await session.fetch(None, n, raw)
        return await session.fetch(self.statement(self.position, n), n)


def _resume_of(
    spec: SortSpec,
    cursor: _Cursor,
    buffer: CellBuffer,
    keep: int,
    page_end: tuple[SqlValue, ...],
) -> CellResume:
    rows = [row for _, row in buffer.rows]
    if len(rows) <= keep:
        return CellResume(cursor.position, buffer.exhausted, rows)
    # Too many to keep: forget the tail and move the cursor back to the last kept row (or,
    # keeping none, to the page's last row: every buffered row sorts after it).
    kept = rows[:keep]
    return CellResume(spec.position_of(kept[-1]) if kept else page_end, False, kept)


async def list_instances(
    targets: Sequence[CellTarget],
    query: ListQuery,
    resume: Mapping[int, CellResume] | None = None,
    keep_rows: int = 0,
    stubs: StubSource | None = None,
    shares: Mapping[int, float] | None = None,
) -> ListResult:
    """Fetch one page across ``targets``; see the module docstring.

    With ``resume`` (per cell id, from the previous page's :attr:`ListResult.frontier`),
    buffered rows are merged first and only cells whose buffers are empty are queried.
    ``keep_rows`` bounds the rows per cell kept in the returned frontier. With ``stubs``,
    each cell that fails is replaced by its instances' stubs from the mappings
    (:mod:`cells.stubs`), merged in order. ``shares`` (per cell id, summing to about 1)
    size each cell's first batch by the part of the rows it is expected to hold.
    """
    result = ListResult(rows=[], has_more=False, stats=[CellStats(t.cell) for t in targets])
    if query.limit <= 0 or not targets or query.filters.matches_nothing:
        return result
    key_of = key_function(query.spec)
    plan = QueryPlan(query.spec, query.filters, query.columns)
    cursors = [
        _Cursor(
            t,
            CellSession(t.cell, t.engine, t.timeout_s),
            query.after,
            plan.select,
            t.breaker,
            plan=plan,
        )
        for t in targets
    ]
    merge = Merge(len(cursors))
    first = first_batch_size(query.limit, len(cursors))
    firsts = [
        share_batch_size(query.limit, shares.get(t.cell.id, 0.0)) if shares else first
        for t in targets
    ]

    def add_stubs(failed: Cell, position: Position) -> None:
        # ``position`` is the failed cell's cursor: every row of that cell up to it has been
        # emitted (on this page or an earlier one; a cell is only queried once its buffer
        # is empty), none after it. Not ``query.after``: a page resumed from a cached
        # frontier has no ``after``, and stubs from the top would repeat earlier pages.
        assert stubs is not None
        project, spec = stubs.project_id, query.spec

        def build_stubs(position: Position, n: int) -> Select[tuple[object, ...]]:
            return stub_statement(spec, failed.id, project, position, n)

        t = stubs.target
        session = CellSession(t.cell, t.engine, t.timeout_s)
        cursors.append(_Cursor(t, session, position, build_stubs, None, first // 2))
        firsts.append(first)
        result.stats.append(CellStats(Cell(t.cell.id, t.cell.uuid, f"stubs:{failed.label}", "")))
        merge.add_cell()

    async def fetch(i: int, n: int) -> None:
        cursor = cursors[i]
        cursor.batch = n
        breaker = cursor.breaker
        outcome: CellOutcome
        if breaker is not None and not breaker.allow():
            outcome = CellFailed("circuit breaker open", 0.0)
        else:
            outcome = await cursor.fetch(n)
            if breaker is not None:
                if isinstance(outcome, CellRows):
                    breaker.record_success()
                else:
                    breaker.record_failure(timed_out=isinstance(outcome, CellTimedOut))
        stats = result.stats[i]
        stats.elapsed_ms += outcome.elapsed_ms
        match outcome:
            case CellRows(rows=rows, exhausted=exhausted):
                keyed: list[Keyed] = [(key_of(row), row) for row in rows]
                if i < len(targets):
                    result.cell_of.update((str(row["uuid"]), cursor.target.cell.id) for row in rows)
                if rows:
                    cursor.position = query.spec.position_of(rows[-1])
                merge.feed(i, keyed, exhausted=exhausted)
            case CellTimedOut():
                stats.outcome = "timeout"
            case CellFailed(error=error):
                stats.outcome = "skipped" if error == "circuit breaker open" else "error"
        if not isinstance(outcome, CellRows):
            merge.drop(i)
            if i < len(targets):
                result.unavailable.append(cursor.target.cell)
                if stubs is not None:
                    add_stubs(cursor.target.cell, cursor.position)

    if resume is not None:
        for i, cursor in enumerate(cursors):
            saved = resume[cursor.target.cell.id]
            result.cell_of.update((str(row["uuid"]), cursor.target.cell.id) for row in saved.rows)
            cursor.position = saved.position
            cursor.batch = firsts[i] // 2
            merge.feed(i, [(key_of(row), row) for row in saved.rows], exhausted=saved.exhausted)
    try:
        await asyncio.gather(*(fetch(i, firsts[i]) for i in merge.starved()))
        seen: set[object] = set()
        out = result.rows
        while True:
            taken = merge.take(query.limit - len(out))
            for _, row in taken.rows:
                uuid = row["uuid"]
                if uuid not in seen:  # one instance twice: a cross-cell resize in flight
                    seen.add(uuid)
                    out.append(row)
            starved = merge.starved()
            if not starved:
                if len(out) < query.limit and merge.has_more:
                    continue
                break
            # The batch doubles (from at least an equal share, in case the cell's share
            # was underestimated), bounded by what the page still needs -- but not below its
            # first batch when the page needs little: that surplus is the next page's head
            # start (kept in the frontier) and saves a round trip per refill.
            need = query.limit + 1 - len(out)
            await asyncio.gather(
                *(
                    fetch(i, min(max(2 * cursors[i].batch, first), max(need, firsts[i])))
                    for i in starved
                )
            )
        result.has_more = merge.has_more
        if out and not result.unavailable:
            page_end = query.spec.position_of(out[-1])
            result.frontier = {
                c.target.cell.id: _resume_of(query.spec, c, merge.buffers[i], keep_rows, page_end)
                for i, c in enumerate(cursors[: len(targets)])
            }
    finally:
        for i, cursor in enumerate(cursors):
            result.stats[i].queries = cursor.session.queries
            result.stats[i].rows_fetched = cursor.session.rows_fetched
        await asyncio.gather(*(c.session.close() for c in cursors), return_exceptions=True)
    return result
