"""The floor of a fan-out listing on this machine: what a gateway that did nothing but ask
every cell for its first batch would reach.

Each "request" runs, concurrently on one asyncpg connection per cell, exactly the keyset
query cellgate sends for an admin's summary first page at limit 100 (the same SQL, from
:class:`cells.plan.QueryPlan`, the same per-cell batch, from
:func:`cells.listing.first_batch_size`) and turns the records into dicts. No HTTP, no
authentication, no merge, no rendering, no SQLAlchemy pool. Its throughput ÷ ``/healthz``
is the most any design that asks every cell per page can reach for P8 here: the
databases share the machine's cores with the gateway.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import uvloop
from sqlalchemy.dialects import postgresql

from cells.filters import InstanceFilters
from cells.listing import first_batch_size
from cells.order import Direction, SortSpec
from cells.plan import QueryPlan
from cells.rawsql import compile_for_asyncpg
from cgbench.load import Load
from cgbench.results import Latency
from cgbench.scale.data import DataSet

LIMIT = 100


def _first_page_sql(cells: int) -> tuple[str, list[object]]:
    spec = SortSpec.build([("created_at", Direction.DESC)])
    columns = tuple(dict.fromkeys(("uuid", "display_name", *spec.names)))
    plan = QueryPlan(spec, InstanceFilters(), columns)
    dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's asyncpg dialect constructor is unannotated
    n = first_batch_size(LIMIT, cells)
    raw = compile_for_asyncpg(plan.select(None, n, named=True), dialect)
    return raw.sql, raw.args({"lim": n})


def fanout_floor(data: DataSet, clients: int, seconds: float, warmup_s: float) -> Load:
    """:func:`_floor` on an event loop of its own, uvloop's as the gateway's (call it from
    a thread: ``asyncio.to_thread``)."""
    return uvloop.run(_floor(data, clients, seconds, warmup_s))


async def _floor(data: DataSet, clients: int, seconds: float, warmup_s: float) -> Load:
    """``clients`` closed-loop "requests", each asking every cell of ``data`` at once."""
    sql, args = _first_page_sql(len(data.cell_urls))
    pools = [
        await asyncpg.create_pool(url, min_size=clients, max_size=clients) for url in data.cell_urls
    ]
    start = time.perf_counter()
    window = (start + warmup_s, start + warmup_s + seconds)
    latencies: list[float] = []

    async def one(pool: asyncpg.Pool) -> int:
        async with pool.acquire() as conn:
            return len([dict(r) for r in await conn.fetch(sql, *args)])

    async def client() -> None:
        while (t := time.perf_counter()) < window[1]:
            await asyncio.gather(*(one(pool) for pool in pools))
            done = time.perf_counter()
            if window[0] <= done < window[1]:
                latencies.append(done - t)

    try:
        await asyncio.gather(*(client() for _ in range(clients)))
    finally:
        for pool in pools:
            await pool.close()
    return Load(len(latencies) / seconds, len(latencies), 0, Latency.of(latencies))
