"""Seeded cell sets: an API database and its cells on the real PostgreSQL or MariaDB, or
on SQLite files, seeded by cellgate's seeder."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from cells.seeding import SeedCell, SeedPlan, drop_database, reset_database, seed
from gateway.settings import Settings
from tests.support.names import vary_names
from tests.support.services import MYSQL_BASE, PG_BASE

__all__ = [
    "MISSING_COLUMN",
    "CellSet",
    "drop_postgres",
    "seed_broken_postgres",
    "seed_mariadb",
    "seed_postgres",
    "seed_sqlite",
]

# What the start-up schema check and the doctor say of seed_broken_postgres's cell.
MISSING_COLUMN = "cell cell1: table instances lacks column display_name"


@dataclass(frozen=True)
class CellSet:
    """A seeded API DB and its cells."""

    api_url: str
    cells: list[SeedCell]
    instances: int

    @property
    def backend(self) -> str:
        """``postgresql``, ``mysql`` or ``sqlite``: the cells' backend (the first one's)."""
        scheme = self.cells[0].url.partition(":")[0]
        return scheme.partition("+")[0].replace("mariadb", "mysql")

    def settings(self, **overrides: object) -> Settings:
        fields: dict[str, object] = {"api_database_url": self.api_url, "auth_mode": "noauth"}
        return Settings(**(fields | overrides))  # type: ignore[arg-type]  # pydantic validates **fields by name; mypy cannot type them


async def seed_postgres(
    prefix: str, cells: int, instances: int, seed_value: int = 7, base: str = PG_BASE
) -> CellSet:
    """Reset and seed ``<prefix>_api`` and ``<prefix>_cell1..N`` on the real PostgreSQL
    (or the server of ``base``)."""
    api_url = f"{base}/{prefix}_api"
    targets = [SeedCell(f"cell{i}", f"{base}/{prefix}_cell{i}") for i in range(1, cells + 1)]
    await asyncio.gather(*(reset_database(u) for u in [api_url, *(t.url for t in targets)]))
    await seed(api_url, targets, SeedPlan(instances=instances, seed=seed_value), progress=False)
    return CellSet(api_url, targets, instances)


async def seed_mariadb(prefix: str, cells: int, instances: int, seed_value: int = 7) -> CellSet:
    """:func:`seed_postgres` on the real MariaDB (``utf8_general_ci`` databases), then
    names that collide under that collation written over some (:mod:`support.names`)."""
    cell_set = await seed_postgres(prefix, cells, instances, seed_value, MYSQL_BASE)
    await asyncio.gather(*(vary_names(cell.url) for cell in cell_set.cells))
    return cell_set


async def seed_sqlite(root: Path, cells: int, instances: int, seed_value: int) -> CellSet:
    """An API database and ``cells`` cells as SQLite files under ``root``, seeded."""
    targets = [
        SeedCell(f"cell{i}", f"sqlite:///{root / f'cell{i}.db'}") for i in range(1, cells + 1)
    ]
    api_url = f"sqlite:///{root / 'api.db'}"
    await seed(api_url, targets, SeedPlan(instances=instances, seed=seed_value), progress=False)
    return CellSet(api_url, targets, instances)


async def drop_postgres(cell_set: CellSet) -> None:
    """Drop every database of ``cell_set``."""
    await asyncio.gather(
        *(drop_database(u) for u in [cell_set.api_url, *(t.url for t in cell_set.cells)])
    )


async def seed_broken_postgres(prefix: str) -> CellSet:
    """One PostgreSQL cell whose ``instances`` lacks ``display_name``, a column cellgate
    reads (:data:`MISSING_COLUMN`)."""
    cell_set = await seed_postgres(prefix, cells=1, instances=40)
    conn = await asyncpg.connect(cell_set.cells[0].url)
    try:
        await conn.execute("ALTER TABLE instances DROP COLUMN display_name")
    finally:
        await conn.close()
    return cell_set
