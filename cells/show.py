"""Finding one instance by uuid, as Nova's ``compute.API.get`` does (``GET /servers/{id}``).

The instance's ``instance_mappings`` row names its cell; that cell's client is asked for
the row — never soft-deleted ones (Nova reads with ``read_deleted="no"``, admin or not) —
and its side data, through the cell's breaker and within one deadline
(:meth:`cells.client.CellClient.server`). The result is a typed outcome:

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

When the API database cannot answer, every enabled cell is asked for the uuid at once
(scoped to the caller's project as the mapping would have been): the cell holding it gives
:class:`Found` (``without_mapping``), every cell answering without it gives
:class:`Missing` ("in no cell"); a cell that cannot answer either leaves the question open,
and :class:`~cells.errors.ApiDatabaseUnavailable` stands (Nova fails every show then).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Select, bindparam, select

from cells.details import VIEW_COLUMNS, Details
from cells.errors import ApiDatabaseUnavailable
from cells.fanout import (
    CellFailed,
    CellServer,
    CellSkipped,
    CellSlow,
    CellTimedOut,
    DownOutcome,
    run_all,
)
from cells.microversion import Version
from cells.novajson import RequestSpecInfo, decode_request_spec
from cells.order import Row
from cells.registry import Cell, InstanceMapping
from cells.schema import instances

if TYPE_CHECKING:
    from cells.apidb import ApiDatabase
    from cells.client import CellClient

__all__ = [
    "CellDown",
    "DownCellView",
    "Found",
    "Missing",
    "ShowOutcome",
    "down_cell_view",
    "find_instance",
    "server_select",
]

log = logging.getLogger(__name__)

MissingReason = Literal[
    "no mapping", "not scheduled", "other project", "unknown cell", "not in cell", "in no cell"
]


@dataclass(frozen=True, slots=True)
class Found:
    """The instance's row (:data:`~cells.details.VIEW_COLUMNS`) and side data."""

    cell: Cell
    row: Row
    details: Details
    elapsed_ms: float
    without_mapping: bool = False  # the API database was down: every cell was asked


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
    clients: Mapping[int, CellClient],
    uuid: str,
    project_id: str | None,
    version: Version,
) -> ShowOutcome:
    """Find ``uuid`` for a caller scoped to ``project_id`` (``None``: an admin).

    A cell whose schema does not match is :class:`CellDown` (its outcome a
    :class:`~cells.fanout.CellFailed` with a ``schema_fault``); raises
    :class:`~cells.errors.ApiDatabaseUnavailable`.
    """
    try:
        mapping = await api.mapping(uuid)
    except ApiDatabaseUnavailable as exc:
        return await _find_in_every_cell(clients, uuid, project_id, version, exc)
    if mapping is None:
        return Missing("no mapping")
    if project_id is not None and mapping.project_id != project_id:
        return Missing("other project")
    if mapping.cell_id is None:
        return Missing("not scheduled")
    client = clients.get(mapping.cell_id)
    if client is None:
        return Missing("unknown cell")
    outcome = await client.server(uuid, project_id, version)
    match outcome:
        case CellServer(row=None):
            return Missing("not in cell", client.cell)
        case CellServer(row=row, details=details, elapsed_ms=elapsed) if row is not None:
            return Found(client.cell, row, details, elapsed)
        case CellFailed() | CellTimedOut() | CellSlow() | CellSkipped():
            return CellDown(client.cell, mapping, outcome)
    raise AssertionError("unreachable")  # pragma: no cover


async def _find_in_every_cell(
    clients: Mapping[int, CellClient],
    uuid: str,
    project_id: str | None,
    version: Version,
    unavailable: ApiDatabaseUnavailable,
) -> ShowOutcome:
    """Without the mapping: ask every enabled cell at once (see the module docstring)."""
    asked = [c for c in clients.values() if not c.cell.disabled]
    outcomes = await run_all([c.server(uuid, project_id, version) for c in asked])
    log.warning("API database unavailable for %s's mapping: asked %d cells", uuid, len(asked))
    for client, outcome in zip(asked, outcomes, strict=True):
        if isinstance(outcome, CellServer) and outcome.row is not None:
            return Found(client.cell, outcome.row, outcome.details, outcome.elapsed_ms, True)
    if all(isinstance(outcome, CellServer) for outcome in outcomes):
        return Missing("in no cell")
    raise unavailable


def server_select(scoped: bool) -> Select[tuple[object, ...]]:
    """The row show reads (bound as ``uuid``, and ``project_id`` when ``scoped``), never a
    soft-deleted one."""
    c = instances.c
    statement = select(*(c[name] for name in VIEW_COLUMNS)).where(
        c.uuid == bindparam("uuid"), c.deleted == 0
    )
    if scoped:
        statement = statement.where(c.project_id == bindparam("project_id"))
    return statement.limit(1)


async def down_cell_view(api: ApiDatabase, down: CellDown) -> DownCellView | None:
    """What Nova shows of an instance in a down cell (2.69+), or ``None`` where Nova
    answers "not found": the mapping is queued for delete, or no request spec is left
    (archived with a deleted instance)."""
    if down.mapping.queued_for_delete:
        return None
    document = await api.request_spec(down.mapping.instance_uuid)
    info = decode_request_spec(document) if document is not None else None
    return None if info is None else DownCellView(down.mapping, info)
