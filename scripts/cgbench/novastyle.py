"""Nova's multi-cell instance listing, rebuilt on cellgate's schema and keyset SQL.

The baseline of the in-process phase: Nova's serial, fixed-batch strategy
(``nova/compute/multi_cell_list.py``), not oslo.db's ``paginate_query``; it builds no
Instance objects, so it flatters Nova.
"""

from __future__ import annotations

import contextlib
import heapq
from collections import defaultdict
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import cast

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.expression import Executable

from cells import InstanceFilters, SortSpec
from cells.filters import where_clauses
from cells.keyset import after_position, order_by
from cells.order import Direction, Row, SqlValue
from cells.schema import instance_mappings, instances


class _SortCtx:
    """Nova's ``RecordSortContext.compare_records``: cmp over the keys, no NULL handling."""

    def __init__(self, keys: list[str], dirs: list[str]) -> None:
        self.pairs = list(zip(keys, dirs, strict=True))

    def compare_records(self, rec1: RowMapping, rec2: RowMapping) -> int:
        for skey, sdir in self.pairs:
            resultflag = 1 if sdir == "desc" else -1
            if rec1[skey] < rec2[skey]:
                return resultflag
            elif rec1[skey] > rec2[skey]:
                return resultflag * -1
        return 0


class _RecordWrapper:
    """Nova's ``RecordWrapper``: only ``__lt__``, through ``compare_records``."""

    __slots__ = ("_ctx", "rec")

    def __init__(self, ctx: _SortCtx, rec: RowMapping) -> None:
        self._ctx = ctx
        self.rec = rec

    def __lt__(self, other: _RecordWrapper) -> bool:
        return self._ctx.compare_records(self.rec, other.rec) == -1


class _HeapEntry:
    """``heapq.merge``'s ``[value, order, iterator]`` entry; wrappers never compare equal,
    so a list comparison of two entries is the comparison of their values."""

    __slots__ = ("it", "order", "value")

    def __init__(
        self, value: _RecordWrapper, order: int, it: AsyncIterator[_RecordWrapper]
    ) -> None:
        self.value, self.order, self.it = value, order, it

    def __lt__(self, other: _HeapEntry) -> bool:
        return self.value < other.value


async def _amerge(
    iterables: Sequence[AsyncIterator[_RecordWrapper]],
) -> AsyncGenerator[_RecordWrapper, None]:
    """``heapq.merge`` for async iterators, same structure: prime every input in turn (that
    is where Nova runs every cell's first batch, one after another), then advance the
    input that supplied the last value right after it is consumed."""
    h: list[_HeapEntry] = []
    for order, it in enumerate(iterables):
        with contextlib.suppress(StopAsyncIteration):
            h.append(_HeapEntry(await anext(it), order, it))
    heapq.heapify(h)
    while len(h) > 1:
        try:
            while True:
                s = h[0]
                yield s.value
                s.value = await anext(s.it)
                heapq.heapreplace(h, s)
        except StopAsyncIteration:
            heapq.heappop(h)
    if h:
        yield h[0].value
        async for value in h[0].it:
            yield value


def nova_batch_size(limit: int, k: int) -> int:
    """``get_instance_list_cells_batch_size`` with the default ``distributed`` strategy."""
    if k <= 1:
        return limit
    return max(min(int((limit / k) * 1.10), limit), 100)


@dataclass
class NovaStats:
    queries: int = 0
    rows_fetched: int = 0
    per_cell_queries: dict[int, int] = field(default_factory=lambda: defaultdict(int))


