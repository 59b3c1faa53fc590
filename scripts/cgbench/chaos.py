"""``scripts/chaos``: faults under load (issue #22).

    scripts/chaos [--seconds 720] [--cells 8] [--instances 20000] [--seed 22] [--out DIR]
                  [--report docs/bench/chaos.md] [--kinds cell-stop,worker-kill,...]
                  [--writes 0]

1. ``scripts/devstack up`` in a private directory: N PostgreSQL cells behind the delay
   proxy, the API database, Redis and ``cellgate serve --workers 2``.
2. The oracle reads every cell directly.
3. For ``--seconds``: locust's saturation soak (``cgbench.soak``), 4 walkers doing full
   marker walks, a probe, a monitor of ``/metrics``, breakers per worker and RSS, and the
   seeded fault schedule (printed first) after a fault-free warm-up; with ``--writes R``,
   a writer inserting and soft-deleting instances R times a second (``cgbench.chaoswrites``).
4. The walks are checked against the oracle (read again: it must not have changed); with
   writes, against each row's history instead (``cgbench.chaoschurn``): rows live for the
   whole walk once and in order, changed ones at most once. The gateway's connections to
   each cell are counted once the load stopped.
5. ``chaos.json`` (everything recorded and the figures), ``chaos.png`` and, with
   ``--report``, the markdown report beside its plot; ``scripts/devstack down --purge``
   (``--keep`` leaves the stack running).

Exit status 1 when a zero-count figure is not zero (500s, 503s without ``Retry-After``,
unnamed gaps, wrong stubs, duplicates or gaps in clean walks, abandoned walks).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import dataclasses
import json
import pickle
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cgbench.chaoscheck import WalkCheck, check_walk, read_oracle
from cgbench.chaoschurn import check_churn_walk, history
from cgbench.chaosfaults import FaultRunner
from cgbench.chaosfigures import Figures, Rate, add_write_figures, figures
from cgbench.chaosmon import monitor
from cgbench.chaosplan import FaultKind, describe, make_schedule
from cgbench.chaosplot import plot_chaos
from cgbench.chaosreport import ChaosRun, summarize, violations, write_report
from cgbench.chaosstack import Stack, gateway_connections
from cgbench.chaoswalk import WalkRecord, probe, walker
from cgbench.chaoswrites import read_final, write
from cgbench.console import say
from cgbench.soak import _json_safe, run_soak
from cgbench.soakstats import parse_counts

WALKERS = 4
WALK_FINISH_S = 180.0
# Left out of the report's JSON (chaos.json has them).
_SAMPLED = frozenset({"samples", "probes", "mon", "soak", "writes"})
SETTINGS = {
    "CELLGATE_CELL_TIMEOUT_S": "2.0",
    "CELLGATE_CELL_CONNECT_TIMEOUT_S": "1.5",
    "CELLGATE_REQUEST_BUDGET_S": "8.0",
    "CELLGATE_BREAKER_COOLDOWN_S": "5.0",
    "CELLGATE_CELL_POOL_SIZE": "5",
    "CELLGATE_CELL_POOL_MAX_OVERFLOW": "5",
    "CELLGATE_LOG_FORMAT": "json",
}


@dataclass(frozen=True)
class Options:
    seconds: int
    warmup_s: float
    cells: int
    instances: int
    users: int
    workers: int
    seed: int
    kinds: tuple[FaultKind, ...]
    min_fault_s: float
    max_fault_s: float
    overlap: float
    tail_s: float  # fault-free at the end: every fault's recovery is seen
    port_base: int
    gateway_port: int
    out: Path
    report: Path | None
    keep: bool
    writes: float  # writes a second during the load; 0: none
    dump: bool
    follow_partial: bool = True  # locust's users go on past a partial page (as clients do)
    rss_baseline: Path | None = None  # a no-fault run's chaos.json: RSS against its peak


def _history_offset(csv_path: Path, t0_wall: float) -> float:
    """Seconds from our t0 to locust's first history row (its clock is the wall clock)."""
    for row in csv.DictReader(csv_path.read_text().splitlines()):
        if row["Name"] == "Aggregated":
            return int(row["Timestamp"]) - t0_wall
    return 0.0


