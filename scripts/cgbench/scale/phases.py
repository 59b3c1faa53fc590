"""The scale run's phases, each against real ``cellgate serve`` processes started for it and
stopped after it (so the databases' connection limit holds whatever the layouts)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from cgbench.console import say
from cgbench.httpconn import HttpConn
from cgbench.load import Load, closed_loop
from cgbench.results import Latency
from cgbench.scale.data import DataSet
from cgbench.scale.floor import fanout_floor
from cgbench.scale.measure import (
    CellRows,
    Walk,
    first_pages,
    reset_statements,
    statement_rows,
    walk,
)
from cgbench.scale.network import proxied
from cgbench.servers import Server

__all__ = [
    "Deep",
    "Freeze",
    "WalkFigures",
    "deep_pages",
    "first_page_latency",
    "freeze",
    "servers",
    "throughput",
    "walks",
    "workers",
]

ADMIN_FIRST = "/v2.1/servers/detail?all_tenants=1&limit={limit}"
ADMIN_FIRST_SUMMARY = "/v2.1/servers?all_tenants=1&limit={limit}"
# Throughput targets (keys of :func:`throughput`'s answer).
DETAIL, SUMMARY, HEALTHZ, FLOOR = "detail, limit 100", "summary, limit 100", "/healthz", "floor"


@dataclass(frozen=True)
class Env:
    """What every gateway of the run shares."""

    logdir: Path
    pool: int  # connections per cell
    redis_url: str | None
    redis_prefix: str

    def settings(self, **extra: str) -> dict[str, str]:
        env = {
            "CELLGATE_PAGE_CACHE_TTL_S": "0",
            "CELLGATE_COALESCE_LISTINGS": "false",
            "CELLGATE_CELL_POOL_SIZE": str(self.pool),
            "CELLGATE_CELL_POOL_MAX_OVERFLOW": "0",
            "CELLGATE_LOG_LEVEL": "WARNING",
            "CELLGATE_LOG_FORMAT": "json",
            "CELLGATE_REDIS_PREFIX": self.redis_prefix,
        }
        if self.redis_url:
            env["CELLGATE_REDIS_URL"] = self.redis_url
        return env | extra


@contextlib.asynccontextmanager
async def servers(
    env: Env,
    data_sets: Sequence[DataSet],
    args: tuple[str, ...] = (),
    per_set: dict[str, dict[str, str]] | None = None,
    **extra: str,
) -> AsyncIterator[list[Server]]:
    """One ready ``cellgate serve`` per data set, named after it (``per_set``: more
    settings for some of them, by name); stopped on exit."""
    more = per_set or {}
    started = [
        Server(d.name, d.api_url, env.settings(**extra, **more.get(d.name, {})), env.logdir, args)
        for d in data_sets
    ]
    try:
        for server in started:
            server.start()
        await asyncio.gather(*(s.wait_ready() for s in started))
        yield started
    finally:
        for server in started:
            server.stop()


async def first_page_latency(
    env: Env,
    data_sets: Sequence[DataSet],
    limits: Sequence[int],
    n: int,
    warmup: int,
    per_set: dict[str, dict[str, str]] | None = None,
) -> dict[int, dict[str, Latency]]:
    """Admin first pages, requests alternating between one server per data set."""
    out: dict[int, dict[str, Latency]] = {}
    async with servers(env, data_sets, (), per_set) as running:
        for limit in limits:
            say(f"first pages, limit {limit}: {', '.join(d.name for d in data_sets)}")
            out[limit] = await first_pages(running, ADMIN_FIRST.format(limit=limit), n, warmup)
    return out


@dataclass(frozen=True)
class Deep:
    """The page at a depth of the admin listing (cold: no cached frontier) vs page 1."""

    depth: int
    first: dict[str, Latency]
    deep: dict[str, Latency]


async def _marker_at(data: DataSet, depth: int) -> str:
    """The uuid of the row just before ``depth`` in the admin listing's order (from the
    unsharded data set: one database, one ORDER BY)."""
    conn = await asyncpg.connect(data.cell_urls[0], timeout=30)
    try:
        uuid = await conn.fetchval(
            "SELECT uuid FROM instances WHERE deleted = 0 AND "
            "(vm_state <> 'soft-delete' OR vm_state IS NULL) "
            'ORDER BY created_at DESC, uuid COLLATE "C" LIMIT 1 OFFSET $1',
            depth - 1,
        )
    finally:
        await conn.close()
    return str(uuid)


async def deep_pages(
    env: Env, data_sets: Sequence[DataSet], unsharded: DataSet, depth: int, limit: int, n: int
) -> Deep:
    """Page 1 and the page at ``depth`` (a marker request no frontier was saved for)."""
    marker = await _marker_at(unsharded, depth)
    first = ADMIN_FIRST.format(limit=limit)
    async with servers(env, data_sets) as running:
        say(f"the page at row {depth:,} vs page 1, limit {limit}")
        page1 = await first_pages(running, first, n, 3)
        deep = await first_pages(running, f"{first}&marker={marker}", n, 3)
    return Deep(depth, page1, deep)


@dataclass(frozen=True)
class WalkFigures:
    """A full admin walk per data set, and what the cells' statistics say it read."""

    limit: int
    walks: dict[str, Walk]
    cell_rows: dict[str, CellRows | None]
    visible: dict[str, int]


