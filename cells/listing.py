"""The cross-cell listing: a driver over merge sources, concurrent keyset batches per
source, merged in global order.

Algorithm (DESIGN §4.6–4.7):

1. Every source gets a first batch of about its share of ``limit + 1`` rows after the start
   position, all issued concurrently in one task group (:func:`cells.fanout.run_all`: when
   one call raises, the others are cancelled and drop their connections).
2. The pure :class:`~cells.merge.Merge` emits rows until a source that is not exhausted
   drains; only that source is refilled (its batch doubling, never more than the page
   still needs), and a batch shorter than asked marks it exhausted without an extra query.
3. The merge stops at ``limit`` rows, then makes sure it can tell whether a ``limit + 1``-th
   row exists, which decides the next link exactly: a row still buffered proves one, so a
   cell that drained at the page's end is not asked (it cannot change this page).

A source that fails, hangs, is slow or is skipped by its breaker is dropped from this page
and its cell reported in :attr:`ListResult.unavailable` (and :attr:`ListResult.slow` when it
was alive but too slow); with a stub factory, its stubs take its place in the merge. What
to do about a missing cell (partial 200, 400, 503) is the caller's call.

The driver (:func:`merge_sources`) knows only the :class:`~cells.sources.Source` protocol,
so refill, failure and stub paths are unit-tested with in-memory sources;
:func:`list_instances` binds it to real cells.

Over the house size on purpose: the driver is one loop with its sizing rules beside it
(first batches, refills, the frontier's bound), which the unit tests read as one.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from cells.apidb import ApiDatabase
from cells.client import CellClient
from cells.fanout import CellFailed, CellRows, CellSlow, down_name, run_all
from cells.filters import InstanceFilters
from cells.merge import CellBuffer, Merge
from cells.order import Row, SortSpec, SqlValue, key_function
from cells.plan import Position, QueryPlan
from cells.registry import Cell
from cells.sources import InstanceSource, Source, StubRows
from cells.walk import CellCursor

__all__ = [
    "CellStats",
    "ListQuery",
    "ListResult",
    "StubFactory",
    "first_batch_size",
    "list_instances",
    "merge_sources",
    "share_batch_size",
]

# Given a cell that could not answer, the source of its stubs (2.69+), or None.
StubFactory = Callable[[Cell], Source]


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One page request, already validated and scoped."""

    spec: SortSpec
    filters: InstanceFilters
    limit: int
    after: tuple[SqlValue, ...] | None = None
    columns: tuple[str, ...] | None = None  # None: every column (detail view)


@dataclass(slots=True)
class CellStats:
    """What one source cost this request; ``outcome`` is ok, error, misconfigured (then
    ``schema_fault`` says why), timeout, slow or skipped (breaker open)."""

    cell: Cell
    queries: int = 0
    rows_fetched: int = 0
    elapsed_ms: float = 0.0
    outcome: str = "ok"
    stubs: bool = False
    schema_fault: str | None = None


@dataclass(slots=True)
class ListResult:
    """A page: rows in order, whether more exist, and which cells could not answer."""

    rows: list[Row]
    has_more: bool
    unavailable: list[Cell] = field(default_factory=list)
    # Of the unavailable cells: alive but too slow for this query; stood in for by stubs.
    slow: list[Cell] = field(default_factory=list)
    stubbed: list[Cell] = field(default_factory=list)
    stats: list[CellStats] = field(default_factory=list)
    # Per cell id, the cursor after this page (only when every cell answered).
    frontier: dict[int, CellCursor] | None = None
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
class _Input:
    source: Source
    position: Position
    batch: int = 0


def _cursor_of(
    spec: SortSpec,
    source: _Input,
    buffer: CellBuffer,
    keep: int,
    page_end: tuple[SqlValue, ...],
) -> CellCursor:
    rows = [row for _, row in buffer.rows]
    if len(rows) <= keep:
        return CellCursor(source.position, buffer.exhausted, rows)
    # Too many to keep: forget the tail and move the cursor back to the last kept row (or,
    # keeping none, to the page's last row: every buffered row sorts after it).
    kept = rows[:keep]
    return CellCursor(spec.position_of(kept[-1]) if kept else page_end, False, kept)