async def _run(o: Options, stack: Stack) -> tuple[ChaosRun, Figures]:
    urls = stack.direct_urls()
    oracle = await read_oracle(urls)
    say(f"chaos: oracle: {oracle.fingerprint[0]} live rows of {oracle.fingerprint[1]}")
    schedule = make_schedule(
        o.seed, o.kinds, stack.cell_names, o.warmup_s, o.seconds - o.tail_s,
        o.min_fault_s, o.max_fault_s, overlap=o.overlap,
    )  # fmt: skip
    say(f"chaos: seed {o.seed}, schedule (seconds from the start of the load):")
    print(describe(schedule), flush=True)
    port = int(stack.state["GATEWAY_PORT"])
    pid = stack.gateway_pid
    timeout_s = float(SETTINGS["CELLGATE_CELL_TIMEOUT_S"])
    runner = FaultRunner(schedule, stack.dir, pid, timeout_s / 2, o.seed)
    stop = asyncio.Event()
    t0, t0_wall = time.monotonic(), time.time()
    soak = asyncio.create_task(
        asyncio.to_thread(
            run_soak, stack.gateway_url, pid, o.seconds, o.users, o.out / "locust",
            follow_partial=o.follow_partial,
        )
    )  # fmt: skip
    mon = asyncio.create_task(monitor(port, pid, str(stack.dir), t0, stop))
    probes = asyncio.create_task(probe(port, t0, stop))
    walkers = [asyncio.create_task(walker(i, port, o.seed, t0, stop)) for i in range(WALKERS)]
    faults = asyncio.create_task(runner.run(t0))
    api_url = stack.state["API_DATABASE_URL"]  # the API database's server itself
    writer = (
        asyncio.create_task(write(o.writes, urls, api_url, oracle, o.seed, t0, stop))
        if o.writes
        else None
    )
    try:
        soaked = await soak
        applied = await faults
    finally:
        stop.set()
        faults.cancel()
        await asyncio.gather(faults, return_exceptions=True)
    async with asyncio.timeout(WALK_FINISH_S):
        walks = [w for ws in await asyncio.gather(*walkers) for w in ws]
    samples, probed = await mon, await probes
    writes = await writer if writer is not None else []
    checked: list[tuple[WalkRecord, WalkCheck | None]]
    if writer is None:
        after = await read_oracle(urls)
        stable = after.fingerprint == oracle.fingerprint
        checked = [
            (w, check_walk(oracle, w.scope.project, w.pages) if not w.abandoned else None)
            for w in walks
        ]
    else:
        final = await read_final(urls)
        story, tally = history(oracle, final, writes)
        stable = tally.unexplained == 0  # every change is one the writer made
        checked = [
            (w, None if w.abandoned else check_churn_walk(
                story, w.scope.project, w.pages, w.started_s, w.ended_s))
            for w in walks
        ]  # fmt: skip
        if o.dump:  # what an investigation needs: the faulted walks, not all of them
            faulted = [w for w, c in checked if c and (c.gaps or c.duplicates or c.stale)]
            blob = pickle.dumps((oracle, final, writes, faulted))
            (o.out / "faulted-walks.pickle").write_bytes(blob)
    await asyncio.sleep(3)  # idle: only pooled connections remain
    connections = await gateway_connections(urls)
    history_csv = o.out / "locust" / "soak_stats_history.csv"
    offset = _history_offset(history_csv, t0_wall)
    # Locust's request mix, on the run's clock: every request, and resumed walk pages.
    text = history_csv.read_text()
    locust_all, resumed = (
        [Rate(ts - t0_wall, n) for ts, n in parse_counts(text, prefix)]
        for prefix in ("", "walk page 2+")
    )
    # Throughput is what was answered: the gateway's 200s (a 503 is quick, not served).
    rates = [Rate(m.t_s, int(m.statuses.get("200", 0))) for m in samples if m.statuses]
    pool = int(SETTINGS["CELLGATE_CELL_POOL_SIZE"]) + int(
        SETTINGS["CELLGATE_CELL_POOL_MAX_OVERFLOW"]
    )
    figs = figures(
        applied=applied, walks=checked, probes=probed, mon=samples, rates=rates,
        locust_failures=soaked.failure_reasons, warmup_s=o.warmup_s, duration_s=o.seconds,
        breaker_bite_s=timeout_s * 2 + 1, connections_after=connections,
        connection_limit=pool * o.workers, oracle_stable=stable,
        locust_all=locust_all, locust_resumed=resumed,
    )  # fmt: skip
    if o.rss_baseline is not None:
        base = json.loads(o.rss_baseline.read_text())["figures"]["rss_peak_kib"]
        figs.rss_no_fault_peak_kib = int(base)
    if writer is not None:
        checks = [c for _, c in checked if c is not None]
        add_write_figures(figs, o.writes, tally, checks, soaked.failure_reasons)
    run = ChaosRun(
        seed=o.seed, seconds=o.seconds, warmup_s=o.warmup_s, cells=o.cells,
        instances=o.instances, live_rows=oracle.fingerprint[0], users=o.users,
        workers=o.workers, walkers=WALKERS, settings=SETTINGS, applied=applied,
        walks=[summarize(w, c) for w, c in checked], samples=[s for w in walks for s in w.samples],
        probes=probed, mon=samples, history_offset_s=offset, soak=soaked,
        writes_per_s=o.writes, writes=writes, follow_partial=o.follow_partial,
    )  # fmt: skip
    return run, figs


