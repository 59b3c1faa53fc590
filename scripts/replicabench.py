#!/usr/bin/env python3
"""Replicas behind HAProxy with one cell frozen: how many requests waited for the cell's
deadline, with shared breakers and without (README: Shared breakers; BENCHMARKS.md).

    python scripts/replicabench.py [--replicas 3] [--cells 8] [--instances 8000]
        [--clients 6] [--seconds 30] [--cell-timeout 1] [--cooldown 5] [--out FILE.json]

The API database and every cell but the last live on ``--pg`` (the shared server,
databases ``<prefix>_api``, ``<prefix>_cellN``); the last cell on a private PostgreSQL
server of its own (``scripts/pgserver.py``), so that it can be frozen (SIGSTOP: a hung
host). For each mode (sharing off: ``CELLGATE_BREAKER_SHARE_INTERVAL_S=0``; on: the
default), ``--replicas`` fresh ``cellgate serve`` processes with Redis behind Debian's
HAProxy and the operator's snippet (``scripts/haproxyrun.py``); once HAProxy answers, the
cell is frozen and ``--clients`` loops list ``/v2.1/servers?all_tenants=1`` through HAProxy
for ``--seconds``. A request *waited* when it took at least 90% of the cell deadline;
the replicas' ``/metrics`` give the cell calls that timed out, those skipped by an open
breaker, and the openings shared. The page cache is off, so every request reaches the
cells. Prints a Markdown table (the figures for BENCHMARKS.md). Needs root (the private
server runs as ``postgres``), Redis and ``haproxy``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the packages, run as a script
from haproxyrun import HaProxy
from pgserver import PgServer, Template, find_bindir, own_dir
from serverproc import free_port

from cells.seeding import SeedCell, SeedPlan, reset_database, seed

__all__ = ["ModeResult", "main"]

ROOT = Path(__file__).resolve().parents[1]
LIST = "/v2.1/servers?all_tenants=1&limit=20"
HEADERS = {"X-Auth-Token": "admin:admin"}
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Options:
    replicas: int
    cells: int
    instances: int
    clients: int
    seconds: float
    cell_timeout_s: float
    cooldown_s: float
    pg: str
    redis: str
    prefix: str
    out: Path | None


@dataclass(frozen=True)
class ModeResult:
    """One mode's figures."""

    mode: str
    requests: int
    waited: int  # requests that took >= 90% of the cell deadline
    partial: int  # answers naming the frozen cell in X-Cells-Unavailable
    errors: int  # answers other than 200
    cell_timeouts: int  # the replicas' calls to the frozen cell that timed out
    cell_skipped: int  # the replicas' calls skipped by an open breaker
    shares_sent: int
    shares_received: int
    outcomes: dict[str, int]  # the frozen cell's outcomes in the replicas' listings
    p50_ms: float
    p99_ms: float


def _gateway_env(opts: Options, api_url: str, shared: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLGATE_")}
    prefix = f"{opts.prefix}-{'shared' if shared else 'alone'}-{time.time_ns()}"
    return {
        **env,
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        "CELLGATE_API_DATABASE_URL": api_url,
        "CELLGATE_AUTH_MODE": "noauth",
        "CELLGATE_REDIS_URL": opts.redis,
        "CELLGATE_REDIS_PREFIX": prefix,
        "CELLGATE_CELL_TIMEOUT_S": str(opts.cell_timeout_s),
        "CELLGATE_CELL_CONNECT_TIMEOUT_S": str(opts.cell_timeout_s),
        "CELLGATE_BREAKER_COOLDOWN_S": str(opts.cooldown_s),
        "CELLGATE_BREAKER_SHARE_INTERVAL_S": "0.25" if shared else "0",
        "CELLGATE_PAGE_CACHE_TTL_S": "0",
        "CELLGATE_LOG_LEVEL": "WARNING",
    }


@contextmanager
def _replica(port: int, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[str]]:
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,
        )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        line = process.stdout.readline()
        while "serving on" not in line:
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"cellgate serve did not start: {log.read_text()[-2000:]}")
            line = process.stdout.readline()
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _samples(port: int, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    ]


async def _load(url: str, clients: int, seconds: float, cell: str) -> list[tuple[float, int, bool]]:
    """(latency s, status, names ``cell``) per request, ``clients`` loops for ``seconds``."""
    seen: list[tuple[float, int, bool]] = []
    stop_at = time.monotonic() + seconds

    async def loop(client: httpx.AsyncClient) -> None:
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            response = await client.get(LIST, headers=HEADERS)
            elapsed = time.perf_counter() - started
            named = cell in response.headers.get("X-Cells-Unavailable", "").split(",")
            seen.append((elapsed, response.status_code, named))

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await asyncio.gather(*(loop(client) for _ in range(clients)))
    return seen


