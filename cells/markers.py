"""Resolving a marker (an instance uuid) to its position in the sort order.

Nova's rule: the marker is found through ``instance_mappings`` and then read from its cell
*including soft-deleted rows*; unknown, purged or malformed markers — and, for a
non-admin, another project's — are :class:`~cells.errors.MarkerNotFound` (a 400 upstream).
A marker whose cell cannot answer is :class:`~cells.errors.MarkerUnavailable` (a 503
upstream, where Nova gives a 500).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from sqlalchemy import Select, bindparam, select

from cells.errors import MarkerNotFound, MarkerUnavailable
from cells.fanout import CellFailed, CellRows, CellSkipped, CellSlow, CellTimedOut
from cells.order import SortSpec, SqlValue
from cells.schema import instances

if TYPE_CHECKING:
    from cells.apidb import ApiDatabase
    from cells.client import CellClient

__all__ = ["MarkerNotFound", "MarkerUnavailable", "marker_select", "resolve_marker"]


async def resolve_marker(
    api: ApiDatabase,
    clients: Mapping[int, CellClient],
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
    client = clients.get(mapping.cell_id)
    if client is None:
        raise MarkerNotFound(marker)
    outcome = await client.marker_row(spec.names, marker)
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
            raise MarkerUnavailable(marker, client.cell)
    raise AssertionError("unreachable")  # pragma: no cover


def marker_select(names: tuple[str, ...]) -> Select[tuple[object, ...]]:
    """The marker's row (bound as ``marker``): its project and sort keys, soft-deleted or
    not (Nova's rule)."""
    c = instances.c
    columns = (c.project_id, *(c[name] for name in names))
    return select(*columns).where(c.uuid == bindparam("marker")).limit(1)