def _options(argv: list[str] | None) -> Options:
    p = argparse.ArgumentParser(prog="scripts/chaos", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=720, help="load duration (faults inside)")
    p.add_argument("--warmup", type=float, default=None, help="fault-free start (s)")
    p.add_argument("--cells", type=int, default=8)
    p.add_argument("--instances", type=int, default=20_000)
    p.add_argument("--users", type=int, default=8, help="locust users")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=22)
    p.add_argument("--kinds", default=",".join(k.value for k in FaultKind))
    p.add_argument("--min-fault", type=float, default=10.0)
    p.add_argument("--max-fault", type=float, default=40.0)
    p.add_argument("--overlap", type=float, default=1 / 3, help="share of overlapping faults")
    p.add_argument("--tail", type=float, default=25.0, help="fault-free end (s)")
    p.add_argument("--port-base", type=int, default=27400)
    p.add_argument("--gateway-port", type=int, default=27398)
    p.add_argument("--out", type=Path, default=None, help="chaos.json, chaos.png, locust CSVs")
    p.add_argument("--report", type=Path, default=None, help="write the markdown report")
    p.add_argument("--keep", action="store_true", help="leave the stack running")
    p.add_argument(
        "--dump", action="store_true",
        help="with --writes: pickle the walks with gaps, duplicates or stale rows, the "
        "oracle, the final state and the writes (faulted-walks.pickle)",
    )  # fmt: skip
    p.add_argument(
        "--writes", type=float, default=0.0,
        help="inserts and soft-deletes a second in random cells during the load (0: none)",
    )  # fmt: skip
    p.add_argument(
        "--partial-pages", choices=("follow", "fail"), default="follow",
        help="locust's users on a page naming unavailable cells: follow (an answer; walks go "
        "on, as Nova's clients do) or fail (a failure that ends the walk: the request mix "
        "shifts to first pages while a cell is down; the runs before 2026-12-07)",
    )  # fmt: skip
    p.add_argument(
        "--rss-baseline", type=Path, default=None,
        help="the chaos.json of a run without faults (--kinds '') of the same length and "
        "settings: RSS is then also reported against that run's peak (the issue's goal)",
    )  # fmt: skip
    a = p.parse_args(argv)
    out = a.out or Path(tempfile.mkdtemp(prefix="cellgate-chaos-"))
    return Options(
        seconds=a.seconds, warmup_s=a.warmup if a.warmup is not None else max(20.0, a.seconds / 8),
        cells=a.cells, instances=a.instances, users=a.users, workers=a.workers, seed=a.seed,
        kinds=tuple(FaultKind(k) for k in a.kinds.split(",") if k), min_fault_s=a.min_fault,
        max_fault_s=a.max_fault, overlap=a.overlap, tail_s=a.tail, port_base=a.port_base,
        gateway_port=a.gateway_port, out=out, report=a.report, keep=a.keep, writes=a.writes,
        dump=a.dump, follow_partial=a.partial_pages == "follow", rss_baseline=a.rss_baseline,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    o = _options(argv)
    o.out.mkdir(parents=True, exist_ok=True)
    stack = Stack(o.cells, o.instances, o.workers, o.port_base, o.gateway_port, SETTINGS)
    say(f"chaos: devstack in {stack.dir}, {o.cells} cells, {o.instances} instances")
    try:
        stack.up()
        run, figs = asyncio.run(_run(o, stack))
        shutil.copy(stack.log, o.out / "gateway.log")
    finally:
        if not o.keep:
            stack.down()
    record = {"run": dataclasses.asdict(run), "figures": dataclasses.asdict(figs)}
    (o.out / "chaos.json").write_text(json.dumps(_json_safe(record), indent=1, default=str))
    # Named after the report: a run with writes beside the first (chaos.md: chaos.png).
    png = o.report.with_suffix(".png") if o.report else o.out / "chaos.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    plot_chaos(run, png)
    if o.report is not None:
        write_report(run, figs, o.report, png.name)
        # Beside the report, what it says without the samples (chaos.json has those);
        # not over the full record when the report is written into --out itself.
        brief = {k: v for k, v in record["run"].items() if k not in _SAMPLED}
        summary = {"run": brief, "figures": record["figures"]}
        if o.report.with_suffix(".json").resolve() != (o.out / "chaos.json").resolve():
            o.report.with_suffix(".json").write_text(
                json.dumps(_json_safe(summary), indent=1, default=str)
            )
    bad = violations(figs)
    for line in bad:
        say(f"chaos: FAILED {line}")
    say(f"chaos: wrote {o.out / 'chaos.json'} and {png}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
