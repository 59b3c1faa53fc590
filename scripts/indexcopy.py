"""A copy of a data set with the indexes ``cellgate doctor`` recommends, for benchmarks
that compare Nova's index set with the doctor's (``scripts/nova_plans``, ``scripts/scalebench``).

cellgate itself never creates an index; only these tools do, on their own copies.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg

from cells.doctor import diagnose
from cells.doctor.indexes import listing_orders

__all__ = ["copy_with_doctor_indexes"]


def _database(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def copy_with_doctor_indexes(
    admin_url: str, sources: Sequence[str], targets: Sequence[str]
) -> dict[str, list[str]]:
    """``targets`` (an API database URL, then its cells') as copies of ``sources`` (``CREATE
    DATABASE ... TEMPLATE``, dropping what was there), the copy's ``cell_mappings`` pointed at
    the copied cells, then on every copied cell the statements the doctor's diagnosis
    recommends, and ``ANALYZE instances``; the statements run, by cell name."""
    admin = await asyncpg.connect(admin_url, timeout=30)
    try:
        for source, target in zip(sources, targets, strict=True):
            await admin.execute(f'DROP DATABASE IF EXISTS "{_database(target)}" WITH (FORCE)')
            await admin.execute(
                f'CREATE DATABASE "{_database(target)}" TEMPLATE "{_database(source)}"'
            )
    finally:
        await admin.close()
    conn = await asyncpg.connect(targets[0], timeout=30)
    try:
        for old, new in zip(sources[1:], targets[1:], strict=True):
            await conn.execute(
                "UPDATE cell_mappings SET database_connection = $2 WHERE database_connection = $1",
                old,
                new,
            )
    finally:
        await conn.close()
    diagnosis = await diagnose(targets[0], [], listing_orders(), timeout_s=60.0)
    cell_url = {f"cell{n}": url for n, url in enumerate(targets[1:], 1)}
    ran = {
        report.name: [o.statement for o in report.orders if o.statement is not None]
        for report in diagnosis.cells
    }

    async def create(cell: str, statements: list[str]) -> None:
        cell_conn = await asyncpg.connect(cell_url[cell], timeout=30)
        try:
            for statement in statements:
                await cell_conn.execute(statement)
            await cell_conn.execute("ANALYZE instances")
        finally:
            await cell_conn.close()

    await asyncio.gather(*(create(cell, statements) for cell, statements in ran.items()))
    return ran
