"""The two data sets of a run: the same instances seeded into 8 cells and into 1 cell."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import asyncpg

from cells.seeding import SeedCell, SeedPlan, reset_database, seed
from cgbench.console import say
from cgbench.profiles import Layout, Profile
from cgbench.results import DataInfo


async def connect_pg(layout: Layout, db: str = "postgres") -> asyncpg.Connection:
    """A plain asyncpg connection to one database of the bench's PostgreSQL server."""
    parts = urlsplit(layout.base_url)
    return await asyncpg.connect(
        host=parts.hostname,
        port=parts.port or 5432,
        user=parts.username or "postgres",
        password=parts.password,
        database=db,
        timeout=10,
    )


async def _stamp(layout: Layout, db: str) -> str | None:
    conn = await connect_pg(layout)
    try:
        value = await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", db
        )
    finally:
        await conn.close()
    return None if value is None else str(value)


async def _seed(layout: Layout, plan: SeedPlan, stamp: str) -> None:
    await asyncio.gather(*(reset_database(layout.url(db)) for db in layout.all_dbs))
    targets8 = [SeedCell(f"cell{n}", layout.url(db)) for n, db in enumerate(layout.cells8, 1)]
    targets1 = [SeedCell("cell1", layout.url(layout.cells1[0]))]
    await asyncio.gather(
        seed(layout.url(layout.api8), targets8, plan, progress=False),
        seed(layout.url(layout.api1), targets1, plan, progress=False),
    )

    # Fresh COPYs leave no visibility map or hint bits; autovacuum would do this mid-run.
    async def vacuum(db: str, table: str) -> None:
        conn = await connect_pg(layout, db)
        try:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        finally:
            await conn.close()

    await asyncio.gather(
        *(vacuum(db, "instances") for db in [*layout.cells8, *layout.cells1]),
        *(vacuum(db, "instance_mappings") for db in (layout.api8, layout.api1)),
    )
    conn = await connect_pg(layout)
    try:
        for db in (layout.api8, layout.api1):
            await conn.execute(f"COMMENT ON DATABASE \"{db}\" IS '{stamp}'")
    finally:
        await conn.close()


async def _count(layout: Layout, db: str, where: str = "TRUE") -> int:
    conn = await connect_pg(layout, db)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM instances WHERE {where}"))
    finally:
        await conn.close()


async def prepare_data(layout: Layout, profile: Profile, seed_value: int, reuse: bool) -> DataInfo:
    """Seed both data sets (or reuse kept ones stamped with the same plan) and count them."""
    wanted = f"cellgate-bench instances={profile.instances} seed={seed_value}"
    started = time.perf_counter()
    stamps = await asyncio.gather(*(_stamp(layout, db) for db in (layout.api8, layout.api1)))
    reused = reuse and all(s == wanted for s in stamps)
    if reused:
        say(f"reusing kept databases ({wanted})")
    else:
        say(f"seeding {profile.instances} instances (seed {seed_value}) into 8 cells and 1 cell")
        await _seed(layout, SeedPlan(instances=profile.instances, seed=seed_value), wanted)

    counts = await asyncio.gather(*(_count(layout, db) for db in layout.cells8))
    per8 = dict(zip([f"cell{n}" for n in range(1, 9)], counts, strict=True))
    per1 = {"cell1": await _count(layout, layout.cells1[0])}
    visible = "deleted = 0 AND (vm_state <> 'soft-delete' OR vm_state IS NULL)"
    admin = await _count(layout, layout.cells1[0], visible)
    demo = await _count(layout, layout.cells1[0], f"project_id = 'demo' AND {visible}")
    if sum(per8.values()) != profile.instances or per1["cell1"] != profile.instances:
        raise RuntimeError(f"seeded counts do not match the plan: {per8} / {per1}")
    return DataInfo(
        instances=profile.instances,
        seed=seed_value,
        per_cell8=per8,
        per_cell1=per1,
        seed_s=time.perf_counter() - started,
        reused=reused,
        visible_admin=admin,
        visible_demo=demo,
    )
