"""Closed-loop load on one gateway, the concurrency PostgreSQL has room for, and the
locust cross-check."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import importlib.util
import itertools
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cgbench import REPO
from cgbench.console import say
from cgbench.cpu import machine_busy_s, pg_backends_cpu_s, proc_cpu_s, self_cpu_s
from cgbench.datasets import connect_pg
from cgbench.httpconn import HttpConn, first_target, ok_response
from cgbench.profiles import TOKENS, Layout, Who
from cgbench.results import Latency, LoadResult, LocustResult, Skipped
from cgbench.servers import Server, connection_peak


@dataclass(frozen=True)
class _CpuMark:
    """CPU seconds used so far by the gateway, its PostgreSQL backends, this process and
    the whole machine."""

    gateway: float
    pg: float
    me: float
    machine: float

    @classmethod
    def take(cls, pid: int, pg_dbs: frozenset[str]) -> _CpuMark:
        return cls(proc_cpu_s(pid), pg_backends_cpu_s(pg_dbs), self_cpu_s(), machine_busy_s())


async def load(
    server: Server,
    who: Who,
    limit: int,
    clients: int,
    duration_s: float,
    warmup_s: float,
    pg_dbs: frozenset[str],
) -> LoadResult:
    """``clients`` closed-loop clients for warmup + duration; counts the window only.

    Each request carries a distinct ``bench_nonce`` parameter (ignored by the API at 2.1) so
    identical concurrent requests are not coalesced into one fan-out.
    """
    counter = itertools.count()
    base = first_target(who, limit, "&bench_nonce=")
    token = TOKENS[who]
    t0 = time.perf_counter()
    w0, w1 = t0 + warmup_s, t0 + warmup_s + duration_s
    lat: list[float] = []
    errors = 0
    marks: list[_CpuMark] = []

    async def sample_cpu() -> None:
        await asyncio.sleep(max(0.0, w0 - time.perf_counter()))
        marks.append(_CpuMark.take(server.pid, pg_dbs))
        await asyncio.sleep(max(0.0, w1 - time.perf_counter()))
        marks.append(_CpuMark.take(server.pid, pg_dbs))

    async def client() -> None:
        nonlocal errors
        conn = HttpConn("127.0.0.1", server.port)
        try:
            while True:
                t = time.perf_counter()
                if t >= w1:
                    return
                try:
                    status, headers, _ = await conn.get(f"{base}{next(counter)}", token)
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    conn.close()  # counted below; the next request reconnects
                    status, headers = 0, {}
                done = time.perf_counter()
                if w0 <= done < w1:
                    if ok_response(status, headers):
                        lat.append(done - t)
                    else:
                        errors += 1
        finally:
            conn.close()

    await asyncio.gather(sample_cpu(), *(client() for _ in range(clients)))
    start, end = marks
    n = max(1, len(lat))
    latency = Latency.of(lat)
    return LoadResult(
        rps=len(lat) / duration_s,
        requests=len(lat),
        errors=errors,
        p50=latency.p50,
        p95=latency.p95,
        cpu_gateway_ms=1000 * (end.gateway - start.gateway) / n,
        cpu_pg_ms=1000 * (end.pg - start.pg) / n,
        cpu_client_ms=1000 * (end.me - start.me) / n,
        other_cores=max(
            0.0,
            (end.machine - start.machine)
            - (end.gateway - start.gateway)
            - (end.pg - start.pg)
            - (end.me - start.me),
        )
        / duration_s,
    )


async def plan_clients(layout: Layout, wanted: int) -> tuple[int, str]:
    """The concurrency to load with: ``wanted``, lowered until a loaded sharded gateway's
    connections fit what PostgreSQL has left; and a note when it was lowered."""
    conn = await connect_pg(layout)
    try:
        usable = int(await conn.fetchval("SHOW max_connections")) - int(
            await conn.fetchval("SHOW superuser_reserved_connections")
        )
        others = int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND datname <> ALL($1::text[])",
                layout.all_dbs,
            )
        )
    finally:
        await conn.close()
    margin = 12  # room for other work on the shared server to grow meanwhile
    clients = wanted
    while clients > 1 and others + connection_peak(clients) + margin > usable:
        clients -= 1
    note = ""
    if clients != wanted:
        note = (
            f"concurrency lowered from {wanted} to {clients}: PostgreSQL allows {usable} "
            f"client connections and {others} were in use by other work"
        )
        say(f"WARNING: {note}")
    return clients, note


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


async def run_locust(
    server: Server, seconds: int, clients: int, workdir: Path
) -> LocustResult | Skipped:
    """``scripts/locustfile.py``'s mixed workload, headless, against ``server``."""
    if shutil.which("locust") is None and not _has_module("locust"):
        return Skipped("locust is not installed")
    prefix = workdir / f"locust-{server.name}"
    cmd = [
        *(sys.executable, "-m", "locust", "-f", str(REPO / "scripts" / "locustfile.py")),
        *("--headless", "-u", str(clients), "-r", str(clients), "-t", f"{seconds}s"),
        *("--host", server.url, "--csv", str(prefix), "--only-summary"),
        *("--stop-timeout", "5", "--exit-code-on-error", "0", "--loglevel", "WARNING"),
    ]
    say(f"locust: {server.name}, {clients} users, {seconds} s")
    with open(workdir / f"locust-{server.name}.log", "wb") as logf:  # noqa: ASYNC230 - tiny
        proc = await asyncio.create_subprocess_exec(*cmd, cwd=REPO, stdout=logf, stderr=logf)
        try:
            async with asyncio.timeout(seconds + 60):
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.terminate()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(10):
                        await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()
    stats = Path(f"{prefix}_stats.csv")
    if not stats.is_file():  # noqa: ASYNC240 - a local stat, once
        return Skipped(f"locust wrote no stats (exit {proc.returncode})")
    rows = list(csv.DictReader(stats.read_text().splitlines()))  # noqa: ASYNC240
    agg = next(r for r in rows if r["Name"] == "Aggregated")
    return LocustResult(
        rps=float(agg["Requests/s"]),
        requests=int(agg["Request Count"]),
        failures=int(agg["Failure Count"]),
        p50=float(agg["50%"]),
        p95=float(agg["95%"]),
        by_name={r["Name"]: float(r["Requests/s"]) for r in rows if r["Name"] != "Aggregated"},
    )
