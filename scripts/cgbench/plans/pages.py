"""First and deep pages through the real app (in-process ASGI, ``/v2.1/servers``), per
index set and ``plan_cache_mode``: the scenarios (who asks, in which order, the marker at half
of the scope's rows), the copy of the data set with the doctor's indexes, the timed rounds.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager
from indexcopy import copy_with_doctor_indexes

from cells.doctor.indexes import listing_orders
from cells.order import Direction, SortSpec, key_function
from cells.registry import PlanCacheMode
from cgbench.plans import ADMIN, LIMIT, MODES, PG_BASE, PREFIX, WARMUP, p50_ms, say
from gateway.app import create_app
from gateway.settings import Settings

__all__ = ["Phase", "Scenario", "doctor_copy", "measure", "scenarios"]


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
