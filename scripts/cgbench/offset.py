"""OFFSET vs keyset paging on the unsharded cell, SQL only."""

from __future__ import annotations

import statistics
import time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import Executable

from cells import EngineOptions, InstanceFilters, SortSpec, create_engine_for
from cells.filters import where_clauses
from cells.keyset import after_position, order_by
from cells.order import Direction
from cells.schema import instances
from cgbench.console import say
from cgbench.profiles import LIMITS, Layout, Profile
from cgbench.results import OffsetPoint, OffsetResults


async def _timed(conn: AsyncConnection, stmt: Executable) -> tuple[float, list[str]]:
    t = time.perf_counter()
    rows = (await conn.execute(stmt)).mappings().all()
    return time.perf_counter() - t, [str(r["uuid"]) for r in rows]


async def run_offset(layout: Layout, profile: Profile) -> OffsetResults:
    """Pages at growing depths: ``LIMIT n OFFSET m`` vs the keyset query after the row at
    depth m (checked to return the same rows), median of ``offset_reps`` each."""
    engine = create_engine_for(
        layout.url(layout.cells1[0]),
        EngineOptions(pool_size=1, max_overflow=0, command_timeout_s=60.0),
    )
    spec = SortSpec.build([("created_at", Direction.DESC)])
    c = instances.c
    base = where_clauses(InstanceFilters())
    order = order_by(spec, c)
    cols = list(c)
    points: list[OffsetPoint] = []
    same_rows = True
    try:
        async with engine.connect() as conn:
            total = int((await conn.execute(select(func.count()).where(*base))).scalar_one())
            for limit in LIMITS:
                depths = [d for d in profile.offset_depths if d + limit <= total]
                deepest = (total - limit) // 1000 * 1000
                if deepest > (depths[-1] if depths else -1):
                    depths.append(deepest)
                say(f"OFFSET vs keyset, limit {limit}, depths {depths}")
                for depth in depths:
                    offset_stmt = select(*cols).where(*base).order_by(*order).limit(limit)
                    offset_stmt = offset_stmt.offset(depth)
                    keyset_stmt = select(*cols).where(*base).order_by(*order).limit(limit)
                    if depth > 0:
                        pos_row = (
                            await conn.execute(
                                select(c.created_at, c.uuid)
                                .where(*base)
                                .order_by(*order)
                                .offset(depth - 1)
                                .limit(1)
                            )
                        ).one()
                        keyset_stmt = keyset_stmt.where(after_position(spec, c, tuple(pos_row)))
                    _, a = await _timed(conn, offset_stmt)
                    _, b = await _timed(conn, keyset_stmt)
                    if a != b:
                        same_rows = False
                    off, key = [], []
                    for _ in range(profile.offset_reps):
                        off.append((await _timed(conn, offset_stmt))[0])
                        key.append((await _timed(conn, keyset_stmt))[0])
                    points.append(
                        OffsetPoint(
                            limit=limit,
                            depth=depth,
                            offset_ms=statistics.median(off) * 1000,
                            keyset_ms=statistics.median(key) * 1000,
                        )
                    )
    finally:
        await engine.dispose()
    return OffsetResults(rows=total, points=points, same_rows=same_rows)
