"""Finding one instance by uuid, as Nova's ``compute.API.get`` does (``GET /servers/{id}``).

The instance's ``instance_mappings`` row names its cell; that cell is asked for the row —
never soft-deleted ones (Nova reads with ``read_deleted="no"``, admin or not) — through
the cell's breaker and deadline like a listing, then for the row's side data
(:func:`cells.details.fetch_details`). The result is a typed outcome:

* :class:`Found`: the row and its side data;
* :class:`Missing`: a 404 — no mapping (unknown, purged), no cell yet (a build in
  progress: Nova would read its ``build_requests`` row, which cellgate does not serve,
  listings included), another project's instance for a non-admin, a cell the gateway does
  not know, or no visible row in the cell (soft-deleted);
* :class:`CellDown`: the cell could not answer (error, hang, open breaker, or a failure
  while reading the side data). Nova then shows, from 2.69, what the API database knows
  (:func:`down_cell_view`), else fails.

A non-admin asking for another project's instance is told "not found" from its mapping,
without asking the cell, so an unreachable cell never reveals that the instance exists
(Nova answers 403 there from 2.69, 500 before).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from cells.details import VIEW_COLUMNS, Details, read_details
from cells.fanout import (
    CellFailed,
    CellRows,
    CellSession,
    CellSkipped,
    CellSlow,
    CellTimedOut,
)
from cells.novajson import RequestSpecInfo, decode_request_spec
from cells.order import Row
from cells.registry import ApiDatabase, Cell, InstanceMapping
from cells.schema import instance_group_member, instance_groups, instances, request_specs
from cells.sources import CellTarget, record

__all__ = [
    "CellDown",
    "DownCellView",
    "Found",
    "Missing",
    "ShowOutcome",
    "down_cell_view",
    "find_instance",
    "server_group",
]

MissingReason = Literal[
    "no mapping", "not scheduled", "other project", "unknown cell", "not in cell"
]
DownOutcome = CellFailed | CellTimedOut | CellSlow | CellSkipped


@dataclass(frozen=True, slots=True)
class Found:
    """The instance's row (:data:`~cells.details.VIEW_COLUMNS`) and side data."""

    cell: Cell
    row: Row
    details: Details
    elapsed_ms: float


@dataclass(frozen=True, slots=True)
class Missing:
    """No instance this caller may see has this uuid; ``reason`` is for the log."""

    reason: MissingReason
    cell: Cell | None = None


@dataclass(frozen=True, slots=True)
class CellDown:
    """The instance's cell did not answer; ``mapping`` is what the API database knows."""

    cell: Cell
    mapping: InstanceMapping
    outcome: DownOutcome


ShowOutcome = Found | Missing | CellDown


@dataclass(frozen=True, slots=True)
class DownCellView:
    """What Nova shows of an instance whose cell is down: its mapping and request spec."""

    mapping: InstanceMapping
    spec: RequestSpecInfo


async def find_instance(
    api: ApiDatabase,
    targets: Mapping[int, CellTarget],
    uuid: str,
    project_id: str | None,
    version: tuple[int, int],
) -> ShowOutcome:
    """Find ``uuid`` for a caller scoped to ``project_id`` (``None``: an admin).

    Raises :class:`~cells.faults.CellMisconfigured` for a cell whose schema does not match
    (a 500, never the breaker), and whatever the API database raises.
    """
    mapping = await api.mapping(uuid)
    if mapping is None:
        return Missing("no mapping")
    if project_id is not None and mapping.project_id != project_id:
        return Missing("other project")
    if mapping.cell_id is None:
        return Missing("not scheduled")
    target = targets.get(mapping.cell_id)
    if target is None:
        return Missing("unknown cell")
    if not target.breaker.allow():
        return CellDown(target.cell, mapping, CellSkipped())
    started = time.perf_counter()
    outcome = await _read_row(target, uuid, project_id)
    record(target.breaker, outcome)
    match outcome:
        case CellRows(rows=[row]):
            details = await _read_details(target, uuid, version, started)
            if isinstance(details, Details):
                elapsed = (time.perf_counter() - started) * 1000
                return Found(target.cell, row, details, elapsed)
            return CellDown(target.cell, mapping, details)
        case CellRows():
            return Missing("not in cell", target.cell)
        case CellFailed() | CellTimedOut() | CellSlow() | CellSkipped():
            return CellDown(target.cell, mapping, outcome)
    raise AssertionError("unreachable")  # pragma: no cover


async def _read_row(
    target: CellTarget, uuid: str, project_id: str | None
) -> CellRows | DownOutcome:
    c = instances.c
    statement = select(*(c[name] for name in VIEW_COLUMNS)).where(c.uuid == uuid, c.deleted == 0)
    if project_id is not None:
        statement = statement.where(c.project_id == project_id)
    session = CellSession(target.cell, target.engine, target.timeout_s)
    try:
        return await session.fetch(statement.limit(1), 1)
    finally:
        await session.close()


async def _read_details(
    target: CellTarget, uuid: str, version: tuple[int, int], started: float
) -> Details | CellFailed | CellTimedOut:
    """The side data, under what is left of the cell's deadline. A failure here is the
    cell's (or its schema's), as for a listing page's details (:mod:`gateway.pagedetails`)."""
    left = max(target.timeout_s - (time.perf_counter() - started), 0.0)
    found = await read_details(target.engine, target.cell.label, [uuid], version, left, started)
    if isinstance(found, dict):
        return found.get(uuid, Details())
    if isinstance(found, CellTimedOut):  # report the cell's deadline, not what was left of it
        return CellTimedOut(target.timeout_s, found.elapsed_ms)
    return found


async def down_cell_view(api: ApiDatabase, down: CellDown) -> DownCellView | None:
    """What Nova shows of an instance in a down cell (2.69+), or ``None`` where Nova
    answers "not found": the mapping is queued for delete, or no request spec is left
    (archived with a deleted instance)."""
    if down.mapping.queued_for_delete:
        return None
    spec = request_specs.c
    query = select(spec.spec).where(spec.instance_uuid == down.mapping.instance_uuid)
    async with api.engine.connect() as conn:
        document = (await conn.execute(query)).scalar()
    info = decode_request_spec(document) if document is not None else None
    return None if info is None else DownCellView(down.mapping, info)


async def server_group(api: ApiDatabase, uuid: str) -> str | None:
    """The uuid of the server group ``uuid`` belongs to (an instance is in at most one),
    as Nova's ``InstanceGroup.get_by_instance_uuid``."""
    member, group = instance_group_member.c, instance_groups.c
    query = (
        select(group.uuid)
        .join_from(instance_group_member, instance_groups, member.group_id == group.id)
        .where(member.instance_uuid == uuid)
        .order_by(member.id)
        .limit(1)
    )
    async with api.engine.connect() as conn:
        found = (await conn.execute(query)).scalar()
    return None if found is None else str(found)