class NovaStyleLister:
    """Nova's multi-cell instance list strategy on our schema, SQL from cells.keyset.

    Per page: the marker's mapping (API DB) and row (its cell); then, inside each cell's
    lazy generator, a "local marker" query (first row after the marker's values) and a
    "prefix" query for it in every other cell, then batches of
    ``max(min(int(limit/k*1.1), limit), 100)`` rows, each re-reading its marker row first
    (``instance_get_all_by_filters_sort`` does), a cell stopping only on an empty batch or
    after ``limit`` rows. All of it runs serially, driven by the heap merge.
    """

    def __init__(
        self,
        api: AsyncEngine,
        cells: list[tuple[int, AsyncEngine]],
        columns: Sequence[str] | None = None,
    ) -> None:
        """``columns``: what each query selects (default: every column, as Nova does)."""
        self.api = api
        self.cells = cells
        self.spec = SortSpec.build([("created_at", Direction.DESC)])
        self.ctx = _SortCtx(list(self.spec.names), [k.direction.value for k in self.spec.keys])
        self.columns = [instances.c[n] for n in columns] if columns else list(instances.c)
        self.order = order_by(self.spec, instances.c)
        self.stats = NovaStats()

    async def _run(self, conn: AsyncConnection, stmt: Executable, cell_id: int) -> list[RowMapping]:
        rows = list((await conn.execute(stmt)).mappings().all())
        self.stats.queries += 1
        self.stats.rows_fetched += len(rows)
        self.stats.per_cell_queries[cell_id] += 1
        return rows

    async def _marker_row(
        self, conn: AsyncConnection, uuid: str, cell_id: int
    ) -> RowMapping | None:
        c = instances.c
        rows = await self._run(conn, select(*self.columns).where(c.uuid == uuid), cell_id)
        return rows[0] if rows else None

    async def _cell(
        self,
        cell_id: int,
        engine: AsyncEngine,
        filters: InstanceFilters,
        limit: int,
        batch: int,
        marker: str | None,
        marker_cell: int | None,
        marker_values: tuple[SqlValue, ...] | None,
    ) -> AsyncGenerator[_RecordWrapper, None]:
        c = instances.c
        base = where_clauses(filters)
        async with engine.connect() as conn:
            local_marker: str | None = None
            if marker is not None:
                assert marker_values is not None
                if cell_id == marker_cell:
                    local_marker = marker
                else:
                    stmt = (
                        select(c.uuid)
                        .where(c.deleted == 0, after_position(self.spec, c, marker_values))
                        .order_by(*self.order)
                        .limit(1)
                    )
                    found = await self._run(conn, stmt, cell_id)
                    if not found:
                        return  # everything here sorts before the marker
                    local_marker = str(found[0]["uuid"])
                    prefix = (
                        select(*self.columns)
                        .where(*base, c.uuid == local_marker)
                        .order_by(*self.order)
                        .limit(1)
                    )
                    for row in await self._run(conn, prefix, cell_id):
                        yield _RecordWrapper(self.ctx, row)
            return_count = 0
            while return_count < limit:
                size = min(batch, limit - return_count)
                conditions = list(base)
                if local_marker is not None:
                    # paginate_query needs the marker *row*: Nova reads it per batch.
                    mrow = await self._marker_row(conn, local_marker, cell_id)
                    if mrow is None:
                        return
                    conditions.append(
                        after_position(self.spec, c, self.spec.position_of(cast(Row, mrow)))
                    )
                stmt = select(*self.columns).where(*conditions).order_by(*self.order).limit(size)
                batch_count = 0
                for row in await self._run(conn, stmt, cell_id):
                    local_marker = str(row["uuid"])
                    batch_count += 1
                    yield _RecordWrapper(self.ctx, row)
                if not batch_count:
                    break
                return_count += batch_count

    async def page(
        self, filters: InstanceFilters, limit: int, marker: str | None
    ) -> tuple[list[RowMapping], bool]:
        """One page after ``marker``, and whether Nova would link a next page."""
        marker_cell: int | None = None
        marker_values: tuple[SqlValue, ...] | None = None
        if marker is not None:
            m = instance_mappings.c
            async with self.api.connect() as conn:
                mapping = (
                    await conn.execute(select(m.cell_id).where(m.instance_uuid == marker))
                ).first()
                self.stats.queries += 1
            if mapping is None:
                raise LookupError(marker)
            marker_cell = int(mapping.cell_id)
            engine = dict(self.cells)[marker_cell]
            async with engine.connect() as conn:
                row = await self._marker_row(conn, marker, marker_cell)
            if row is None:
                raise LookupError(marker)
            marker_values = self.spec.position_of(cast(Row, row))
        batch = nova_batch_size(limit, len(self.cells))
        gens = [
            self._cell(cid, eng, filters, limit, batch, marker, marker_cell, marker_values)
            for cid, eng in self.cells
        ]
        out: list[RowMapping] = []
        seen: set[str] = set()
        merged = _amerge(gens)
        try:
            async for item in merged:
                uuid = str(item.rec["uuid"])
                if uuid not in seen:
                    seen.add(uuid)
                    out.append(item.rec)
                if len(out) >= limit:
                    break
        finally:
            await merged.aclose()
            for g in gens:
                await g.aclose()
        return out, len(out) == limit  # Nova's "next" rule: a full page
