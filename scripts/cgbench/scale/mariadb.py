"""The scale run on MariaDB cells (issue #19): the PostgreSQL figures P1a, P1b, P2 and P3,
on the same rows (:mod:`cgbench.scale.mariadbdata`), 8 cells ÷ unsharded, Nova's indexes,
on the benchmark's own ``mariadbd`` (``performance_schema`` on).

- P1a: admin first-page p50 at limit 100 and 1000;
- P1b: mean page p50 over a full walk at limit 1000 (frontier cache in Redis);
- P2: rows the cells' keyset queries *examined* ÷ rows returned, over that walk, from
  ``performance_schema``'s statement digests (``SUM_ROWS_EXAMINED``; rows sent beside it);
- P3: the page at the middle of the admin listing (no cached frontier) ÷ page 1.

``scripts/scalebench`` runs it after the PostgreSQL phases unless ``--no-mariadb``; alone
(it seeds or reuses the PostgreSQL data sets it copies)::

    PYTHONPATH=scripts:. python3 -m cgbench.scale.mariadb --instances 20000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from mariadbserver import MariaDBServer

from cells.seeding import SeedPlan
from cgbench.console import say
from cgbench.results import Latency
from cgbench.scale import data as pgdata
from cgbench.scale import phases
from cgbench.scale.data import DataSet
from cgbench.scale.mariadbdata import (
    DEFAULT_DIR,
    DEFAULT_PORT,
    DigestRows,
    mariadb_settings,
    prepare_mariadb,
    query_one,
    reset_digests,
    start_private,
    statement_digests,
)
from cgbench.scale.measure import Walk, first_pages, walk
from cgbench.scale.results import Figure, ScaleResults, figures

__all__ = ["MariaDBRun", "prepare", "run"]

LAYOUTS = (1, 8)
# Above this many visible rows, the deep page and the walk are sampled (see run).
SMALL = 100_000
DEEP_SAMPLES = 5
WALK_PAGES = 10
_VISIBLE = "deleted = 0 AND (vm_state <> 'soft-delete' OR vm_state IS NULL)"


@dataclass
class MariaDBRun:
    """What the MariaDB phase measured (one 8-cell and one unsharded data set)."""

    data: list[DataSet]
    settings: dict[str, str]
    first: dict[int, dict[str, Latency]] = field(default_factory=dict)  # limit → set name
    depth: int = 0
    deep_first: dict[str, Latency] = field(default_factory=dict)
    deep: dict[str, Latency] = field(default_factory=dict)
    walk_limit: int = 1000
    walk_pages: int = 0  # 0: the full walk
    walks: dict[str, Walk] = field(default_factory=dict)
    digests: dict[str, DigestRows] = field(default_factory=dict)
    took_s: float = 0.0

    @property
    def _walked(self) -> str:
        return f"the first {self.walk_pages} pages" if self.walk_pages else "a full walk"

    def figures(self) -> list[Figure]:
        """P1a, P1b, P2 and P3 on MariaDB (keys end in ``mariadb``)."""
        one, eight = _name(1), _name(8)
        out: list[Figure] = []
        for limit, goal in ((100, "<= 1.5"), (1000, "<= 1.2")):
            lat = self.first.get(limit, {})
            if eight in lat and one in lat:
                out.append(Figure(
                    f"P1a local nova {limit} mariadb",
                    f"MariaDB: first-page p50, 8 cells ÷ unsharded, limit {limit}, local, "
                    "nova indexes", _ratio(lat[eight].p50, lat[one].p50), goal,
                    f"{lat[eight].p50:.1f} / {lat[one].p50:.1f} ms",
                ))  # fmt: skip
        w = self.walks
        if eight in w and one in w:
            out.append(Figure(
                "P1b mariadb", f"MariaDB: mean page p50 over {self._walked} at limit "
                f"{self.walk_limit}, 8 cells ÷ unsharded (frontier cache)",
                _ratio(w[eight].page.p50, w[one].page.p50), "<= 1.15",
                f"{w[eight].page.p50:.1f} / {w[one].page.p50:.1f} ms",
            ))  # fmt: skip
        rows, walked = self.digests.get(eight), w.get(eight)
        if rows is not None and walked is not None and walked.rows:
            out.append(Figure(
                "P2 8 mariadb", "MariaDB: rows the cells' keyset queries examined ÷ rows "
                f"returned, {self._walked}, 8 cells (performance_schema digests)",
                _ratio(rows.keyset_examined, walked.rows), "<= 1.1",
                f"{rows.keyset_examined:,} examined ({rows.keyset_sent:,} sent) / "
                f"{walked.rows:,} rows, {rows.keyset_calls:,} queries",
            ))  # fmt: skip
        if eight in self.deep and eight in self.deep_first:
            out.append(Figure(
                "P3 nova mariadb", f"MariaDB: the page at row {self.depth:,} ÷ page 1, "
                "8 cells, nova indexes",
                _ratio(self.deep[eight].p50, self.deep_first[eight].p50), "<= 1.1",
                f"{self.deep[eight].p50:.1f} / {self.deep_first[eight].p50:.1f} ms",
            ))  # fmt: skip
        return out

    def tables(self, all_figures: list[Figure]) -> list[str]:
        """BENCHMARKS.md's MariaDB section: its column beside PostgreSQL's, then details."""
        by_key = {f.key: f for f in all_figures}
        lines = [
            "### MariaDB cells beside PostgreSQL (same rows, nova indexes)",
            "",
            "Server: "
            + ", ".join(f"{k}: {v}" for k, v in self.settings.items())
            + f". The MariaDB phase took {self.took_s / 60:.1f} min.",
            "",
            "| figure | goal | PostgreSQL | MariaDB | MariaDB values |",
            "|---|---|---:|---:|---|",
        ]
        for f in self.figures():
            pg = by_key.get(f.key.removesuffix(" mariadb"))
            pg_value = f"{pg.value:.2f}×" if pg is not None else "–"
            verdict = {True: "", False: " (missed)", None: ""}[f.met]
            lines.append(
                f"| {f.what.removeprefix('MariaDB: ')} | {f.goal} | {pg_value} "
                f"| **{f.value:.2f}×**{verdict} | {f.detail} |"
            )
        lines += ["", "| data set | limit | p50 ms | p95 ms |", "|---|---:|---:|---:|"]
        for limit, lat in self.first.items():
            for name, latency in lat.items():
                lines.append(f"| {name} | {limit} | {latency.p50:.1f} | {latency.p95:.1f} |")
        lines += [
            "",
            "| data set | pages | rows | page p50 ms | mean ms | keyset rows examined | sent "
            "| keyset queries | side rows examined |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, w in self.walks.items():
            d = self.digests.get(name)
            counts = (
                f"{d.keyset_examined:,} | {d.keyset_sent:,} | {d.keyset_calls:,} "
                f"| {d.side_examined:,}" if d else "– | – | – | –"
            )  # fmt: skip
            lines.append(f"| {name} | {w.pages:,} | {w.rows:,} | {w.page.p50:.1f} "
                         f"| {w.page.mean:.1f} | {counts} |")  # fmt: skip
        return [*lines, ""]


def _name(cells: int) -> str:
    return f"{cells} cell{'s' if cells > 1 else ''}, nova indexes"


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


async def _marker_at(data: DataSet, depth: int) -> str:
    """The uuid just before ``depth`` in the admin order, from the unsharded set."""
    sql = (
        f"SELECT uuid FROM instances WHERE {_VISIBLE} "
        "ORDER BY created_at DESC, CAST(uuid AS BINARY) LIMIT 1 OFFSET %s"
    )
    return str(await query_one(data.cell_urls[0], sql, depth - 1))


async def prepare(
    pg_sets: list[DataSet], plan: SeedPlan, root: Path, port: int, reuse: bool
) -> tuple[MariaDBServer, list[DataSet]]:
    """The private server and the MariaDB twins of the 1- and 8-cell PostgreSQL data sets
    (Nova's indexes), copied unless ``reuse`` finds them."""
    sources = [d for d in pg_sets if d.indexes == "nova" and d.cells in LAYOUTS]
    if {d.cells for d in sources} != set(LAYOUTS):
        raise RuntimeError(f"the MariaDB phase needs the {LAYOUTS} cell layouts")
    server = await asyncio.to_thread(start_private, root, port)
    return server, await prepare_mariadb(sources, server.url, plan, root, reuse)


async def run(
    pg_sets: list[DataSet],
    plan: SeedPlan,
    env: phases.Env,
    redis_url: str | None,
    samples: int,
    root: Path = DEFAULT_DIR,
    port: int = DEFAULT_PORT,
    reuse: bool = True,
) -> MariaDBRun:
    """The MariaDB phase over the 1- and 8-cell PostgreSQL data sets (Nova's indexes)."""
    started = asyncio.get_running_loop().time()
    server, data = await prepare(pg_sets, plan, root, port, reuse)
    one, eight = sorted(data, key=lambda d: d.cells)
    r = MariaDBRun(data, await mariadb_settings(server.url))
    r.first = await phases.first_page_latency(env, [eight, one], (100, 1000), samples, 5)
    r.depth = min(500_000, one.visible // 2)
    marker = await _marker_at(one, r.depth)
    first = phases.ADMIN_FIRST.format(limit=100)
    # Past page 1 MariaDB sorts every row after the position (cells.plan): at scale a
    # page costs seconds, so the deep page gets few samples and the walk a few pages.
    large = one.visible > SMALL
    async with phases.servers(env, [eight, one]) as running:
        deep_n = min(samples, DEEP_SAMPLES) if large else samples
        say(f"MariaDB: the page at row {r.depth:,} vs page 1, limit 100 ({deep_n} samples)")
        r.deep_first = await first_pages(running, first, deep_n, 3 if not large else 1)
        r.deep = await first_pages(running, f"{first}&marker={marker}", deep_n, 1)
    r.walk_pages = WALK_PAGES if large else 0
    walk_env = phases.Env(env.logdir, env.pool, redis_url, env.redis_prefix + "-mariadb")
    for d in (one, eight):
        async with phases.servers(walk_env, [d]) as (gateway,):
            what = f"{r.walk_pages} pages" if r.walk_pages else "full walk"
            say(f"MariaDB: {what}, limit {r.walk_limit}: {d.name} ({d.visible:,} rows)")
            await reset_digests(server.url)
            target = phases.ADMIN_FIRST.format(limit=r.walk_limit)
            r.walks[d.name] = await walk(gateway, target, max_pages=r.walk_pages)
            r.digests[d.name] = await statement_digests(server.url, d.databases[1:])
    r.took_s = asyncio.get_running_loop().time() - started
    return r


def main(argv: list[str] | None = None) -> int:
    """The MariaDB phase alone, with its PostgreSQL data sets (seeded or reused)."""
    from cgbench.scale.report import write_report

    p = argparse.ArgumentParser(description="scalebench's MariaDB phase alone")
    p.add_argument("--instances", type=int, default=20_000)
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--prefix", default="cgscale")
    p.add_argument("--samples", type=int, default=20)
    p.add_argument("--mariadb-dir", type=Path, default=DEFAULT_DIR)
    p.add_argument("--mariadb-port", type=int, default=DEFAULT_PORT)
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    p.add_argument("--fresh", action="store_true")
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for name in [n for n in os.environ if n.startswith("CELLGATE_")]:
        del os.environ[name]
    plan = SeedPlan(instances=a.instances, seed=42)

    async def go(workdir: Path) -> ScaleResults:
        pg_sets = await pgdata.prepare(a.pg, a.prefix, LAYOUTS, plan, False, reuse=not a.fresh)
        env = phases.Env(workdir, 2, None, f"cgscale-{os.getpid()}")
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        r = ScaleResults(a.instances, pg_sets, now, {})
        r.mariadb = await run(pg_sets, plan, env, a.redis_url or None, a.samples,
                              a.mariadb_dir, a.mariadb_port, not a.fresh)  # fmt: skip
        return r

    with tempfile.TemporaryDirectory(prefix="scalebench-mariadb-") as tmp:
        results = asyncio.run(go(Path(tmp)))
        out = Path(tempfile.mkdtemp(prefix="scalebench-mariadb-report-"))
        report = write_report(results, out, quick=True, workdir=Path(tmp))
    say(f"report: {report}")
    for f in figures(results):
        say(f"  {f.key}: {f.value:.2f}× (goal {f.goal}) — {f.detail}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
