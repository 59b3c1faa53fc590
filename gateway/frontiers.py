"""A walk's frontier in the store: found for a marker, saved after a page, read ahead.

A page that has more saves, under the walk's fingerprint and its last row's uuid, each
cell's cursor after it (:mod:`cells.walk` encodes them); the next page resumes from it
instead of resolving the marker and asking every cell again. Once a walk has asked for a
second page, :func:`read_ahead_next` refills that frontier for the page after in the
background (bounded and cancelled by :class:`gateway.readahead.ReadAheads`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

from sqlalchemy import DateTime

from cache import frontier_key
from cells import (
    CellClient,
    CellCursor,
    HeadShares,
    InstanceSource,
    ListQuery,
    ListResult,
    Row,
    decode_frontier,
    encode_frontier,
)
from cells.details import VIEW_COLUMNS
from cells.plan import QueryPlan
from cells.readahead import read_ahead, read_ahead_sizes
from cells.schema import instances
from gateway.state import AppState

__all__ = ["cached_frontier", "read_ahead_next", "save_frontier"]

_DATETIME_COLUMNS = frozenset(c.name for c in instances.columns if isinstance(c.type, DateTime))


async def cached_frontier(
    state: AppState,
    walk: str,
    marker: str,
    columns: tuple[str, ...],
    clients: list[CellClient],
) -> dict[int, CellCursor] | None:
    """The frontier a page saved for the page after ``marker``: its read-ahead's when one
    ran here, else the store's; ``None`` when missing or saved for another cell set."""
    key = frontier_key(state.settings.redis_prefix, walk, marker)
    frontier = await state.read_aheads.claim(key)
    if frontier is None:
        blob = await state.store.get(key, state.settings.frontier_ttl_s)
        # Rows fetched longer ago than frontier_fresh_s are not trusted (cells.walk says
        # why): a miss, and the marker is resolved afresh.
        since = time.time() - state.settings.frontier_fresh_s
        frontier = decode_frontier(blob, columns, since) if blob is not None else None
    if frontier is not None and set(frontier) != {c.cell.id for c in clients}:
        frontier = None  # saved for another cell set: a miss
    state.metrics.frontier.labels("hit" if frontier else "miss").inc()
    return frontier


async def save_frontier(
    state: AppState,
    walk: str,
    last: Row,
    saved: dict[int, CellCursor],
    columns: tuple[str, ...],
) -> None:
    """Save the frontier after ``last`` (the page's last row) for the walk's next page."""
    key = frontier_key(state.settings.redis_prefix, walk, str(last["uuid"]))
    blob = encode_frontier(saved, columns, _DATETIME_COLUMNS, time.time())
    await state.store.set(key, blob, state.settings.frontier_ttl_s)


def read_ahead_next(
    state: AppState,
    clients: list[CellClient],
    query: ListQuery,
    result: ListResult,
    counted: dict[int, float] | None,
    walk: str,
    keep: int,
) -> None:
    """Start refilling the frontier just saved for the walk's next page (gateway.readahead):
    each cell up to its expected part of that page, sized by what it supplied to this one
    (blended with the counts, as :class:`~cells.walk.HeadShares` blends)."""
    frontier = result.frontier
    assert frontier is not None
    supplied = Counter(result.cell_of.get(str(row["uuid"])) for row in result.rows)
    ids = [c.cell.id for c in clients]
    shares = HeadShares()
    shares.learn(walk, {c: n for c, n in supplied.items() if c is not None})
    sizes = read_ahead_sizes(frontier, shares.blend(walk, counted, ids), query.limit, keep)
    if not sizes:
        return
    key = frontier_key(state.settings.redis_prefix, walk, str(result.rows[-1]["uuid"]))
    columns = query.columns or VIEW_COLUMNS
    fetched_at = time.time()  # the refill keeps the page's own leftovers, read by now

    async def run() -> dict[int, CellCursor]:
        plan = QueryPlan(query.spec, query.filters, query.columns)
        by_id = {c.cell.id: c for c in clients}
        sources = {cell: InstanceSource(by_id[cell], plan) for cell in sizes}
        try:
            refilled = await read_ahead(sources, query.spec, frontier, sizes)
        finally:
            for source in sources.values():
                state.metrics.cell_queries.labels(source.cell.label).inc(source.queries)
                state.metrics.rows_fetched.labels(source.cell.label).inc(source.rows_fetched)
            await asyncio.gather(*(s.close() for s in sources.values()), return_exceptions=True)
        blob = encode_frontier(refilled, columns, _DATETIME_COLUMNS, fetched_at)
        await state.store.set(key, blob, state.settings.frontier_ttl_s)
        return refilled

    state.read_aheads.start(key, run)
