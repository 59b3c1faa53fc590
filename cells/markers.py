"""Resolving a marker (an instance uuid) to its position in the sort order.

Nova's rule: the marker is found through ``instance_mappings`` and then read from its cell
*including soft-deleted rows*; unknown, purged or malformed markers — and, for a
non-admin, another project's — are "not found" (a 400 upstream). A marker whose cell cannot
answer is :class:`MarkerUnavailable` (a 503 upstream, where Nova gives a 500).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from sqlalchemy import Select, bindparam, select

from cells.fanout import (
    CellFailed,
    CellOutcome,
    CellRows,
    CellSession,
    CellSkipped,
    CellSlow,
    CellTimedOut,
)
from cells.order import SortSpec, SqlValue
from cells.rawsql import RawSql, compile_for_asyncpg
from cells.registry import ApiDatabase, Cell
from cells.schema import instances
from cells.sources import CellTarget, record

__all__ = ["MarkerNotFound", "MarkerUnavailable", "resolve_marker"]


class MarkerNotFound(LookupError):
    """No visible instance has this uuid."""

    def __init__(self, marker: str) -> None:
        super().__init__(marker)
        self.marker = marker


class MarkerUnavailable(RuntimeError):
    """The marker's cell could not be read."""

    def __init__(self, marker: str, cell: Cell) -> None:
        super().__init__(marker, cell.label)
        self.marker = marker
        self.cell = cell


async def resolve_marker(
    api: ApiDatabase,
    targets: Mapping[int, CellTarget],
    spec: SortSpec,
    marker: str,
    project_id: str | None,
) -> tuple[SqlValue, ...]:
    """The keyset position of ``marker``; ``project_id`` is the caller's scope or ``None``."""
    mapping = await api.mapping(marker)
    if mapping is None or mapping.cell_id is None:
        raise MarkerNotFound(marker)
    if project_id is not None and mapping.project_id != project_id:
        raise MarkerNotFound(marker)
    target = targets.get(mapping.cell_id)
    if target is None:
        raise MarkerNotFound(marker)
    outcome: CellOutcome
    if not target.breaker.allow():
        outcome = CellSkipped()
    else:
        session = CellSession(target.cell, target.engine, target.timeout_s)
        try:
            if session.asyncpg:
                raw = _marker_sql(spec.names)
                outcome = await session.fetch(None, 1, (raw.sql, raw.args(marker=marker)))
            else:
                outcome = await session.fetch(_marker_select(spec.names).params(marker=marker), 1)
        finally:
            await session.close()
        record(target.breaker, outcome)
    match outcome:
        case CellRows(rows=[row]):
            if project_id is not None and row["project_id"] != project_id:
                raise MarkerNotFound(marker)
            return spec.position_of(row)
        case CellRows():
            raise MarkerNotFound(marker)
        case CellFailed() | CellTimedOut() | CellSlow() | CellSkipped():
            # The cell is down; the mapping still knows (created_at, uuid), which is enough
            # for orders the mappings can honour (the 2.69 stub order).
            if set(spec.names) <= {"created_at", "uuid"} and mapping.created_at is not None:
                values: dict[str, SqlValue] = {"created_at": mapping.created_at, "uuid": marker}
                return tuple(values[name] for name in spec.names)
            raise MarkerUnavailable(marker, target.cell)
    raise AssertionError("unreachable")  # pragma: no cover


def _marker_select(names: tuple[str, ...]) -> Select[tuple[object, ...]]:
    """The marker's row: its project and sort keys, soft-deleted or not (Nova's rule)."""
    c = instances.c
    columns = (c.project_id, *(c[name] for name in names))
    return select(*columns).where(c.uuid == bindparam("marker")).limit(1)


@functools.lru_cache(maxsize=64)
def _marker_sql(names: tuple[str, ...]) -> RawSql:
    """:func:`_marker_select` as asyncpg SQL, compiled once per sort-key set."""
    return compile_for_asyncpg(_marker_select(names))
