"""The small-page walk phase (issue #25): what a walk costs at the page sizes clients mostly
ask for, 8 cells against the same rows unsharded, the two servers alternated request by
request (so a busy machine slows both alike and the ratios hold).

- **P1a** first page p50, admin ``all_tenants`` summary, limit 100 and 1000;
- **P1b** mean page over one project's full walk at limit 100 (:func:`walk_project`: about
  200 pages at any scale), and over the admin walk at limit 1000;
- **P2** cell rows read ÷ rows returned over those walks, from the gateway's own counters
  (``cellgate_cell_rows_fetched``: rows read ahead and never returned are in it), and
  keyset statements per page (``cellgate_cell_queries``).

Both servers use Redis (frontiers are kept between pages, as a deployment keeps them) and
no page cache. Standalone::

    python -m cgbench.scale.smallpages --pg URL --prefix PREFIX --instances N
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from cells.seeding import SeedPlan
from cgbench.console import say
from cgbench.httpconn import HttpConn, body_ids, next_target, ok_response
from cgbench.metrics import metric_total
from cgbench.results import Latency
from cgbench.scale import phases
from cgbench.scale.data import DataSet, prepare
from cgbench.scale.measure import first_pages
from cgbench.servers import Server

__all__ = ["SmallPages", "WalkCost", "small_pages"]

SUMMARY_FIRST = "/v2.1/servers?all_tenants=1&limit={limit}"
PROJECT_FIRST = "/v2.1/servers?limit={limit}"
_VISIBLE = "deleted = 0 AND (vm_state <> 'soft-delete' OR vm_state IS NULL)"
_COUNTERS: tuple[tuple[str, dict[str, str]], ...] = (
    ("cellgate_cell_queries_total", {}),
    ("cellgate_cell_rows_fetched_total", {}),
    ("cellgate_rows_returned_total", {}),
    ("cellgate_read_ahead_total", {"result": "started"}),
    ("cellgate_read_ahead_total", {"result": "awaited"}),
)


@dataclass(frozen=True)
class WalkCost:
    """One server's full walk: page times and what the cells read for it."""

    pages: int
    rows: int
    page: Latency
    statements: float  # keyset statements sent to the cells
    rows_read: float  # rows the cells returned to the gateway (read ahead included)
    rows_returned: float  # rows the gateway returned to the client
    read_aheads: float = 0.0  # read-aheads started
    awaited: float = 0.0  # of them, still running when their next page asked

    @property
    def statements_per_page(self) -> float:
        return self.statements / max(1, self.pages)

    @property
    def read_ratio(self) -> float:
        return self.rows_read / max(1.0, self.rows_returned)


@dataclass(frozen=True)
class SmallPages:
    """The phase's figures, per data set name (``sharded``/``unsharded`` name them)."""

    sharded: str
    unsharded: str
    first: dict[int, dict[str, Latency]]  # limit -> server -> latency
    project: str
    project_walk: dict[str, WalkCost]  # limit 100
    admin_walk: dict[str, WalkCost]  # limit 1000

    def figures(self) -> list[tuple[str, str, float, str, str]]:
        """(key, what, value, goal, detail) per figure of issue #25, 8 cells ÷ unsharded."""
        s, u = self.sharded, self.unsharded
        out: list[tuple[str, str, float, str, str]] = []
        for limit, goal in ((100, "<= 1.25"), (1000, "<= 1.0")):
            p8, p1 = self.first[limit][s].p50, self.first[limit][u].p50
            out.append((
                f"P1a small {limit}", f"first-page p50, admin summary, 8 cells ÷ unsharded, "
                f"limit {limit} (Redis, alternated)", p8 / p1, goal, f"{p8:.1f} / {p1:.1f} ms",
            ))  # fmt: skip
        walks = (
            ("project", f"project {self.project}'s full walk, limit 100", self.project_walk),
            ("admin", "the admin walk, limit 1000", self.admin_walk),
        )
        for key, what, w in walks:
            a, b = w[s], w[u]
            out.append((
                f"P1b small {key}", f"mean page over {what} ({a.rows:,} rows, {a.pages} "
                "pages), 8 cells ÷ unsharded", a.page.mean / b.page.mean, "<= 1.15",
                f"{a.page.mean:.1f} / {b.page.mean:.1f} ms",
            ))  # fmt: skip
            out.append((
                f"P2 small {key}", f"cell rows read ÷ rows returned over {what}, 8 cells "
                "(rows read ahead and never returned included)", a.read_ratio, "<= 1.1",
                f"{a.rows_read:,.0f} / {a.rows_returned:,.0f} rows",
            ))  # fmt: skip
            out.append((
                f"statements small {key}", f"keyset statements per page over {what}, 8 cells "
                "(read-aheads included)", a.statements_per_page, "report",
                f"{a.statements:,.0f} in {a.pages} pages (unsharded "
                f"{b.statements_per_page:.2f})",
            ))  # fmt: skip
        return out


async def _counters(server: Server) -> tuple[float, ...]:
    samples = await server.metrics()
    return tuple(metric_total(samples, name, **labels) for name, labels in _COUNTERS)


async def walk_project(data: DataSet, most: int = 25_000) -> str:
    """The project with the most visible rows, of those with at most ``most`` (a walk of
    about ``most / 100`` pages at limit 100 whatever the scale; the largest if none)."""
    conn = await asyncpg.connect(data.cell_urls[0], timeout=30)
    try:
        return str(
            await conn.fetchval(
                f"SELECT project_id FROM instances WHERE {_VISIBLE} GROUP BY project_id "
                "ORDER BY count(*) <= $1 DESC, count(*) DESC, project_id LIMIT 1",
                most,
            )
        )
    finally:
        await conn.close()