async def walks(
    env: Env, data_sets: Sequence[DataSet], admin_url: str, limit: int, rss_every: int
) -> WalkFigures:
    """Every page of the admin listing, each data set on its own (its own server, alone on
    the machine), ``pg_stat_statements`` reset before and read after each walk."""
    out: dict[str, Walk] = {}
    rows: dict[str, CellRows | None] = {}
    for data in data_sets:
        async with servers(env, [data]) as (server,):
            say(f"full walk, limit {limit}: {data.name} ({data.visible:,} rows)")
            await reset_statements(admin_url)
            out[data.name] = await walk(
                server, ADMIN_FIRST.format(limit=limit), rss_every=rss_every
            )
            rows[data.name] = await statement_rows(admin_url, data.databases[1:])
    return WalkFigures(limit, out, rows, {d.name: d.visible for d in data_sets})


async def throughput(
    env: Env,
    data: DataSet,
    clients: int,
    seconds: float,
    args: tuple[str, ...] = (),
    kinds: tuple[str, ...] = (DETAIL, SUMMARY, HEALTHZ, FLOOR),
) -> dict[str, Load]:
    """Closed-loop throughput of admin first pages at limit 100, detail and summary (each
    request a distinct ignored parameter, so none is coalesced), and of ``/healthz``, on
    one server; then the fan-out floor (:mod:`cgbench.scale.floor`) with no server."""
    async with servers(env, [data], args) as (server,):
        say(f"throughput {data.name} {' '.join(args)}: limit 100 and /healthz")
        out: dict[str, Load] = {}
        for name, first in ((DETAIL, ADMIN_FIRST), (SUMMARY, ADMIN_FIRST_SUMMARY)):
            if name not in kinds:
                continue
            target = first.format(limit=100) + "&bench_nonce={}"
            out[name] = await closed_loop(server, target.format, clients, seconds, 2.0)
        if HEALTHZ in kinds:
            health = await closed_loop(server, lambda i: "/healthz", clients, seconds, 1.0, None)
            out[HEALTHZ] = health
    if FLOOR in kinds and len(data.cell_urls) > 1:
        say(f"fan-out floor {data.name}: the cells' queries alone, no gateway")
        out[FLOOR] = await asyncio.to_thread(fanout_floor, data, clients, seconds, 1.0)
    return out


@dataclass(frozen=True)
class Freeze:
    """One cell of eight frozen (its host stops answering): throughput before and after its
    breaker opened, and how long the first request after the freeze took."""

    healthy: Load
    frozen: Load
    first_after_s: float
    cell_timeout_s: float
    partial: bool  # the first request named the frozen cell unavailable


async def freeze(env: Env, data: DataSet, clients: int, seconds: float) -> Freeze:
    """Every cell of ``data`` behind a proxy; freeze the biggest cell's (cell1)."""
    timeout_s = 1.0
    target = ADMIN_FIRST.format(limit=100) + "&bench_nonce={}"
    with proxied(data, 0.0) as cells:
        extra = cells.env | {"CELLGATE_CELL_TIMEOUT_S": str(timeout_s)}
        async with servers(env, [data], (), {data.name: extra}) as (server,):
            say(f"freeze: {data.name}, healthy")
            healthy = await closed_loop(server, target.format, clients, seconds, 2.0)
            cells.freeze(0)
            conn = HttpConn("127.0.0.1", server.port)
            started = time.perf_counter()
            status, headers, _ = await conn.get(target.format("first"), "admin:admin")
            first_after = time.perf_counter() - started
            conn.close()
            partial = status == 200 and "cell1" in headers.get("x-cells-unavailable", "")
            say(f"freeze: cell1 frozen, first request {first_after * 1000:.0f} ms")
            # Pages without cell1 (named in X-Cells-Unavailable) are the expected answers now.
            frozen = await closed_loop(
                server, target.format, clients, seconds, 2.0, accept=_partial_ok
            )
            cells.thaw(0)
    return Freeze(healthy, frozen, first_after, timeout_s, partial)


def _partial_ok(status: int, headers: dict[str, str]) -> bool:
    return status == 200 and headers.get("x-cells-unavailable") == "cell1"


async def workers(env: Env, data: DataSet, clients: int, seconds: float) -> dict[int, Load]:
    """Throughput at limit 100 with 1 and 2 worker processes."""
    out: dict[int, Load] = {}
    for count in (1, 2):
        args = ("--workers", str(count))
        loads = await throughput(env, data, clients, seconds, args, (DETAIL,))
        out[count] = loads[DETAIL]
    return out
