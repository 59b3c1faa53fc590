"""The scale run's data sets: the same instances seeded over 1 (unsharded), 4, 8 and 32
cells, each also copied with the indexes ``cellgate doctor`` recommends.

Every layout is seeded from one ``SeedPlan`` seed, so all hold the same instances (the
seeder's instance stream does not depend on the cell count); the 32-cell layout spreads
them more evenly (``cell_ratio`` 0.9) than halving would, which leaves cells past the 20th
empty. Each data set is stamped (``COMMENT ON DATABASE``) and reused by a later run with
the same plan.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass, replace
from typing import Literal

import asyncpg
from indexcopy import copy_with_doctor_indexes

from cells.schema import api_metadata, cell_metadata
from cells.seeding import SeedCell, SeedPlan, drop_database, reset_database, seed
from cgbench.console import say

__all__ = ["DataSet", "IndexSet", "drop", "pg_settings", "plan_stamp", "prepare", "ratio_of"]

IndexSet = Literal["nova", "doctor"]
_VISIBLE = "deleted = 0 AND (vm_state <> 'soft-delete' OR vm_state IS NULL)"


def ratio_of(cells: int) -> float:
    """The seeder's ``cell_ratio`` for a layout of ``cells`` cells."""
    return 0.9 if cells > 8 else 0.5


@dataclass(frozen=True)
class DataSet:
    """One layout of the instances, with one index set."""

    cells: int  # 1: the unsharded database
    indexes: IndexSet
    api_url: str
    cell_urls: tuple[str, ...]
    per_cell: tuple[int, ...] = ()
    visible: int = 0  # what an admin listing shows (not deleted)

    @property
    def name(self) -> str:
        return f"{self.cells} cell{'s' if self.cells > 1 else ''}, {self.indexes} indexes"

    @property
    def databases(self) -> tuple[str, ...]:
        return tuple(u.rsplit("/", 1)[1] for u in (self.api_url, *self.cell_urls))


def _urls(base: str, prefix: str, cells: int, indexes: IndexSet) -> tuple[str, tuple[str, ...]]:
    tag = f"{prefix}{cells}{'d' if indexes == 'doctor' else ''}"
    return f"{base}/{tag}_api", tuple(f"{base}/{tag}_cell{n}" for n in range(1, cells + 1))


async def _one(url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(url, timeout=30)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


_SETTINGS = (
    "server_version",
    "shared_buffers",
    "max_connections",
    "shared_preload_libraries",
    "fsync",
    "jit",
    "plan_cache_mode",
)


async def pg_settings(base: str) -> dict[str, str]:
    """The database server's version and the settings that shape the figures."""
    conn = await asyncpg.connect(f"{base}/postgres", timeout=30)
    try:
        return {f"pg {name}": str(await conn.fetchval(f"SHOW {name}")) for name in _SETTINGS}
    finally:
        await conn.close()


def plan_stamp(plan: SeedPlan) -> str:
    """What a kept data set must have been seeded with to be reused: the plan and the
    tables cellgate reads (a set seeded before a table was added is seeded again)."""
    tables = ",".join(sorted([*api_metadata.tables, *cell_metadata.tables]))
    tag = hashlib.sha1(tables.encode()).hexdigest()[:10]
    return f"cgbench-scale instances={plan.instances} seed={plan.seed} tables={tag}"


async def _stamp(base: str, database: str) -> str | None:
    sql = "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1"
    value = await _one(f"{base}/postgres", sql, database)
    return None if value is None else str(value)


async def _vacuum(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=30)
    try:
        await conn.execute("VACUUM (ANALYZE)")
    finally:
        await conn.close()


async def _seed(data: DataSet, plan: SeedPlan, stamp: str, base: str) -> None:
    await asyncio.gather(*(reset_database(u) for u in (data.api_url, *data.cell_urls)))
    targets = [SeedCell(f"cell{n}", u) for n, u in enumerate(data.cell_urls, 1)]
    await seed(data.api_url, targets, replace(plan, cell_ratio=ratio_of(data.cells)))
    # Fresh COPYs leave no visibility map or hint bits; autovacuum would do it mid-run.
    await asyncio.gather(*(_vacuum(u) for u in (data.api_url, *data.cell_urls)))
    await _one(f"{base}/postgres", f"COMMENT ON DATABASE \"{data.databases[0]}\" IS '{stamp}'")


async def _doctor_copy(source: DataSet, target: DataSet, stamp: str, base: str) -> int:
    """``target`` as a copy of ``source`` with the doctor's indexes; the statements run."""
    ran = await copy_with_doctor_indexes(
        f"{base}/postgres",
        [source.api_url, *source.cell_urls],
        [target.api_url, *target.cell_urls],
    )
    await _one(f"{base}/postgres", f"COMMENT ON DATABASE \"{target.databases[0]}\" IS '{stamp}'")
    return sum(len(statements) for statements in ran.values())


async def _counted(data: DataSet) -> DataSet:
    async def count(url: str, where: str = "TRUE") -> int:
        return int(str(await _one(url, f"SELECT count(*) FROM instances WHERE {where}")))

    per_cell = await asyncio.gather(*(count(u) for u in data.cell_urls))
    visible = await asyncio.gather(*(count(u, _VISIBLE) for u in data.cell_urls))
    return replace(data, per_cell=tuple(per_cell), visible=sum(visible))


async def prepare(
    base: str,
    prefix: str,
    layouts: tuple[int, ...],
    plan: SeedPlan,
    doctor: bool,
    reuse: bool,
) -> list[DataSet]:
    """Every layout with Nova's indexes, and (``doctor``) a copy with the doctor's; seeded
    unless ``reuse`` finds them stamped with this plan."""
    out: list[DataSet] = []
    for cells in layouts:
        api, cell_urls = _urls(base, prefix, cells, "nova")
        nova = DataSet(cells, "nova", api, cell_urls)
        stamp = f"{plan_stamp(plan)} cells={cells}"
        if reuse and await _stamp(base, nova.databases[0]) == stamp:
            say(f"reusing {nova.name}")
        else:
            started = time.perf_counter()
            say(f"seeding {plan.instances:,} instances into {nova.name}")
            await _seed(nova, plan, stamp, base)
            say(f"  seeded in {time.perf_counter() - started:.0f} s")
        out.append(await _counted(nova))
        if not doctor:
            continue
        api, cell_urls = _urls(base, prefix, cells, "doctor")
        copy = DataSet(cells, "doctor", api, cell_urls)
        doctor_stamp = f"{stamp} doctor"
        if reuse and await _stamp(base, copy.databases[0]) == doctor_stamp:
            say(f"reusing {copy.name}")
        else:
            started = time.perf_counter()
            ran = await _doctor_copy(nova, copy, doctor_stamp, base)
            say(f"  {copy.name}: copied, {ran} indexes in {time.perf_counter() - started:.0f} s")
        out.append(await _counted(copy))
    totals = {d.name: sum(d.per_cell) for d in out}
    if any(total != plan.instances for total in totals.values()):
        raise RuntimeError(f"seeded counts do not match the plan: {totals}")
    return out


async def drop(data_sets: list[DataSet]) -> None:
    """Drop every database of ``data_sets``."""
    urls = [u for d in data_sets for u in (d.api_url, *d.cell_urls)]
    await asyncio.gather(*(drop_database(u) for u in urls))