async def alternated_walks(
    servers: Sequence[Server], first: str, token: str, max_pages: int = 0
) -> dict[str, WalkCost]:
    """Every page of ``first`` on each server, a page on one then the same page on the
    next; the walks must return the same rows."""
    conns = {s.name: HttpConn("127.0.0.1", s.port) for s in servers}
    targets: dict[str, str | None] = {s.name: first for s in servers}
    times: dict[str, list[float]] = {s.name: [] for s in servers}
    rows = {s.name: 0 for s in servers}
    before = {s.name: await _counters(s) for s in servers}
    try:
        while any(t is not None for t in targets.values()):
            if max_pages and all(len(t) >= max_pages for t in times.values()):
                break
            for s in servers:
                target = targets[s.name]
                if target is None:
                    continue
                started = time.perf_counter()
                status, headers, body = await conns[s.name].get(target, token)
                times[s.name].append(time.perf_counter() - started)
                if not ok_response(status, headers):
                    raise RuntimeError(f"{s.name}: {target} answered {status} {headers}")
                rows[s.name] += len(body_ids(body))
                targets[s.name] = next_target(body)
    finally:
        for conn in conns.values():
            conn.close()
    out: dict[str, WalkCost] = {}
    for s in servers:
        after = await _counters(s)
        q, read, returned, ahead, awaited = (
            a - b for a, b in zip(after, before[s.name], strict=True)
        )
        out[s.name] = WalkCost(
            len(times[s.name]),
            rows[s.name],
            Latency.of(times[s.name]),
            q,
            read,
            returned,
            ahead,
            awaited,
        )
    if len({w.rows for w in out.values()}) != 1:
        raise RuntimeError(f"the walks returned different row counts: {out}")
    return out


async def small_pages(
    env: phases.Env, sharded: DataSet, unsharded: DataSet, samples: int, warmup: int = 5
) -> SmallPages:
    """The phase (see the module docstring); ``env`` must have a Redis URL."""
    project = await walk_project(unsharded)
    async with phases.servers(env, [sharded, unsharded]) as running:
        first: dict[int, dict[str, Latency]] = {}
        for limit in (100, 1000):
            say(f"small pages: first page, summary, limit {limit}")
            target = SUMMARY_FIRST.format(limit=limit)
            first[limit] = await first_pages(running, target, samples, warmup)
        say(f"small pages: project {project}'s full walk, limit 100")
        token = f"bench:{project}"
        await alternated_walks(running, PROJECT_FIRST.format(limit=100), token, max_pages=3)
        project_walk = await alternated_walks(running, PROJECT_FIRST.format(limit=100), token)
        say("small pages: the admin walk, limit 1000")
        admin_walk = await alternated_walks(
            running, SUMMARY_FIRST.format(limit=1000), "admin:admin"
        )
    return SmallPages(sharded.name, unsharded.name, first, project, project_walk, admin_walk)


def small_lines(r: SmallPages) -> list[str]:
    """The phase as Markdown lines (a table of the figures, 8 cells ÷ unsharded)."""
    s, u = r.sharded, r.unsharded
    lines = [
        f"| figure | {s} | {u} | ratio |",
        "|---|---:|---:|---:|",
    ]
    for limit, lat in r.first.items():
        lines.append(
            f"| first page p50, admin summary, limit {limit} | {lat[s].p50:.1f} ms "
            f"| {lat[u].p50:.1f} ms | {lat[s].p50 / lat[u].p50:.2f}× |"
        )
    walks = (
        (f"project {r.project}, limit 100", r.project_walk),
        ("admin, limit 1000", r.admin_walk),
    )
    for name, w in walks:
        a, b = w[s], w[u]
        lines += [
            f"| mean page, {name} ({a.rows:,} rows, {a.pages} pages) | {a.page.mean:.1f} ms "
            f"| {b.page.mean:.1f} ms | {a.page.mean / b.page.mean:.2f}× |",
            f"| rows read ÷ returned, {name} | {a.read_ratio:.3f} | {b.read_ratio:.3f} | |",
            f"| statements per page, {name} | {a.statements_per_page:.2f} "
            f"| {b.statements_per_page:.2f} | |",
            f"| read-aheads (awaited by their page), {name} | {a.read_aheads:.0f} "
            f"({a.awaited:.0f}) | {b.read_aheads:.0f} ({b.awaited:.0f}) | |",
        ]
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description="the small-page walk phase alone")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--prefix", default="cgscale")
    p.add_argument("--instances", type=int, default=200_000)
    p.add_argument("--samples", type=int, default=40)
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    a = p.parse_args()
    for name in [n for n in os.environ if n.startswith("CELLGATE_")]:
        del os.environ[name]

    async def run(workdir: Path) -> SmallPages:
        plan = SeedPlan(instances=a.instances, seed=42)
        data = await prepare(a.pg.rstrip("/"), a.prefix, (1, 8), plan, False, reuse=True)
        one = next(d for d in data if d.cells == 1)
        eight = next(d for d in data if d.cells == 8)
        env = phases.Env(workdir, 2, a.redis_url, f"{a.prefix}-small-{os.getpid()}")
        return await small_pages(env, eight, one, a.samples)

    with tempfile.TemporaryDirectory(prefix="smallpages-") as tmp:
        r = asyncio.run(run(Path(tmp)))
    print("\n".join(small_lines(r)))


if __name__ == "__main__":
    main()
