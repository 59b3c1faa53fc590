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
from collections.abc import Callable
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


@dataclass(frozen=True)
class Load:
    """Closed-loop throughput of one target."""

    rps: float
    requests: int
    errors: int
    latency: Latency


async def closed_loop(
    server: Server,
    target: Callable[[int], str],
    clients: int,
    seconds: float,
    warmup_s: float,
    token: str | None = TOKENS["admin"],
    accept: Callable[[int, dict[str, str]], bool] = ok_response,
) -> Load:
    """``clients`` connections asking ``target(i)`` back to back for ``warmup_s`` +
    ``seconds``; only answers completed within the window count."""
    counter = itertools.count()
    start = time.perf_counter()
    window = (start + warmup_s, start + warmup_s + seconds)
    latencies: list[float] = []
    errors = 0

    async def client() -> None:
        nonlocal errors
        conn = HttpConn("127.0.0.1", server.port)
        try:
            while (t := time.perf_counter()) < window[1]:
                try:
                    status, headers, _ = await conn.get(target(next(counter)), token)
                    ok = accept(status, headers)
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    conn.close()
                    ok = False
                done = time.perf_counter()
                if window[0] <= done < window[1]:
                    if ok:
                        latencies.append(done - t)
                    else:
                        errors += 1
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return Load(len(latencies) / seconds, len(latencies), errors, Latency.of(latencies))


async def load(
    server: Server,
    who: Who,
    limit: int,
    clients: int,
    duration_s: float,
    warmup_s: float,
    pg_dbs: frozenset[str],
) -> LoadResult:
    """:func:`closed_loop` on ``who``'s first page at ``limit``, with the CPU the gateway,
    its PostgreSQL backends, this process and the machine spent in the window.

    Each request carries a distinct ``bench_nonce`` parameter; the gateway strips it at 2.1
    (as Nova does), so it is the benches' settings (coalescing and the page cache off) that
    make every request its own fan-out.
    """
    base = first_target(who, limit, "&bench_nonce=")
    marks: list[_CpuMark] = []
    t0 = time.perf_counter()

    async def sample_cpu() -> None:
        for at in (t0 + warmup_s, t0 + warmup_s + duration_s):
            await asyncio.sleep(max(0.0, at - time.perf_counter()))
            marks.append(_CpuMark.take(server.pid, pg_dbs))

    _, done = await asyncio.gather(
        sample_cpu(),
        closed_loop(server, lambda i: f"{base}{i}", clients, duration_s, warmup_s, TOKENS[who]),
    )
    start, end = marks
    n = max(1, done.requests)
    return LoadResult(
        rps=done.rps,
        requests=done.requests,
        errors=done.errors,
        p50=done.latency.p50,
        p95=done.latency.p95,
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