async def merge_sources(
    sources: Sequence[Source],
    spec: SortSpec,
    limit: int,
    after: Position = None,
    resume: Mapping[int, CellCursor] | None = None,
    keep_rows: int = 0,
    stubs: StubFactory | None = None,
    shares: Mapping[int, float] | None = None,
) -> ListResult:
    """Fetch one page of ``limit`` rows across ``sources``; see the module docstring.

    With ``resume`` (per cell id, from the previous page's :attr:`ListResult.frontier`),
    buffered rows are merged first and only sources whose buffers are empty are queried.
    ``keep_rows`` bounds the rows per cell kept in the returned frontier. With ``stubs``,
    each cell that cannot answer is replaced by the source it returns, merged in order from
    where that cell's cursor stood. ``shares`` (per cell id, summing to about 1) size each
    cell's first batch by the part of the rows it is expected to hold.
    """
    k = len(sources)
    result = ListResult(rows=[], has_more=False, stats=[CellStats(s.cell) for s in sources])
    if limit <= 0 or not sources:
        return result
    key_of = key_function(spec)
    inputs = [_Input(source, after) for source in sources]
    merge = Merge(k)
    first = first_batch_size(limit, k)
    firsts = [
        share_batch_size(limit, shares.get(s.cell.id, 0.0)) if shares else first for s in sources
    ]

    def replace_with_stubs(i: int) -> None:
        # The failed cell's cursor: every row of that cell up to it has been emitted (on
        # this page or an earlier one; a cell is only queried once its buffer is empty),
        # none after it. Not ``after``: a page resumed from a cached frontier has no
        # ``after``, and stubs from the top would repeat earlier pages.
        assert stubs is not None
        cell = inputs[i].source.cell
        inputs.append(_Input(stubs(cell), inputs[i].position, first // 2))
        firsts.append(first)
        result.stats.append(CellStats(cell, stubs=True))
        merge.add_cell()

    async def fetch(i: int, n: int) -> None:
        source = inputs[i]
        source.batch = n
        outcome = await source.source.fetch(source.position, n)
        stats = result.stats[i]
        stats.elapsed_ms += outcome.elapsed_ms
        match outcome:
            case CellRows(rows=rows, exhausted=exhausted):
                if i < k:
                    cell_id = source.source.cell.id
                    result.cell_of.update((str(row["uuid"]), cell_id) for row in rows)
                if rows:
                    source.position = spec.position_of(rows[-1])
                merge.feed(i, [(key_of(row), row) for row in rows], exhausted=exhausted)
                return
            case CellFailed(schema_fault=str(reason)):
                stats.schema_fault = reason
        stats.outcome = down_name(outcome)
        merge.drop(i)
        if i < k:
            cell = source.source.cell
            result.unavailable.append(cell)
            if isinstance(outcome, CellSlow):
                result.slow.append(cell)
            if stubs is not None:
                replace_with_stubs(i)

    if resume is not None:
        for i, source in enumerate(inputs):
            saved = resume[source.source.cell.id]
            source.position = saved.position
            source.batch = firsts[i] // 2
            cell_id = source.source.cell.id
            result.cell_of.update((str(row["uuid"]), cell_id) for row in saved.rows)
            merge.feed(i, [(key_of(row), row) for row in saved.rows], exhausted=saved.exhausted)
    try:
        await run_all([fetch(i, firsts[i]) for i in merge.starved()])
        seen: set[object] = set()
        out = result.rows
        while True:
            taken = merge.take(limit - len(out))
            for _, row in taken.rows:
                uuid = row["uuid"]
                if uuid not in seen:  # one instance twice: a cross-cell resize in flight
                    seen.add(uuid)
                    out.append(row)
            starved = merge.starved()
            if not starved:
                if len(out) < limit and merge.has_more:
                    continue
                break
            if len(out) >= limit and merge.buffered:
                # The page is full and a buffered row proves a next one: the drained cells
                # cannot change this page, so they are not asked now (their cursors go into
                # the frontier, drained; the next page, or its read-ahead, refills them).
                break
            # The batch doubles (from at least an equal share, in case the cell's share
            # was underestimated), bounded by what the page still needs -- but not below its
            # first batch when the page needs little: that surplus is the next page's head
            # start (kept in the frontier) and saves a round trip per refill.
            need = limit + 1 - len(out)
            await run_all(
                [
                    fetch(i, min(max(2 * inputs[i].batch, first), max(need, firsts[i])))
                    for i in starved
                ]
            )
        result.has_more = merge.has_more
        if out:
            # A cell that did not answer resumes at the page's last row, as a marker with no
            # frontier would ask it: a partial page's next page is resumed too, instead of
            # resolving its marker and asking every cell again for as long as the cell is
            # out (at 2.69 its stubs go on from there; answering again, its rows do).
            page_end = spec.position_of(out[-1])
            down = {cell.id for cell in result.unavailable}
            result.frontier = {
                s.source.cell.id: (
                    CellCursor(page_end, False, [])
                    if s.source.cell.id in down
                    else _cursor_of(spec, s, merge.buffers[i], keep_rows, page_end)
                )
                for i, s in enumerate(inputs[:k])
            }
    finally:
        for i, source in enumerate(inputs):
            result.stats[i].queries = source.source.queries
            result.stats[i].rows_fetched = source.source.rows_fetched
        # Every call has finished (run_all waits), so only idle connections go back.
        await asyncio.gather(*(s.source.close() for s in inputs), return_exceptions=True)
    result.stubbed = [
        stats.cell for stats in result.stats[k:] if stats.stubs and stats.outcome == "ok"
    ]
    return result


async def list_instances(
    clients: Sequence[CellClient],
    query: ListQuery,
    resume: Mapping[int, CellCursor] | None = None,
    keep_rows: int = 0,
    stubs_from: ApiDatabase | None = None,
    shares: Mapping[int, float] | None = None,
) -> ListResult:
    """One page of ``query`` across the cells of ``clients`` (see :func:`merge_sources`).

    ``stubs_from`` is the API database, when down cells' instances may be shown as stubs
    (2.69+, in an order and scope the mappings can honour: :func:`cells.stubs.stubs_possible`).
    """
    if query.filters.matches_nothing:
        return ListResult(rows=[], has_more=False, stats=[CellStats(c.cell) for c in clients])
    plan = QueryPlan(query.spec, query.filters, query.columns)
    sources = [InstanceSource(c, plan) for c in clients]
    shares = _live_shares(clients, shares)
    stubs: StubFactory | None = None
    if stubs_from is not None:
        api, project, spec = stubs_from, query.filters.project_id, query.spec
        stubs = lambda cell: StubRows(api, cell, project, spec)  # noqa: E731
    return await merge_sources(
        sources, query.spec, query.limit, query.after, resume, keep_rows, stubs, shares
    )


def _live_shares(
    clients: Sequence[CellClient], shares: Mapping[int, float] | None
) -> Mapping[int, float] | None:
    """``shares`` (``None``: equal) spread over the cells whose breakers let calls through:
    a skipped cell supplies no row, so the others must bring its part (measured: with the
    cell holding half the rows frozen, each page of the rest refilled sequentially)."""
    skipped = {c.cell.id for c in clients if c.skipping}
    if not skipped or len(skipped) == len(clients):
        return shares
    if shares is None:
        shares = {c.cell.id: 1.0 for c in clients}
    live = sum(v for cell, v in shares.items() if cell not in skipped)
    if live <= 0:
        return shares
    return {cell: 0.0 if cell in skipped else v / live for cell, v in shares.items()}
