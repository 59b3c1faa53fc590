"""``scripts/novabench``: the real nova-api 34.0.0 ÷ cellgate on the same databases.

Every figure from one run (see :mod:`cgbench.novaratio`)::

    scripts/novabench            # 40,000 instances over 8 cells, 2 workers each (~8 min)
    scripts/novabench --quick    # 2,000 instances, few samples (a smoke run)
    scripts/novabench --workers 1 --samples 25

In order: a private PostgreSQL server; Nova's tables and the seeded rows; nova-api and
``cellgate serve``; warm-up; first pages (limits 100 and 1000, summary and detail, an
admin's all-tenants listing and one project's member); marker walks (summary and detail,
both callers); one cell refusing connections. Writes ``docs/bench/nova-api.md`` and
``nova-api.json`` (``--quick``: a temporary directory unless ``--out``), then stops both
servers and the PostgreSQL server and removes its directory. SIGINT and SIGTERM stop the
run the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nova_api

from cells.seeding import SeedPlan
from cgbench import REPO
from cgbench.console import say
from cgbench.environment import machine_info
from cgbench.novaratio.data import (
    NovaDatabases,
    accept,
    count_visible,
    private_server,
    refuse,
    seed_databases,
)
from cgbench.novaratio.figures import DataInfo, Figure, NovaRun, RunInfo
from cgbench.novaratio.measure import ADMIN, MEMBER, Bench, Caller, Endpoint, View, target
from cgbench.novaratio.report import write
from cgbench.novaratio.serve import NOVA_THREADS, Pair, forget, servers
from cgbench.ratios import fmt, fx
from cgbench.scale.data import pg_settings

VIEWS: tuple[View, ...] = ("summary", "detail")
CALLERS: tuple[Caller, ...] = (ADMIN, MEMBER)
LIMITS = (100, 1000)
DOWN_LIMIT = 100


@dataclass(frozen=True)
class Options:
    """The command line, typed."""

    quick: bool
    instances: int
    cells: int
    seed: int
    workers: int
    samples: int
    warmup: int
    walks: int
    walk_pages: int
    walk_limit: int
    microversion: str
    down_cell: str
    redis_url: str
    out: Path
    keep: bool


def _options(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a smoke run (2,000 instances)")
    p.add_argument("--instances", type=int, help="default 40,000 (--quick: 2,000)")
    p.add_argument("--cells", type=int, default=8)
    p.add_argument("--seed", type=int, default=20, help="the seeder's random seed")
    p.add_argument("--workers", type=int, default=2, help="worker processes of each server")
    p.add_argument("--samples", type=int, help="rounds per figure (default 15; --quick 3)")
    p.add_argument("--warmup", type=int, help="warm-up rounds (default 2; --quick 1)")
    p.add_argument("--walks", type=int, help="walks per walk figure (default 3; --quick 1)")
    p.add_argument("--walk-pages", type=int, default=20)
    p.add_argument("--walk-limit", type=int, default=100)
    p.add_argument("--microversion", default="2.1")
    p.add_argument("--down-cell", default="cell2", help="the cell that refuses connections")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--out", type=Path, help="default docs/bench (--quick: a temporary dir)")
    p.add_argument("--keep", action="store_true", help="keep the logs and PostgreSQL's dir")
    a = p.parse_args(argv)
    quick = bool(a.quick)
    out = a.out or (Path(tempfile.mkdtemp(prefix="novabench-")) if quick else REPO / "docs/bench")
    down = int(str(a.down_cell).removeprefix("cell") or 0)
    if not 1 <= down <= a.cells:
        p.error(f"--down-cell must name one of cell1..cell{a.cells}")
    return Options(
        quick=quick,
        instances=a.instances or (2_000 if quick else 40_000),
        cells=a.cells,
        seed=a.seed,
        workers=a.workers,
        samples=a.samples or (3 if quick else 15),
        warmup=a.warmup or (1 if quick else 2),
        walks=a.walks or (1 if quick else 3),
        walk_pages=a.walk_pages,
        walk_limit=a.walk_limit,
        microversion=a.microversion,
        down_cell=a.down_cell,
        redis_url=a.redis_url,
        out=out,
        keep=a.keep,
    )


async def _data_info(dbs: NovaDatabases, o: Options) -> DataInfo:
    everyone = await asyncio.gather(*(count_visible(u) for u in dbs.cell_urls))
    project = await asyncio.gather(*(count_visible(u, MEMBER.project) for u in dbs.cell_urls))
    down = int(o.down_cell.removeprefix("cell")) - 1
    return DataInfo(
        instances=o.instances,
        per_cell=tuple(total for total, _ in everyone),
        visible=sum(visible for _, visible in everyone),
        project=MEMBER.project,
        project_visible=sum(visible for _, visible in project),
        down_cell=o.down_cell,
        down_cell_visible=everyone[down][1],
    )


def _said(f: Figure) -> Figure:
    n, c = f.nova.latency.p50, f.cellgate.latency.p50
    say(f"  nova-api {fmt(n)} ms, cellgate {fmt(c)} ms: {fx(f.ratio)} {f.nova.statuses} "
        f"{f.cellgate.statuses}")  # fmt: skip
    return f


async def _measure(pair: Pair, dbs: NovaDatabases, o: Options) -> list[Figure]:
    endpoints = [Endpoint("nova-api", pair.nova_port), Endpoint("cellgate", pair.cellgate.port)]
    bench = Bench(endpoints, o.microversion)
    firsts = [(v, c, limit) for c in CALLERS for v in VIEWS for limit in LIMITS]
    out: list[Figure] = []
    try:
        say(f"warm-up: {o.warmup} rounds of {len(firsts)} first pages")
        await bench.warm([(target(v, c, limit), c) for v, c, limit in firsts], o.warmup, o.workers)
        for view, caller, limit in firsts:
            label = f"{view}, {caller.label}, limit {limit}"
            say(f"first page: {label}")
            path = target(view, caller, limit)
            out.append(_said(await bench.compare("first page", label, path, caller, o.samples)))
        for caller in CALLERS:
            for view in VIEWS:
                label = f"{view}, {caller.label}"
                say(f"walk: {label}, {o.walk_pages} pages of {o.walk_limit}")
                first = target(view, caller, o.walk_limit)
                walk = await bench.walks(label, first, caller, o.walk_pages, o.walks)
                out.append(_said(walk))
        say(f"one cell down: {o.down_cell} refuses connections")
        await refuse(dbs.base, dbs.cell_database(o.down_cell))
        try:
            for caller in CALLERS:
                for view in VIEWS:
                    label = f"{view}, {caller.label}, limit {DOWN_LIMIT}"
                    say(f"one cell down: {label}")
                    path = target(view, caller, DOWN_LIMIT)
                    figure = await bench.compare("one cell down", label, path, caller, o.samples)
                    out.append(_said(figure))
        finally:
            await accept(dbs.base, dbs.cell_database(o.down_cell))
    finally:
        bench.close()
    return out


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


async def run(o: Options, command: str) -> NovaRun:
    """The whole run; every server it started is stopped when it returns or raises."""
    started, t0, load_before = dt.datetime.now(dt.UTC), time.perf_counter(), _load()
    nova_python = (await asyncio.to_thread(nova_api.install, os.environ)) / "bin" / "python"
    prefix = f"novabench-{os.getpid()}"
    logdir = Path(tempfile.mkdtemp(prefix="cellgate-novabench-logs-"))
    with private_server(keep=o.keep) as pg:
        say(f"PostgreSQL on {pg.url}; logs in {logdir}")
        dbs = NovaDatabases(pg.url, o.cells)
        t_seed = time.perf_counter()
        say(f"seeding {o.instances:,} instances into {o.cells} cells (Nova's tables)")
        await seed_databases(dbs, nova_python, SeedPlan(instances=o.instances, seed=o.seed))
        seed_s = time.perf_counter() - t_seed
        data = await _data_info(dbs, o)
        say(f"  seeded in {seed_s:.0f} s: {data.per_cell}, {data.visible:,} listed")
        postgresql = await pg_settings(pg.url)
        try:
            async with servers(dbs, o.workers, logdir, o.redis_url, prefix) as pair:
                say(f"nova-api on {pair.nova_url}, cellgate on {pair.cellgate.url}")
                figures = await _measure(pair, dbs, o)
        finally:
            await forget(o.redis_url, prefix)
    if not o.keep:  # kept when the run failed: its logs say why
        shutil.rmtree(logdir, ignore_errors=True)
    info = RunInfo(
        started=started.strftime("%Y-%m-%d %H:%M"),
        elapsed_s=time.perf_counter() - t0,
        command=command,
        workers=o.workers,
        nova_threads=NOVA_THREADS,
        microversion=o.microversion,
        samples=o.samples,
        warmup=o.warmup,
        walks=o.walks,
        walk_pages=o.walk_pages,
        walk_limit=o.walk_limit,
        machine=machine_info(),
        postgresql=postgresql,
        data=data,
        load_before=load_before,
        load_after=_load(),
        seed_s=seed_s,
    )
    return NovaRun(info, tuple(figures))


async def _main(o: Options, command: str) -> int:
    task = asyncio.current_task()
    assert task is not None
    # SIGTERM cancels the run like Ctrl-C does: every finally block stops what it started.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    result = await run(o, command)
    markdown, data = write(result, o.out)
    say(f"wrote {markdown} and {data}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = shlex.join(["scripts/novabench", *args])
    return asyncio.run(_main(_options(args), command))


if __name__ == "__main__":
    sys.exit(main())
