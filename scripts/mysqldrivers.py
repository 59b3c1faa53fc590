#!/usr/bin/env python3
"""aiomysql vs asyncmy on the same keyset walk, through SQLAlchemy asyncio.

    scripts/mysqldrivers.py mysql://root@127.0.0.1:3306/cg_cell1 [--pages 50] [--rounds 3]

Both drivers run the gateway's own statements (:class:`cells.plan.QueryPlan`, default
order ``created_at desc, uuid``, live rows, optionally one project's) page after page
from the start, in alternating
rounds on one connection each; printed per driver and row width (the summary's columns,
the detail view's): median wall and CPU milliseconds per page. Needs both drivers
installed (``pip install asyncmy``: only aiomysql is a dependency). Figures measured on
this project's machines are in the README ("MariaDB/MySQL cells").
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from cells.details import VIEW_COLUMNS
from cells.filters import InstanceFilters
from cells.order import Direction, SortSpec
from cells.plan import Position, QueryPlan

DRIVERS = ("aiomysql", "asyncmy")
WIDTHS = {"summary": ("uuid", "display_name", "created_at"), "detail": VIEW_COLUMNS}


async def _walk(conn: AsyncConnection, plan: QueryPlan, pages: int, size: int) -> list[float]:
    """Wall and CPU seconds of each page, interleaved ``[wall, cpu, wall, cpu...]``."""
    out: list[float] = []
    position: Position = None
    for _ in range(pages):
        wall, cpu = time.perf_counter(), time.process_time()
        rows = (await conn.execute(plan.select(position, size))).mappings().all()
        out += [time.perf_counter() - wall, time.process_time() - cpu]
        if len(rows) < size:
            break
        position = plan.spec.position_of(dict(rows[-1]))
    return out


async def measure(
    url: str, pages: int, rounds: int, size: int, project: str | None = None
) -> dict[str, list[float]]:
    """Per ``driver/width``: the wall and CPU seconds of every page of every round."""
    base = make_url(url)
    engines = {
        d: create_async_engine(base.set(drivername=f"mysql+{d}"), pool_size=1) for d in DRIVERS
    }
    spec = SortSpec.build([("created_at", Direction.DESC)])
    samples: dict[str, list[float]] = {}
    try:
        for _ in range(rounds):
            for driver, engine in engines.items():
                async with engine.connect() as conn:
                    for width, columns in WIDTHS.items():
                        filters = InstanceFilters(project_id=project)
                        plan = QueryPlan(spec, filters, tuple(columns))
                        key = f"{driver}/{width}"
                        samples.setdefault(key, []).extend(await _walk(conn, plan, pages, size))
    finally:
        for engine in engines.values():
            await engine.dispose()
    return samples


def main() -> None:
    """Parse the arguments, measure, print one line per driver and width."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="a seeded MariaDB/MySQL cell (any mysql:// form)")
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--project", help="walk one project's servers (default: all)")
    args = parser.parse_args()
    samples = asyncio.run(measure(args.url, args.pages, args.rounds, args.size, args.project))
    for key, values in samples.items():
        wall, cpu = values[0::2], values[1::2]
        print(
            f"{key:18} pages={len(wall):4} wall p50 {statistics.median(wall) * 1000:6.2f} ms"
            f"  cpu p50 {statistics.median(cpu) * 1000:6.2f} ms"
        )


if __name__ == "__main__":
    main()
