"""``scripts/bench``: parse the flags, run every phase within the profile's time budget,
write docs/bench/single-host.md and the plots, print the ratios; exit 1 on failed requests or rows
that differ between systems."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import gc
import json
import logging
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

import cgbench
from cells.seeding import drop_database
from cgbench import REPO
from cgbench.console import say
from cgbench.datasets import prepare_data
from cgbench.environment import machine_info, server_versions
from cgbench.inprocess import run_inprocess
from cgbench.load import plan_clients, run_locust
from cgbench.offset import run_offset
from cgbench.phases import http_first_pages, http_throughput, http_walks
from cgbench.plots import plots
from cgbench.profiles import FULL, QUICK, SERVER_NAMES, FrontierStore, Layout, ServerName
from cgbench.pyspy import run_profile
from cgbench.ratios import build_ratios, fx
from cgbench.report import write_report
from cgbench.results import CpuProfile, LocustResult, Results, Skipped
from cgbench.servers import Server, Servers, exclusive


@dataclass(frozen=True)
class Options:
    """The command line, typed."""

    quick: bool
    keep: bool
    reuse: bool
    instances: int
    seed: int
    clients: int
    store: Literal["memory", "redis"]
    redis_url: str
    redis_prefix: str
    pg: str
    db_prefix: str
    out: str | None
    json: str | None
    no_locust: bool
    no_profile: bool
    profile_seconds: float | None

    @property
    def frontier_store(self) -> FrontierStore:
        return FrontierStore(self.store, self.redis_url, self.redis_prefix)


async def cleanup_redis(redis_url: str, prefix: str) -> None:
    """Delete the keys the gateways wrote under ``prefix`` (best effort)."""
    try:
        r = Redis.from_url(redis_url, socket_timeout=5)
        try:
            keys = [k async for k in r.scan_iter(match=f"{prefix}*", count=1000)]
            for i in range(0, len(keys), 500):
                await r.delete(*keys[i : i + 500])
        finally:
            await r.aclose()
    except (RedisError, OSError) as exc:
        say(f"WARNING: could not delete the Redis keys {prefix}*: {exc}")


def _server_env(clients: int, store: FrontierStore) -> dict[str, str]:
    env = {
        "CELLGATE_PAGE_CACHE_TTL_S": "0",
        "CELLGATE_COALESCE_LISTINGS": "false",
        "CELLGATE_LOG_LEVEL": "WARNING",
        "CELLGATE_AUTH_MODE": "noauth",
        "CELLGATE_PER_PROJECT_CELLS": "true",
        "CELLGATE_CELL_POOL_SIZE": str(clients),
        "CELLGATE_CELL_POOL_MAX_OVERFLOW": "0",
    }
    if store.url is not None:
        env["CELLGATE_REDIS_URL"] = store.url
    return env


async def main(opts: Options, argv: list[str]) -> int:
    profile = QUICK if opts.quick else FULL
    if opts.instances:
        profile = dataclasses.replace(profile, instances=opts.instances)
    if opts.profile_seconds is not None:
        profile = dataclasses.replace(profile, profile_s=opts.profile_seconds)
    layout = Layout(
        opts.pg.rstrip("/"), opts.db_prefix or ("cg_benchq" if opts.quick else "cg_bench")
    )
    out_root = (
        Path(opts.out)
        if opts.out
        else (Path(tempfile.mkdtemp(prefix="cellgate-bench-quick-")) if opts.quick else REPO)
    )
    workdir = Path(tempfile.mkdtemp(prefix="cellgate-bench-work-"))
    store = opts.frontier_store
    started = time.perf_counter()
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    say(f"profile {profile.name}, databases {layout.prefix}*, output {out_root}, logs {workdir}")
    servers: Servers = {}
    locust: dict[ServerName, LocustResult | Skipped] = {}
    pyspy: CpuProfile | Skipped | None = None
    try:
        async with asyncio.timeout(profile.max_s):
            machine = machine_info()
            services = await server_versions(layout, opts.redis_url)
            data = await prepare_data(layout, profile, opts.seed, opts.reuse)
            say(f"data ready: 8 cells {data.per_cell8}, 1 cell {data.per_cell1}")
            gc.collect()
            inprocess = await run_inprocess(layout, profile, store, not opts.no_profile, workdir)
            offset = await run_offset(layout, profile)

            clients, clients_note = await plan_clients(layout, opts.clients or profile.clients)
            env = _server_env(clients, store)
            for name, api in zip(SERVER_NAMES, (layout.api8, layout.api1), strict=True):
                prefix = f"{opts.redis_prefix}-{name}"
                servers[name] = Server(
                    name, layout.url(api), {**env, "CELLGATE_REDIS_PREFIX": prefix}, workdir
                )
                servers[name].start()
            for s in servers.values():
                await s.wait_ready()
            say(
                f"servers up: sharded {servers['sharded'].url}, "
                f"unsharded {servers['unsharded'].url}"
            )
            http_first = await http_first_pages(servers, profile)
            http_walk = await http_walks(servers, profile)
            throughput = await http_throughput(servers, profile, clients, layout)
            if not opts.no_locust:
                for name in profile.locust_servers:
                    server = await exclusive(servers, name, clients)
                    locust[name] = await run_locust(server, profile.locust_s, clients, workdir)
            if not opts.no_profile:
                server = await exclusive(servers, "sharded", clients)
                pyspy = await run_profile(
                    server, profile.profile_s, clients, workdir, layout.dbs_of("sharded")
                )
            for server in servers.values():
                server.stop()
            server_warnings = {name: server.warnings() for name, server in servers.items()}
    finally:
        for s in servers.values():
            s.stop()
        if not opts.keep:
            say("dropping the bench databases")
            await asyncio.gather(
                *(drop_database(layout.url(db)) for db in layout.all_dbs), return_exceptions=True
            )
        if opts.store == "redis":
            await cleanup_redis(opts.redis_url, opts.redis_prefix)

    results = Results(
        profile=profile,
        command="scripts/bench " + " ".join(argv) if argv else "scripts/bench",
        store_desc=store.describe(),
        clients=clients,
        clients_note=clients_note,
        machine=machine,
        services=services,
        data=data,
        inprocess=inprocess,
        offset=offset,
        http_first=http_first,
        http_walk=http_walk,
        throughput=throughput,
        locust=locust,
        pyspy=pyspy,
        server_warnings=server_warnings,
        runtime_s=time.perf_counter() - started,
        finished=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M"),
        load_before=load_before,
        load_after=" ".join(f"{x:.1f}" for x in os.getloadavg()),
    )
    plot_files = plots(results, out_root / "docs" / "bench")
    report = out_root / "docs" / "bench" / "single-host.md"
    write_report(results, report, plot_files)
    if opts.json:
        dump = json.dumps(dataclasses.asdict(results), indent=1)
        Path(opts.json).write_text(dump)  # noqa: ASYNC240 - at the very end
    say(f"wrote {report} and {len(plot_files)} plots in {out_root / 'docs' / 'bench'}")
    say(f"runtime {results.runtime_s:.0f} s")
    print()
    for group, metric, value, how in build_ratios(results):
        print(f"  {fx(value):>8}  {group}: {metric}  ({how})")
    if results.errors or not results.same_rows:
        say(f"WARNING: {results.errors} failed requests; same rows: {results.same_rows}")
        return 1
    return 0


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description=cgbench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small data, seconds (smoke run)")
    parser.add_argument("--keep", action="store_true", help="keep the bench databases")
    parser.add_argument(
        "--reuse", action="store_true", help="skip seeding when kept databases hold the same plan"
    )
    parser.add_argument("--instances", type=int, default=0, help="override the profile's size")
    parser.add_argument("--seed", type=int, default=42, help="SeedPlan seed")
    parser.add_argument(
        "--clients",
        type=int,
        default=0,
        help="concurrency of the load phases (default 8; 2 with --quick)",
    )
    parser.add_argument(
        "--store",
        choices=("memory", "redis"),
        default="memory",
        help="frontier store of the gateways (default: in-process, as "
        "Settings' default; redis: CELLGATE_REDIS_URL)",
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--redis-prefix", default=f"cgbench{os.getpid()}")
    parser.add_argument(
        "--pg",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server (no database)",
    )
    parser.add_argument("--db-prefix", default="", help="bench database name prefix")
    parser.add_argument(
        "--out",
        help="directory for docs/bench/single-host.md and its plots "
        "(default: the repo; a temporary directory with --quick)",
    )
    parser.add_argument("--json", help="also dump the raw results here")
    parser.add_argument("--no-locust", action="store_true")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profiles")
    parser.add_argument(
        "--profile-seconds", type=float, help="py-spy profile length (default 10; 0 with --quick)"
    )
    args = parser.parse_args(argv)
    for host in (urlsplit(args.pg).hostname, urlsplit(args.redis_url).hostname):
        if host not in ("127.0.0.1", "localhost"):
            parser.error("the bench only loads 127.0.0.1")
    return Options(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Options)})


def run() -> None:
    argv = sys.argv[1:]
    opts = parse_args(argv)
    # Settings() reads CELLGATE_* from the environment: keep the caller's shell out of the run.
    for name in [n for n in os.environ if n.startswith("CELLGATE_")]:
        del os.environ[name]
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        loop = runner.get_loop()

        async def guarded() -> int:
            task = asyncio.current_task()
            assert task is not None
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
            return await main(opts, argv)

        code = runner.run(guarded())
    sys.exit(code)


if __name__ == "__main__":
    run()
