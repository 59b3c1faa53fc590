"""Do a database's tables have the columns cellgate reads? Checked at start-up and by the doctor.

The expected set is every column of every table in a metadata object (:data:`~cells.schema.
cell_metadata` for a cell, :data:`~cells.schema.api_metadata` for the API database), less
:data:`UNREAD_COLUMNS`: columns a supported Nova release may lack and cellgate never reads
(``instances.compute_id`` arrived in Nova 28.0.0). Types, nullability and indexes are not
checked here (``scripts/nova_conformance`` compares those with Nova's models).

Problems are plain sentences naming the owner, the table and the column::

    cell cell2: table instances lacks column display_name
    cell cell2: table tags is missing

:func:`check_cell` bounds the check by a deadline and tells an unreachable cell (an outage,
handled per request) apart from a reachable one with a schema problem.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, MetaData, inspect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cells.faults import Blame, blame
from cells.schema import api_metadata, cell_metadata

if TYPE_CHECKING:
    from cells.apidb import ApiDatabase
    from cells.client import CellClient

__all__ = [
    "UNREAD_COLUMNS",
    "SchemaMismatch",
    "Unreachable",
    "check_cell",
    "check_schema",
    "check_schemas",
    "compare",
    "expected_columns",
]

log = logging.getLogger(__name__)

UNREAD_COLUMNS: frozenset[tuple[str, str]] = frozenset({("instances", "compute_id")})
"""``(table, column)`` pairs that are never required (see the module docstring)."""


class SchemaMismatch(RuntimeError):
    """A database lacks a table or column cellgate reads; ``problems`` name each one."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True, slots=True)
class Unreachable:
    """The check could not reach the database (refused, reset, past its deadline)."""

    reason: str


def expected_columns(
    metadata: MetaData, ignore: Collection[tuple[str, str]] = UNREAD_COLUMNS
) -> dict[str, tuple[str, ...]]:
    """Table name → the column names that table must have."""
    return {
        table.name: tuple(c.name for c in table.columns if (table.name, c.name) not in ignore)
        for table in metadata.sorted_tables
    }


def compare(
    owner: str,
    expected: Mapping[str, Sequence[str]],
    actual: Mapping[str, Collection[str]],
) -> list[str]:
    """The problems of ``actual`` (table → its columns) against ``expected``; pure."""
    problems: list[str] = []
    for table, columns in expected.items():
        present = actual.get(table)
        if present is None:
            problems.append(f"{owner}: table {table} is missing")
            continue
        problems.extend(
            f"{owner}: table {table} lacks column {column}"
            for column in columns
            if column not in present
        )
    return problems


def _read_columns(conn: Connection, tables: Collection[str]) -> dict[str, set[str]]:
    inspector = inspect(conn)
    wanted = [name for name in inspector.get_table_names() if name in tables]
    if not wanted:
        return {}
    found = inspector.get_multi_columns(filter_names=wanted)
    return {table: {c["name"] for c in columns} for (_, table), columns in found.items()}


async def check_schema(
    db: AsyncEngine | AsyncConnection,
    metadata: MetaData,
    owner: str,
    ignore: Collection[tuple[str, str]] = UNREAD_COLUMNS,
) -> list[str]:
    """The problems of one database against ``metadata`` (empty when it conforms).

    Reads the catalogue with SQLAlchemy's inspector (one query for all the columns on
    PostgreSQL); database errors propagate.
    """
    expected = expected_columns(metadata, ignore)
    if isinstance(db, AsyncConnection):
        actual = await db.run_sync(_read_columns, expected.keys())
    else:
        async with db.connect() as conn:
            actual = await conn.run_sync(_read_columns, expected.keys())
    return compare(owner, expected, actual)


async def check_cell(
    engine: AsyncEngine, metadata: MetaData, owner: str, timeout_s: float
) -> list[str] | Unreachable:
    """:func:`check_schema` within ``timeout_s``; a connection failure or the deadline is
    :class:`Unreachable`, not a problem (an outage is handled per request)."""
    try:
        async with asyncio.timeout(timeout_s):
            return await check_schema(engine, metadata, owner)
    except TimeoutError:
        return Unreachable(f"no answer within {timeout_s:g} s")
    except OSError as exc:
        return Unreachable(str(exc) or type(exc).__name__)
    except DBAPIError as exc:
        fault = blame(exc)
        if fault.blame is Blame.CONFIG:  # e.g. no permission to read the catalogue
            return [f"{owner}: cannot read the catalogue: {fault.message}"]
        return Unreachable(fault.message)


async def check_schemas(api: ApiDatabase, clients: Sequence[CellClient], timeout_s: float) -> None:
    """Raise :class:`SchemaMismatch` naming every missing table and column of the API
    database and of ``clients``' cells (the reachable ones). A cell that stops answering
    during the check is an outage, handled per request, not a mismatch."""
    async with asyncio.timeout(timeout_s):
        problems = await check_schema(api.engine, api_metadata, "API database")
    outcomes = await asyncio.gather(
        *(check_cell(c.engine, cell_metadata, f"cell {c.cell.label}", timeout_s) for c in clients)
    )
    for client, outcome in zip(clients, outcomes, strict=True):
        match outcome:
            case Unreachable(reason):
                log.warning("cell %s: schema not checked: %s", client.cell.label, reason)
            case list():
                problems.extend(outcome)
    if problems:
        raise SchemaMismatch(problems)
