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
   creating the indexes ``cellgate doctor`` recommends (:mod:`cells.indexes`). Every deep
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
import heapq
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from indexcopy import copy_with_doctor_indexes
from sqlalchemy import Select, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from cells.client import CellClient
from cells.details import VIEW_COLUMNS
from cells.indexes import listing_orders
from cells.novajson import decode_flavor, decode_network_info
from cells.order import Direction, SortSpec, key_function
from cells.registry import Cell, EngineOptions, PlanCacheMode, create_engine_for, executor_for
from cells.schema import (
    block_device_mapping,
    instance_extra,
    instance_faults,
    instance_info_caches,
    instance_metadata,
)
from cells.seed import SeedCell, SeedPlan, drop_database, reset_database, seed
from gateway.app import create_app
from gateway.settings import Settings

PG_BASE = os.environ.get("CELLGATE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
PREFIX = "cgplans"
MODES: tuple[PlanCacheMode, ...] = get_args(PlanCacheMode)
LIMIT = 100
WARMUP = 6  # > 5: PostgreSQL's "auto" decides between custom and generic after 5 runs
ADMIN = "admin:admin"


@dataclass(frozen=True)
class Scenario:
    """One listing: who asks, in which order; ``marker`` at half of its rows."""

    label: str
    token: str
    params: tuple[tuple[str, str], ...]
    project: str | None
    sort: tuple[tuple[str, Direction], ...]
    rows: int = 0
    marker: str = ""
    after_marker: str = ""


@dataclass
class Phase:
    """p50 (ms) of first and deep pages per scenario, for one index set and mode."""

    indexes: str
    mode: PlanCacheMode
    first: dict[str, float] = field(default_factory=dict)
    deep: dict[str, float] = field(default_factory=dict)


def say(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def p50_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000


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


async def scenarios(api: str, cell_urls: list[str]) -> list[Scenario]:
    conn = await asyncpg.connect(api)
    try:
        counts = await conn.fetch(
            "SELECT project_id, count(*) AS n FROM instance_mappings "
            "GROUP BY project_id ORDER BY n DESC"
        )
    finally:
        await conn.close()
    total = sum(r["n"] for r in counts)
    large = counts[0]["project_id"]
    small = min(counts, key=lambda r: abs(r["n"] - total / 100))["project_id"]
    every = (("all_tenants", "1"),)
    out = [
        Scenario("all projects · created_at desc", ADMIN, every, None, ()),
        Scenario(f"project {large} (largest) · created_at desc", f"{large}:{large}", (), large, ()),
        Scenario(f"project {small} (~1%) · created_at desc", f"{small}:{small}", (), small, ()),
    ]
    for order in listing_orders()[2:]:
        key = order.spec.keys[0]
        params = (*every, ("sort_key", key.name), ("sort_dir", str(key.direction)))
        out.append(
            Scenario(
                f"all projects · {order.label}", ADMIN, params, None, ((key.name, key.direction),)
            )
        )
    return [await _with_marker(s, cell_urls) for s in out]


async def _with_marker(scenario: Scenario, cell_urls: list[str]) -> Scenario:
    """The scenario with its deep marker: the row at half of its rows in the listing order,
    from a Python sort of every cell's rows (product key function; the page itself is
    checked against the row after it)."""
    spec = SortSpec.build(list(scenario.sort) or [("created_at", Direction.DESC)])
    columns = sorted({"uuid", *(k.name for k in spec.keys)})
    where = "deleted = 0 AND vm_state IS DISTINCT FROM 'soft-delete'"
    args: list[object] = []
    if scenario.project is not None:
        where += " AND project_id = $1"
        args.append(scenario.project)
    rows: list[dict[str, Any]] = []
    for u in cell_urls:
        conn = await asyncpg.connect(u)
        try:
            found = await conn.fetch(
                f"SELECT {', '.join(columns)} FROM instances WHERE {where}", *args
            )
        finally:
            await conn.close()
        rows.extend(dict(r) for r in found)
    rows.sort(key=key_function(spec))
    half = len(rows) // 2
    return Scenario(
        scenario.label,
        scenario.token,
        scenario.params,
        scenario.project,
        scenario.sort,
        rows=len(rows),
        marker=str(rows[half]["uuid"]),
        after_marker=str(rows[half + 1]["uuid"]),
    )


async def doctor_copy(api: str, cell_urls: list[str]) -> tuple[str, list[str]]:
    """A copy of the data set with the indexes the doctor recommends
    (:func:`indexcopy.copy_with_doctor_indexes`): the copy's API URL and the distinct
    statements."""
    sources = [api, *cell_urls]
    targets = [u.replace(f"/{PREFIX}_", f"/{PREFIX}d_") for u in sources]
    ran = await copy_with_doctor_indexes(f"{PG_BASE}/postgres", sources, targets)
    created: list[str] = []
    for statements in ran.values():
        created += [s for s in statements if s not in created]
    return targets[0], created


# --- pages through the app -----------------------------------------------------------------


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            yield client


def _target(scenario: Scenario, marker: str | None) -> str:
    params = [*scenario.params, ("limit", str(LIMIT))]
    if marker:
        params.append(("marker", marker))
    return "/v2.1/servers?" + "&".join(f"{k}={v}" for k, v in params)


async def _page(http: httpx.AsyncClient, scenario: Scenario, marker: str | None) -> float:
    started = time.perf_counter()
    response = await http.get(_target(scenario, marker), headers={"X-Auth-Token": scenario.token})
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{scenario.label}: {response.status_code} {response.text[:200]}")
    servers = response.json()["servers"]
    if marker and (not servers or servers[0]["id"] != scenario.after_marker):
        raise RuntimeError(f"{scenario.label}: the deep page does not start after its marker")
    return elapsed


async def measure(data: dict[str, str], found: list[Scenario], samples: int) -> list[Phase]:
    """Every (index set, mode) as its own app, all open at once; each round asks every
    app for every scenario in turn, so load on the shared machine hits all alike."""
    phases = [Phase(indexes, mode) for indexes in data for mode in MODES]
    first: dict[tuple[str, str, str], list[float]] = {
        (p.indexes, p.mode, s.label): [] for p in phases for s in found
    }
    deep: dict[tuple[str, str, str], list[float]] = {
        (p.indexes, p.mode, s.label): [] for p in phases for s in found
    }
    async with AsyncExitStack() as stack:
        clients = []
        for phase in phases:
            settings = Settings(
                api_database_url=data[phase.indexes],
                auth_mode="noauth",
                page_cache_ttl_s=0,
                # Rounds are slower than the default 5 s: keep the per-cell instance counts
                # (a GROUP BY over instance_mappings) out of what is measured.
                project_cells_ttl_s=3600,
                cell_plan_cache_mode=phase.mode,
                cell_pool_size=1,
                cell_pool_max_overflow=1,
                cell_timeout_s=30,
                request_budget_s=60,
            )
            clients.append((phase, await stack.enter_async_context(app_client(settings))))
        for round_ in range(WARMUP + samples):
            for s in found:
                for phase, http in clients:
                    key = (phase.indexes, phase.mode, s.label)
                    took_first = await _page(http, s, None)
                    took_deep = await _page(http, s, s.marker)
                    if round_ >= WARMUP:
                        first[key].append(took_first)
                        deep[key].append(took_deep)
            if round_ + 1 == WARMUP:
                say("warmed up")
    for phase in phases:
        phase.first = {s.label: p50_ms(first[(phase.indexes, phase.mode, s.label)]) for s in found}
        phase.deep = {s.label: p50_ms(deep[(phase.indexes, phase.mode, s.label)]) for s in found}
    say("pages: done")
    return phases


# --- late materialization vs one joined query ------------------------------------------------

_NARROW = ", ".join(f"i.{c}" for c in VIEW_COLUMNS)
_JOINED_SIDE = """,
  e.flavor AS x_flavor, c.network_info AS x_network,
  (SELECT json_agg(json_build_array(m.key, m.value) ORDER BY m.id) FROM instance_metadata m
     WHERE m.instance_uuid = i.uuid AND m.deleted = 0) AS x_metadata,
  (SELECT json_agg(f.* ORDER BY f.id DESC) FROM (SELECT id, code, message, details, created_at
     FROM instance_faults WHERE instance_uuid = i.uuid AND deleted = 0
     ORDER BY id DESC LIMIT 1) f) AS x_fault,
  (SELECT json_agg(json_build_array(b.volume_id, b.delete_on_termination) ORDER BY b.id)
     FROM block_device_mapping b WHERE b.instance_uuid = i.uuid AND b.deleted = 0
     AND b.volume_id IS NOT NULL) AS x_volumes"""


def _keyset_sql(joined: bool, project: bool) -> str:
    side = _JOINED_SIDE if joined else ""
    joins = (
        " LEFT JOIN instance_extra e ON e.instance_uuid = i.uuid"
        " LEFT JOIN instance_info_caches c ON c.instance_uuid = i.uuid"
        if joined
        else ""
    )
    scope = " AND i.project_id = :project" if project else ""
    return (
        f"SELECT {_NARROW}{side} FROM instances i{joins} "
        f"WHERE i.deleted = 0 AND i.vm_state IS DISTINCT FROM 'soft-delete'{scope} "
        "ORDER BY i.created_at DESC, i.uuid ASC LIMIT :n"
    )


def _per_table_queries(uuids: list[str]) -> list[Select[tuple[object, ...]]]:
    """The side reads as cellgate issued them before this measurement: one query per side
    table (``IN`` list), one after the other on the cell's connection."""
    ie, ic, md = instance_extra.c, instance_info_caches.c, instance_metadata.c
    bdm, fault = block_device_mapping.c, instance_faults.c
    return [
        select(ie.instance_uuid, ie.flavor).where(ie.instance_uuid.in_(uuids)),
        select(ic.instance_uuid, ic.network_info).where(ic.instance_uuid.in_(uuids)),
        select(md.instance_uuid, md.key, md.value)
        .where(md.instance_uuid.in_(uuids), md.deleted == 0)
        .order_by(md.instance_uuid, md.id),
        select(fault.instance_uuid, fault.id, fault.code, fault.message, fault.details).where(
            fault.instance_uuid.in_(uuids), fault.deleted == 0
        ),
        select(bdm.instance_uuid, bdm.volume_id, bdm.delete_on_termination)
        .where(bdm.instance_uuid.in_(uuids), bdm.deleted == 0, bdm.volume_id.is_not(None))
        .order_by(bdm.instance_uuid, bdm.id),
    ]


async def _per_table(engine: AsyncEngine, uuids: list[str]) -> None:
    async with engine.connect() as conn:
        flavors, networks, *rest = _per_table_queries(uuids)
        flavor_rows: Sequence[Any] = (await conn.execute(flavors)).all()
        for row in flavor_rows:
            decode_flavor(row[1])
        network_rows: Sequence[Any] = (await conn.execute(networks)).all()
        for row in network_rows:
            decode_network_info(row[1])
        for query in rest:
            (await conn.execute(query)).all()


VARIANTS = ("late, one query per side table", "late, one UNION ALL", "joined")


@dataclass(frozen=True)
class Materialization:
    label: str
    limit: int
    p50_ms: dict[str, float]


async def _cell_rows(
    engine: AsyncEngine, sql: str, binds: dict[str, object], cell: int
) -> list[tuple[tuple[object, ...], int, dict[str, Any]]]:
    async with engine.connect() as conn:
        result = await conn.execute(text(sql), binds)
        rows = [dict(r) for r in result.mappings().all()]
    # Merge key: created_at descending, uuid ascending.
    return [((-r["created_at"].timestamp(), r["uuid"]), cell, r) for r in rows]


async def _one_page(
    engines: list[AsyncEngine],
    clients: list[CellClient],
    variant: str,
    project: str | None,
    limit: int,
) -> int:
    joined = variant == "joined"
    binds: dict[str, object] = {"n": limit + 1}
    if project is not None:
        binds["project"] = project
    sql = _keyset_sql(joined, project is not None)
    streams = await asyncio.gather(
        *(_cell_rows(engine, sql, binds, cell) for cell, engine in enumerate(engines))
    )
    page = list(heapq.merge(*streams, key=lambda item: item[0]))[:limit]
    if joined:
        for _, _, row in page:
            decode_flavor(row["x_flavor"])
            decode_network_info(row["x_network"])
        return len(page)
    by_cell: dict[int, list[str]] = {}
    for _, cell, row in page:
        by_cell.setdefault(cell, []).append(str(row["uuid"]))
    if variant == VARIANTS[0]:
        await asyncio.gather(*(_per_table(engines[c], u) for c, u in by_cell.items()))
    else:
        await asyncio.gather(*(clients[c].details(u, (2, 1)) for c, u in by_cell.items()))
    return len(page)


async def materialization(cell_urls: list[str], large: str, samples: int) -> list[Materialization]:
    options = EngineOptions(pool_size=2, max_overflow=0, command_timeout_s=60.0)
    engines = [create_engine_for(u, options, f"cell{i}") for i, u in enumerate(cell_urls, 1)]
    clients = [
        CellClient(Cell(i, f"cell{i}", f"cell{i}", url), executor_for(engine), 60.0)
        for i, (url, engine) in enumerate(zip(cell_urls, engines, strict=True), 1)
    ]
    out: list[Materialization] = []
    try:
        for label, project in (("all projects", None), (f"project {large}", large)):
            for limit in (100, 1000):
                timings: dict[str, list[float]] = {v: [] for v in VARIANTS}
                for sample in range(WARMUP + samples):
                    for variant in VARIANTS:
                        started = time.perf_counter()
                        await _one_page(engines, clients, variant, project, limit)
                        if sample >= WARMUP:
                            timings[variant].append(time.perf_counter() - started)
                medians = {v: p50_ms(t) for v, t in timings.items()}
                out.append(Materialization(label, limit, medians))
    finally:
        await asyncio.gather(*(engine.dispose() for engine in engines))
    say("late materialization vs joined: done")
    return out


# --- report ----------------------------------------------------------------------------------


def _fmt(ms: float) -> str:
    return f"{ms:,.1f}" if ms < 100 else f"{ms:,.0f}"


def report(
    args: argparse.Namespace,
    found: list[Scenario],
    phases: list[Phase],
    statements: list[str],
    mats: list[Materialization],
    started: float,
    load: tuple[float, float, float],
) -> str:
    def phase(indexes: str, mode: PlanCacheMode) -> Phase:
        return next(p for p in phases if p.indexes == indexes and p.mode == mode)

    lines = [
        "# Listing plans on Nova's own indexes",
        "",
        f"Generated by `scripts/nova_plans --instances {args.instances} --cells {args.cells} "
        f"--samples {args.samples}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in "
        f"{(time.perf_counter() - started) / 60:.1f} min, one run: every figure below is from "
        f"the same data set. Machine: {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"load average before {load[0]:.1f}. PostgreSQL on 127.0.0.1, same cores.",
        "",
        f"Data: {args.instances:,} instances over {args.cells} cells (sizes halving, the last "
        "cell empty), Nova's tables and side tables from `cellgate seed`. Requests: "
        f"`GET /v2.1/servers?limit={LIMIT}` through the app in-process (no network, page "
        f"cache off, per-cell instance counts cached for the run), p50 in ms of "
        f"{args.samples} rounds after {WARMUP} warm-up rounds. The "
        "data set is copied (`CREATE DATABASE ... TEMPLATE`) and the doctor's indexes "
        "created on the copy; one app per index set and `plan_cache_mode` (six) is open at "
        "once, and every round asks each of them in turn, so the load of the shared machine "
        "falls on all alike. A deep page is the page after the marker at half of the "
        "scope's rows, cold (no frontier cached for that marker); each was checked to start "
        "right after its marker.",
        "",
        "## First and deep pages: Nova's index set vs the doctor's indexes",
        "",
        "`plan_cache_mode` = `force_custom_plan` (cellgate's default, from this measurement).",
        "",
        "| scope · order | rows | first, Nova | first, +doctor | ratio "
        "| deep, Nova | deep, +doctor | ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    nova, doc = phase("Nova", "force_custom_plan"), phase("Nova + doctor", "force_custom_plan")
    for s in found:
        lines.append(
            f"| {s.label} | {s.rows:,} | {_fmt(nova.first[s.label])} | {_fmt(doc.first[s.label])} "
            f"| {nova.first[s.label] / doc.first[s.label]:.2f}× | {_fmt(nova.deep[s.label])} "
            f"| {_fmt(doc.deep[s.label])} | {nova.deep[s.label] / doc.deep[s.label]:.2f}× |"
        )
    lines += [
        "",
        "Ratio = Nova's index set ÷ with the doctor's indexes (above 1× = the doctor's "
        "indexes are faster).",
        "",
        "## `plan_cache_mode`",
        "",
        "p50 in ms of first / deep pages per mode; the ratios are each other mode ÷ "
        "`force_custom_plan` (above 1× = slower than custom plans).",
        "",
    ]
    for indexes in ("Nova", "Nova + doctor"):
        header = " | ".join(f"{m}" for m in MODES)
        lines += [
            f"### {indexes} indexes",
            "",
            f"| scope · order | {header} | auto ÷ custom | generic ÷ custom |",
            "| --- |" + " ---: |" * (len(MODES) + 2),
        ]
        for s in found:
            cells = " | ".join(
                f"{_fmt(ph.first[s.label])} / {_fmt(ph.deep[s.label])}"
                for ph in (phase(indexes, m) for m in MODES)
            )
            c = phase(indexes, "force_custom_plan")
            ratios = " | ".join(
                f"{o.first[s.label] / c.first[s.label]:.2f}× / "
                f"{o.deep[s.label] / c.deep[s.label]:.2f}×"
                for o in (phase(indexes, "auto"), phase(indexes, "force_generic_plan"))
            )
            lines.append(f"| {s.label} | {cells} | {ratios} |")
        lines.append("")
    lines += [
        "## Late materialization vs one joined query per cell",
        "",
        "Detail pages, default order; p50 in ms of reading the page's rows with their side "
        "data (SQL, merge, side-data decoding; no rendering), each cell reading `limit + 1` "
        "rows. *Late*: narrow rows, merge, then the side data of the page's rows only, either "
        "one query per side table (cellgate before this run) or one `UNION ALL` of them "
        "(`CellClient.details`, now); *joined*: the side tables joined into each "
        "cell's keyset query. Ratio above 1× = late materialization is faster.",
        "",
        "| scope | limit | " + " | ".join(VARIANTS) + " | joined ÷ UNION ALL |",
        "| --- | ---: |" + " ---: |" * (len(VARIANTS) + 1),
    ]
    for m in mats:
        values = " | ".join(_fmt(m.p50_ms[v]) for v in VARIANTS)
        ratio = m.p50_ms["joined"] / m.p50_ms[VARIANTS[1]]
        lines.append(f"| {m.label} | {m.limit} | {values} | {ratio:.2f}× |")
    lines += [
        "",
        "## The doctor's indexes created for the second half",
        "",
        "```sql",
        *(f"{s};" for s in statements),
        "```",
        "",
    ]
    return "\n".join(lines)


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
