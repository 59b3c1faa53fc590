"""Late materialization vs one joined query per cell, for a detail page: each cell reads
``limit + 1`` rows in both variants, concurrently; *late* reads narrow rows, merges, then
reads the side tables of the page's rows only (one query per side table, or
``CellClient.details``' one batched query per cell); *joined* reads every side table in the
keyset query itself, then merges. Both decode the side data of the returned rows only.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from cells.client import CellClient
from cells.details import VIEW_COLUMNS
from cells.novajson import decode_flavor, decode_network_info
from cells.registry import Cell, EngineOptions, create_engine_for, executor_for
from cells.schema import (
    block_device_mapping,
    instance_extra,
    instance_faults,
    instance_info_caches,
    instance_metadata,
)
from cgbench.plans import WARMUP, p50_ms, say

__all__ = ["VARIANTS", "Materialization", "materialization"]

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
