"""The small-page phase (:mod:`cgbench.scale.smallpages`) for two source trees in one run:
four gateways (each tree on the 8-cell and the unsharded data set, each tree with its own
Redis prefix), every request alternated over the four, so a busy machine slows all alike.

    cd scripts && PYTHONPATH=$PWD:.. python -m cgbench.scale.smallpages_ab \\
        --before /path/to/main-tree --prefix walktax --instances 200000 --samples 100

The data sets must exist (``scripts/scalebench --layouts 1,8 --prepare-only``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cells.seeding import SeedPlan
from cgbench import REPO
from cgbench.scale import phases
from cgbench.scale.data import prepare
from cgbench.scale.measure import first_pages
from cgbench.scale.smallpages import PROJECT_FIRST, SUMMARY_FIRST, alternated_walks, walk_project
from cgbench.servers import Server


class TreeServer(Server):
    """``cellgate serve`` from another source tree."""

    def __init__(self, tree: Path, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]  # Server's own arguments, passed through unchanged
        self.tree = tree
        self.env["PYTHONPATH"] = str(tree)

    def start(self) -> None:
        cmd = [sys.executable, "-m", "gateway.cli", "serve", "--host", "127.0.0.1"]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*cmd, "--port", str(self.port), *self.args],
            cwd=self.tree,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )


async def _run(a: argparse.Namespace, before: Path, workdir: Path) -> list[str]:
    plan = SeedPlan(instances=a.instances, seed=42)
    data = await prepare(a.pg.rstrip("/"), a.prefix, (1, 8), plan, False, reuse=True)
    one = next(d for d in data if d.cells == 1)
    eight = next(d for d in data if d.cells == 8)
    env = phases.Env(workdir, 2, a.redis_url, f"{a.prefix}-ab-{os.getpid()}")
    trees = {"before": before, "after": REPO}
    servers: list[Server] = [
        TreeServer(
            tree,
            f"{name} {d.cells}",
            d.api_url,
            env.settings(CELLGATE_REDIS_PREFIX=f"{env.redis_prefix}-{name}"),
            workdir,
        )
        for name, tree in trees.items()
        for d in (eight, one)
    ]
    for server in servers:
        server.start()
    try:
        await asyncio.gather(*(s.wait_ready() for s in servers))
        project = await walk_project(one)
        first = {
            n: await first_pages(servers, SUMMARY_FIRST.format(limit=n), a.samples, 5)
            for n in (100, 1000)
        }
        token = f"bench:{project}"
        await alternated_walks(servers, PROJECT_FIRST.format(limit=100), token, max_pages=3)
        pw = await alternated_walks(servers, PROJECT_FIRST.format(limit=100), token)
        aw = await alternated_walks(servers, SUMMARY_FIRST.format(limit=1000), "admin:admin")
    finally:
        for server in servers:
            server.stop()
    lines = [f"project walked: {project}"]
    for name in trees:
        s8, s1 = f"{name} 8", f"{name} 1"
        lines.append(f"## {name} ({trees[name]})")
        for n, lat in first.items():
            a8, a1 = lat[s8].p50, lat[s1].p50
            lines.append(f"first page p50, limit {n}: {a8:.1f} / {a1:.1f} ms = {a8 / a1:.2f}×")
        for what, w in (("project walk, limit 100", pw), ("admin walk, limit 1000", aw)):
            x, y = w[s8], w[s1]
            lines.append(
                f"mean page, {what} ({x.rows:,} rows, {x.pages} pages): {x.page.mean:.1f} / "
                f"{y.page.mean:.1f} ms = {x.page.mean / y.page.mean:.2f}×; rows read ÷ "
                f"returned {x.read_ratio:.3f}; statements per page {x.statements_per_page:.2f} "
                f"(unsharded {y.statements_per_page:.2f}); read-aheads {x.read_aheads:.0f}, "
                f"awaited {x.awaited:.0f}"
            )
    return lines


def main() -> None:
    p = argparse.ArgumentParser(description="the small-page phase, two trees in one run")
    p.add_argument("--before", required=True, help="the other source tree (e.g. main's)")
    p.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    p.add_argument("--prefix", default="cgscale")
    p.add_argument("--instances", type=int, default=200_000)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    a = p.parse_args()
    for name in [n for n in os.environ if n.startswith("CELLGATE_")]:
        del os.environ[name]
    with tempfile.TemporaryDirectory(prefix="smallpages-ab-") as tmp:
        print("\n".join(asyncio.run(_run(a, Path(a.before).resolve(), Path(tmp)))))


if __name__ == "__main__":
    main()
