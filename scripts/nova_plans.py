#!/usr/bin/env python3
"""Listing plans on Nova's own indexes (issue #7): what an operator's cells really cost.

One data set (``cellgate seed``'s generator: Nova's tables with their side tables, skewed
cell sizes, the last cell empty) on the local PostgreSQL, then, in one run:

1. **Pages by index set and ``plan_cache_mode``.** For the default order (all projects, the
   largest project, a project holding ~1% of the rows) and each string sort key the doctor
   checks (``display_name``, ``hostname``, ``host``, both directions), the p50 of a first
   page and of a deep page (the marker at half the scope's rows; cold: no frontier cached
   for it) through the real app (in-process ASGI, ``/v2.1/servers``, limit 100, page cache
   off), under each ``plan_cache_mode`` — first on Nova's index set exactly, then after
   creating the indexes ``cellgate doctor`` recommends (:mod:`cells.doctor.indexes`). Every deep
   page is checked against a Python sort of the scope's rows (its first server must be the
   one right after the marker).
2. **Late materialization vs one joined query per cell**, for a detail page (default order,
   all projects and the largest project, limit 100 and 1000): each cell reads ``limit + 1``
   rows in both variants, concurrently; *late* reads narrow rows, merges, then reads the
   side tables of the page's rows only (``CellClient.details``, one batched query
   per table and cell); *joined* reads every side table in the keyset query itself (joins
   and correlated subqueries, side data for all ``cells × (limit + 1)`` rows), then merges.
   Both decode the side data of the returned rows only.

Writes a Markdown report (``--out``); the databases are dropped unless ``--keep``.

    scripts/nova_plans [--instances 400000] [--cells 8] [--samples 15] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import asyncpg
from cgbench.plans import PG_BASE, PREFIX, say
from cgbench.plans.materialization import materialization
from cgbench.plans.pages import doctor_copy, measure, scenarios
from cgbench.plans.report import report

from cells.seeding import SeedCell, SeedPlan, drop_database, reset_database, seed

# --- data ----------------------------------------------------------------------------------


def urls(cells: int) -> tuple[str, list[str]]:
    return f"{PG_BASE}/{PREFIX}_api", [f"{PG_BASE}/{PREFIX}_cell{i}" for i in range(1, cells + 1)]


async def prepare(cells: int, instances: int) -> tuple[str, list[str]]:
    api, cell_urls = urls(cells)
    await asyncio.gather(*(reset_database(u) for u in [api, *cell_urls]))
    started = time.perf_counter()
    targets = [SeedCell(f"cell{i}", u) for i, u in enumerate(cell_urls, 1)]
    await seed(api, targets, SeedPlan(instances=instances, seed=42), progress=False)
    took = time.perf_counter() - started
    say(f"seeded {instances:,} instances over {cells} cells in {took:.0f} s")
    for u in cell_urls:
        conn = await asyncpg.connect(u)
        try:
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()
    return api, cell_urls


async def main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    load = os.getloadavg()
    api, cell_urls = await prepare(args.cells, args.instances)
    copy_api = api.replace(f"/{PREFIX}_", f"/{PREFIX}d_")
    try:
        found = await scenarios(api, cell_urls)
        say(f"{len(found)} scenarios; deep markers at half of each scope")
        large = next(s.project for s in found if s.project is not None)
        mats = await materialization(cell_urls, str(large), args.samples)
        copy_api, statements = await doctor_copy(api, cell_urls)
        say("copied the data set and created the doctor's indexes on the copy")
        phases = await measure({"Nova": api, "Nova + doctor": copy_api}, found, args.samples)
        text_out = report(args, found, phases, statements, mats, started, load)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text_out)
        if args.json is not None:
            args.json.write_text(
                json.dumps(
                    {
                        "phases": [p.__dict__ for p in phases],
                        "materialization": [m.__dict__ for m in mats],
                    },
                    indent=1,
                )
            )
        say(f"wrote {args.out}")
    finally:
        if not args.keep:
            every = [api, *cell_urls]
            every += [u.replace(f"/{PREFIX}_", f"/{PREFIX}d_") for u in every]
            await asyncio.gather(*(drop_database(u) for u in every))
    return 0


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instances", type=int, default=400_000)
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("docs/bench/nova_plans.md"))
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    return parser.parse_args(argv)


def run(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(main(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(run())
