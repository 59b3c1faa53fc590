"""HTTP measurements of the scale run against real ``cellgate serve`` processes: first
pages, full walks (with the gateway's RSS along the way), closed-loop throughput of any
target, and the cells' own row counts from ``pg_stat_statements``."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from cgbench.httpconn import HttpConn, body_ids, next_target, ok_response
from cgbench.results import Latency
from cgbench.rss import tree_rss_kib
from cgbench.servers import Server

__all__ = [
    "CellRows",
    "Walk",
    "first_pages",
    "rss_mb",
    "statement_rows",
    "walk",
]

ADMIN = "admin:admin"


def rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` and its descendants (worker processes), in MiB."""
    return tree_rss_kib(pid) / 1024


async def first_pages(
    servers: Sequence[Server], target: str, n: int, warmup: int, token: str = ADMIN
) -> dict[str, Latency]:
    """``n`` sequential requests of ``target`` per server, alternating between servers
    (one keep-alive connection each), after ``warmup`` each; latency per server name."""
    conns = {s.name: HttpConn("127.0.0.1", s.port) for s in servers}
    samples: dict[str, list[float]] = {s.name: [] for s in servers}
    try:
        for i in range(warmup + n):
            for s in servers:
                started = time.perf_counter()
                status, headers, _ = await conns[s.name].get(target, token)
                took = time.perf_counter() - started
                if not ok_response(status, headers):
                    raise RuntimeError(f"{s.name}: {target} answered {status} {headers}")
                if i >= warmup:
                    samples[s.name].append(took)
    finally:
        for conn in conns.values():
            conn.close()
    return {name: Latency.of(values) for name, values in samples.items()}


@dataclass(frozen=True)
class Walk:
    """A sequential walk over every page, following ``servers_links``."""

    pages: int
    rows: int
    page_s: tuple[float, ...]
    rss_mb: tuple[tuple[int, float], ...]  # (rows returned so far, gateway RSS)
    ids_digest: int  # hash of the uuids in order: two walks returning the same rows agree

    @property
    def page(self) -> Latency:
        return Latency.of(self.page_s)


async def walk(
    server: Server, first: str, token: str = ADMIN, rss_every: int = 0, max_pages: int = 0
) -> Walk:
    """Every page from ``first`` (or ``max_pages``), one keep-alive connection; the gateway's
    RSS every ``rss_every`` pages when non-zero."""
    conn = HttpConn("127.0.0.1", server.port)
    target: str | None = first
    times: list[float] = []
    rss: list[tuple[int, float]] = []
    rows = 0
    digest = 0
    try:
        while target is not None and (not max_pages or len(times) < max_pages):
            started = time.perf_counter()
            status, headers, body = await conn.get(target, token)
            times.append(time.perf_counter() - started)
            if not ok_response(status, headers):
                raise RuntimeError(f"{server.name}: {target} answered {status} {headers}")
            ids = body_ids(body)
            rows += len(ids)
            digest = hash((digest, *ids))
            if rss_every and len(times) % rss_every == 1:
                rss.append((rows, rss_mb(server.pid)))
            target = next_target(body)
    finally:
        conn.close()
    if rss_every:
        rss.append((rows, rss_mb(server.pid)))
    return Walk(len(times), rows, tuple(times), tuple(rss), digest)


@dataclass(frozen=True)
class CellRows:
    """What the cells' own statistics say a stretch of work read (``pg_stat_statements``):
    rows and calls of the keyset queries on ``instances``, and of the side-table reads."""

    keyset_rows: int
    keyset_calls: int
    side_rows: int
    side_calls: int


_KEYSET = re.compile(r"\bFROM instances\b", re.IGNORECASE)


async def statement_rows(admin_url: str, databases: Sequence[str]) -> CellRows | None:
    """Totals since the last reset for ``databases``; ``None`` without pg_stat_statements."""
    conn = await asyncpg.connect(admin_url, timeout=30)
    try:
        loaded = await conn.fetchval(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'"
        )
        if not loaded:
            return None
        try:
            rows = await conn.fetch(
                "SELECT s.query, sum(s.rows) AS rows, sum(s.calls) AS calls "
                "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
                "WHERE d.datname = ANY($1::text[]) GROUP BY s.query",
                list(databases),
            )
        except asyncpg.PostgresError:  # created, but not in shared_preload_libraries
            return None
    finally:
        await conn.close()
    keyset = [r for r in rows if _KEYSET.search(r["query"])]
    side = [r for r in rows if "UNION ALL" in r["query"] and "instance_extra" in r["query"]]
    return CellRows(
        sum(int(r["rows"]) for r in keyset),
        sum(int(r["calls"]) for r in keyset),
        sum(int(r["rows"]) for r in side),
        sum(int(r["calls"]) for r in side),
    )


async def reset_statements(admin_url: str) -> bool:
    """Zero ``pg_stat_statements`` (server-wide); ``False`` when it is not loaded."""
    conn = await asyncpg.connect(admin_url, timeout=30)
    try:
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await conn.execute("SELECT pg_stat_statements_reset()")
        except asyncpg.PostgresError:
            return False
        return True
    finally:
        await conn.close()
