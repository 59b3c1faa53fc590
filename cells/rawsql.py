"""SQLAlchemy Core statements compiled once for asyncpg, and run straight on its connection.

SQLAlchemy's ``execute`` computes a cache key, looks the compiled form up and wraps the
result on every call: about 0.3 ms of CPU for a one-row query, more than the query costs.
The hot statements (the keyset query, kept per shape in :mod:`cells.plan`'s LRU; the
marker's row, its mapping, the side-data union) are compiled once per shape into positional SQL
and run with the driver's ``fetch``; the SQL still comes from Core.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

__all__ = ["RawSql", "compile_for_asyncpg", "driver_fetch"]


@dataclass(frozen=True, slots=True)
class RawSql:
    """Positional SQL, its parameters' names in order and the constant ones' values."""

    sql: str
    names: tuple[str, ...]
    constants: Mapping[str, object]

    def args(self, **values: object) -> list[object]:
        """The positional arguments: ``values`` by name, the rest the constants."""
        return [values[n] if n in values else self.constants[n] for n in self.names]


def compile_for_asyncpg(statement: ClauseElement, dialect: Dialect | None = None) -> RawSql:
    """``statement`` as asyncpg SQL (``$1``… placeholders, expanding IN lists rendered), for
    ``dialect`` (an engine's asyncpg dialect; default a fresh one)."""
    compiled = statement.compile(
        dialect=dialect or asyncpg_dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"render_postcompile": True},
    )
    assert isinstance(compiled, SQLCompiler)
    return RawSql(str(compiled), tuple(compiled.positiontup or ()), dict(compiled.params))


async def driver_fetch(conn: AsyncConnection, raw: RawSql, **values: object) -> list[Any]:
    """``raw`` run on the asyncpg connection under ``conn``: its records."""
    driver = (await conn.get_raw_connection()).driver_connection
    return await driver.fetch(raw.sql, *raw.args(**values))  # type: ignore[union-attr, no-any-return]