def _wait_answering(url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            if httpx.get(url + LIST, headers=HEADERS, timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"HAProxy at {url} never answered a listing")
        time.sleep(0.2)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def run_mode(
    opts: Options, api_url: str, frozen: PgServer, cell: str, shared: bool, work: Path
) -> ModeResult:
    """Fresh replicas and HAProxy, the cell frozen, the load; the figures."""
    env = _gateway_env(opts, api_url, shared)
    ports = [free_port() for _ in range(opts.replicas)]
    with ExitStack() as stack:
        for i, port in enumerate(ports, 1):
            stack.enter_context(_replica(port, env, work / f"replica{i}.log"))
        lb = stack.enter_context(HaProxy(free_port(), [("127.0.0.1", p) for p in ports]))
        _wait_answering(lb.url)
        frozen.freeze()
        try:
            seen = asyncio.run(_load(lb.url, opts.clients, opts.seconds, cell))
            outcomes = "cellgate_cell_outcomes_total"
            shares = "cellgate_cell_breaker_shares_total"

            def total(name: str, **labels: str) -> int:
                found = (_samples(p, name, cell=cell, **labels) for p in ports)
                return int(sum(value for samples in found for _, value in samples))

            by_outcome: dict[str, int] = {}
            for port in ports:
                for labels, value in _samples(port, outcomes, cell=cell):
                    by_outcome[labels["outcome"]] = by_outcome.get(labels["outcome"], 0) + int(
                        value
                    )

            return ModeResult(
                mode="shared" if shared else "alone",
                requests=len(seen),
                waited=sum(1 for s in seen if s[0] >= 0.9 * opts.cell_timeout_s),
                partial=sum(1 for s in seen if s[2]),
                errors=sum(1 for s in seen if s[1] != 200),
                cell_timeouts=total(outcomes, outcome="timeout"),
                cell_skipped=total(outcomes, outcome="skipped"),
                shares_sent=total(shares, direction="sent"),
                shares_received=total(shares, direction="received"),
                p50_ms=_percentile([s[0] for s in seen], 0.5) * 1000,
                p99_ms=_percentile([s[0] for s in seen], 0.99) * 1000,
                outcomes=by_outcome,
            )
        finally:
            frozen.thaw()


async def _seed(opts: Options, frozen: PgServer) -> str:
    api_url = f"{opts.pg}/{opts.prefix}_api"
    urls = [f"{opts.pg}/{opts.prefix}_cell{i}" for i in range(1, opts.cells)]
    urls.append(frozen.database_url(f"{opts.prefix}_cell{opts.cells}"))
    targets = [SeedCell(f"cell{i}", url) for i, url in enumerate(urls, 1)]
    await asyncio.gather(*(reset_database(u) for u in [api_url, *urls]))
    plan = SeedPlan(instances=opts.instances, seed=3, empty_cells=0, cell_ratio=1.0)
    await seed(api_url, targets, plan, progress=False)
    return api_url


def table(results: Sequence[ModeResult], opts: Options) -> str:
    """The Markdown table for BENCHMARKS.md."""
    head = (
        f"{opts.replicas} replicas behind HAProxy, 1 of {opts.cells} cells frozen, "
        f"{opts.clients} clients for {opts.seconds:g} s, cell deadline "
        f"{opts.cell_timeout_s:g} s, cool-down {opts.cooldown_s:g} s\n\n"
        "| breakers | requests | waited for the deadline | cell calls timed out | "
        "skipped (breaker open) | news sent / received | p50 ms | p99 ms |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = [
        f"| {r.mode} | {r.requests} | {r.waited} | {r.cell_timeouts} | {r.cell_skipped} | "
        f"{r.shares_sent} / {r.shares_received} | {r.p50_ms:.1f} | {r.p99_ms:.1f} |"
        for r in results
    ]
    notes = [f"- {r.mode}: the frozen cell's outcomes {r.outcomes}" for r in results]
    return head + "\n".join(rows) + "\n\n" + "\n".join(notes) + "\n"


def _options(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--instances", type=int, default=8000)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--cell-timeout", type=float, default=1.0)
    parser.add_argument("--cooldown", type=float, default=5.0)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--prefix", default="replicabench")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    a = parser.parse_args(argv)
    if a.cells < 2 or a.replicas < 1:
        parser.error("--cells must be at least 2, --replicas at least 1")
    return Options(
        a.replicas, a.cells, a.instances, a.clients, a.seconds, a.cell_timeout, a.cooldown,
        a.pg, a.redis, a.prefix, a.out,
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    opts = _options(argv)
    with tempfile.TemporaryDirectory(prefix="cellgate-replicabench-") as tmp:
        root = own_dir(Path(tmp))
        bindir = find_bindir()
        frozen = PgServer(
            datadir=root / "frozen",
            port=free_port(),
            sockdir=own_dir(root / "sock"),
            logfile=root / "frozen.log",
            bindir=bindir,
        )
        Template(root / "template", {"fsync": "off"}, bindir).copy_to(frozen.datadir)
        frozen.start()
        try:
            api_url = asyncio.run(_seed(opts, frozen))
            cell = f"cell{opts.cells}"
            results = [
                run_mode(opts, api_url, frozen, cell, shared, root) for shared in (False, True)
            ]
        finally:
            frozen.stop("immediate")
    print(table(results, opts))
    if opts.out is not None:
        opts.out.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
