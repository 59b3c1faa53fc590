"""``scripts/scalebench``: the scale run (issue #10), every phase in one run, one report.

    scripts/scalebench            # 1,000,000 instances over 1/4/8/32 cells (~1 hour)
    scripts/scalebench --quick    # 20,000 instances, short phases (a few minutes)
    scripts/scalebench --pg private            # on its own server (scale/privatepg.py)
    scripts/scalebench --pg private --prepare-only   # seed the data sets and stop
    scripts/scalebench --no-mariadb   # without the MariaDB phase (scale/mariadb.py)

Data sets are kept and reused by default (``--fresh`` seeds again); the report goes to
``--out`` (default: ``docs/bench/scale/`` and ``BENCHMARKS.md`` for a full run, a
temporary directory for ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import logging
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cells.seeding import SeedPlan
from cgbench import REPO
from cgbench.console import say
from cgbench.environment import machine_info
from cgbench.scale import mariadb, mariadbdata, phases, privatepg
from cgbench.scale.data import DataSet, pg_settings, prepare
from cgbench.scale.inproc import render_cost, strategies
from cgbench.scale.network import calibrate, proxied
from cgbench.scale.report import write_report
from cgbench.scale.results import Remote, ScaleResults, figures
from cgbench.scale.smallpages import small_pages
from cgbench.soak import run_soak
from cgbench.soakstats import SoakResult


@dataclass(frozen=True)
class Options:
    """The command line, typed."""

    quick: bool
    instances: int
    layouts: tuple[int, ...]
    pg: str
    prefix: str
    fresh: bool
    doctor: bool
    delays_ms: tuple[float, ...]
    clients: int
    seconds: float
    samples: int
    soak_s: int
    redis_url: str | None
    out: Path
    prepare_only: bool
    mariadb: bool
    mariadb_dir: Path
    mariadb_port: int


def _options(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--instances", type=int)
    p.add_argument("--layouts", default="1,4,8,32", help="cell counts (1: unsharded)")
    p.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432",
        help="server URL, or 'private': start the benchmark's own server (privatepg.py)",
    )
    p.add_argument("--pg-dir", type=Path, default=privatepg.DEFAULT_DIR)
    p.add_argument("--pg-port", type=int, default=privatepg.DEFAULT_PORT)
    p.add_argument("--prepare-only", action="store_true", help="seed the data sets and stop")
    p.add_argument("--prefix", default="cgscale")
    p.add_argument("--fresh", action="store_true", help="seed again even if kept")
    p.add_argument("--no-doctor", action="store_true", help="skip the doctor's index copies")
    p.add_argument("--delays-ms", default="0.25,2", help="remote-cell delays, each way")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--soak-s", type=int)
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--out", type=Path)
    p.add_argument("--no-mariadb", action="store_true", help="skip the MariaDB phase")
    p.add_argument("--mariadb-dir", type=Path, default=mariadbdata.DEFAULT_DIR)
    p.add_argument("--mariadb-port", type=int, default=mariadbdata.DEFAULT_PORT)
    a = p.parse_args(argv)
    quick = bool(a.quick)
    out = a.out or (Path(tempfile.mkdtemp(prefix="scalebench-")) if quick else REPO)
    pg = privatepg.start_private(a.pg_dir, a.pg_port) if a.pg == "private" else a.pg
    return Options(
        quick=quick,
        instances=a.instances or (20_000 if quick else 1_000_000),
        layouts=tuple(int(n) for n in a.layouts.split(",")),
        pg=pg.rstrip("/"),
        prefix=a.prefix,
        fresh=a.fresh,
        doctor=not a.no_doctor,
        delays_ms=tuple(float(d) for d in a.delays_ms.split(",") if d),
        clients=a.clients,
        seconds=3.0 if quick else 15.0,
        samples=10 if quick else 60,
        soak_s=a.soak_s if a.soak_s is not None else (30 if quick else 600),
        redis_url=a.redis_url or None,
        out=out,
        prepare_only=a.prepare_only,
        mariadb=not a.no_mariadb,
        mariadb_dir=a.mariadb_dir,
        mariadb_port=a.mariadb_port,
    )


def _find(data: list[DataSet], cells: int, indexes: str = "nova") -> DataSet | None:
    return next((d for d in data if d.cells == cells and d.indexes == indexes), None)


async def _run(o: Options, workdir: Path) -> ScaleResults:
    started = time.perf_counter()
    plan = SeedPlan(instances=o.instances, seed=42)
    data = await prepare(o.pg, o.prefix, o.layouts, plan, o.doctor, reuse=not o.fresh)
    r = ScaleResults(
        instances=o.instances,
        data=data,
        started=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=dataclasses.asdict(machine_info()) | await pg_settings(o.pg),
    )
    env = phases.Env(workdir, pool=2, redis_url=None, redis_prefix=f"cgscale-{os.getpid()}")
    one, eight, thirty_two = _find(data, 1), _find(data, 8), _find(data, 32)
    for indexes in ("nova", "doctor"):
        sets = [d for d in data if d.indexes == indexes]
        if not sets:
            continue
        r.local[indexes] = await phases.first_page_latency(
            env, sets, (100, 1000), o.samples, warmup=5
        )
        deep_sets = [d for d in sets if d.cells == 8]
        if one is not None and deep_sets:
            depth = min(500_000, one.visible // 2)
            r.deep[indexes] = await phases.deep_pages(env, deep_sets, one, depth, 100, o.samples)
    walk_sets = [d for d in (one, eight, thirty_two) if d is not None]
    walk_env = phases.Env(workdir, pool=2, redis_url=o.redis_url, redis_prefix=env.redis_prefix)
    r.walks = await phases.walks(walk_env, walk_sets, f"{o.pg}/postgres", 1000, rss_every=20)
    if one is not None and eight is not None and o.redis_url:
        r.small = await small_pages(walk_env, eight, one, o.samples)
    loaded = phases.Env(workdir, pool=o.clients, redis_url=None, redis_prefix=env.redis_prefix)
    for d in (one, eight):
        if d is not None:
            r.throughput[d.name] = await phases.throughput(loaded, d, o.clients, o.seconds)
    if eight is not None:
        r.freeze = await phases.freeze(loaded, eight, o.clients, o.seconds)
        # As many connections per cell and worker as clients: the pool must never be
        # what limits a run (2 workers x 8 cells x 16 = 256 of the server's 400).
        wide = dataclasses.replace(loaded, pool=2 * o.clients)
        r.workers = await phases.workers(wide, eight, 2 * o.clients, o.seconds)
        for limit in (100, 1000):
            r.render.append(await render_cost(eight, limit, reps=o.samples))
    if one is not None and eight is not None:
        for delay in o.delays_ms:
            r.remote.append(await _remote(o, env, one, eight, delay))
    if eight is not None and o.soak_s > 0:
        r.soak = await _soak(o, eight, workdir)
    if o.mariadb:
        await _mariadb(o, r, plan, env)
    r.took_s = time.perf_counter() - started
    return r


async def _remote(
    o: Options, env: phases.Env, one: DataSet, eight: DataSet, delay_ms: float
) -> Remote:
    """First pages with every cell (and the unsharded database) ``delay_ms`` away each way,
    and the Nova-style lister against the gateway in-process on the same remote cells."""
    added = calibrate(delay_ms / 1000)
    say(f"remote cells: {delay_ms:g} ms each way (the proxy adds {added:.2f} ms a round trip)")
    with proxied(eight, delay_ms / 1000) as far8, proxied(one, delay_ms / 1000) as far1:
        per_set = {eight.name: far8.env, one.name: far1.env}
        first = await phases.first_page_latency(
            env, [eight, one], (100, 1000), o.samples, 3, per_set
        )
        walk_pages = 5 if o.quick else 20
        nova = await strategies(eight, 100, max(5, o.samples // 3), walk_pages, far8.cells)
    return Remote(delay_ms, added, first, nova)


async def _mariadb(o: Options, r: ScaleResults, plan: SeedPlan, env: phases.Env) -> None:
    """The MariaDB phase (scale/mariadb.py); a reason in ``r.skipped`` when it cannot run."""
    try:
        r.mariadb = await mariadb.run(
            r.data, plan, env, o.redis_url, o.samples, o.mariadb_dir, o.mariadb_port, not o.fresh
        )
    except (OSError, RuntimeError) as exc:  # ServerError (no mariadbd) is a RuntimeError
        say(f"MariaDB phase not run: {exc}")
        r.skipped["MariaDB phase"] = str(exc).splitlines()[0]


async def _soak(o: Options, data: DataSet, workdir: Path) -> SoakResult:
    """Mixed users at saturation on the 8-cell stack with Redis (scripts/locust_soak.py)."""
    env = phases.Env(workdir, pool=o.clients, redis_url=o.redis_url, redis_prefix="cgscale-soak")
    async with phases.servers(env, [data]) as (server,):
        say(f"soak: {o.soak_s} s, {o.clients} users, {data.name}, Redis")
        return await asyncio.to_thread(
            run_soak, server.url, server.pid, o.soak_s, o.clients, workdir
        )


def main(argv: list[str] | None = None) -> int:
    o = _options(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    for name in [n for n in os.environ if n.startswith("CELLGATE_")]:
        del os.environ[name]  # the gateways get exactly the run's settings
    if o.prepare_only:
        plan = SeedPlan(instances=o.instances, seed=42)
        data = asyncio.run(prepare(o.pg, o.prefix, o.layouts, plan, o.doctor, reuse=not o.fresh))
        for d in data:
            say(f"  {d.name}: {d.cells} cells, {d.indexes} indexes, {d.visible:,} visible")
        if o.mariadb:  # copied to MariaDB too, so that the timed run reuses them
            args = (data, plan, o.mariadb_dir, o.mariadb_port, not o.fresh)
            asyncio.run(mariadb.prepare(*args))
        return 0
    with tempfile.TemporaryDirectory(prefix="scalebench-work-") as tmp:
        results = asyncio.run(_run(o, Path(tmp)))
        report = write_report(results, o.out, quick=o.quick, workdir=Path(tmp))
    say(f"report: {report}")
    for f in figures(results):
        verdict = {True: "met", False: "MISSED", None: "report"}[f.met]
        say(f"  {f.key}: {f.value:.2f}× (goal {f.goal}) {verdict} — {f.detail}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
