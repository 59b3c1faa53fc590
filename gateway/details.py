"""Late materialization of a page's detail data: after the merge, one batched read of the
side tables in every cell the page's rows came from, all cells concurrently.

A cell that answered the keyset query but cannot answer here (failed, hung, slow, its
breaker opened meanwhile, or its side tables misconfigured) is left out as a down cell is:
its rows become the 2.69 stubs, or are dropped below 2.69, and the page names it
(:func:`gateway.listing.list_page`). Its rows are never shown without their side data
(addresses, flavor, volumes), which would look complete. The chaos soak (issue #22) found
such pages a 503 when they were one: a walk resumed from a frontier holding a cell that
failed since lost its whole page for one cell's fault.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cells import (
    Cell,
    CellDetails,
    CellFailed,
    CellSkipped,
    CellSlow,
    CellTimedOut,
    Details,
    Row,
    down_name,
    run_all,
)
from gateway.neutron import Groups, NotInCatalog
from gateway.params import Version
from gateway.state import AppState

__all__ = ["PageDetails", "fetch_page_details", "page_security_groups"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PageDetails:
    """Side data per uuid, and the cells that did not give theirs (left out of the page)."""

    details: dict[str, Details] = field(default_factory=dict)
    left_out: list[Cell] = field(default_factory=list)


async def fetch_page_details(
    state: AppState,
    rows: Sequence[Row],
    cell_of: Mapping[str, int],
    version: Version,
) -> PageDetails:
    """Side data per uuid for ``rows`` (stubs and rows of unknown cells have none), and the
    cells that failed to give it; every cell is asked concurrently, none cancels another."""
    by_cell: dict[int, list[str]] = {}
    for row in rows:
        uuid = str(row["uuid"])
        cell_id = cell_of.get(uuid)
        if cell_id is not None:
            by_cell.setdefault(cell_id, []).append(uuid)

    async def one(cell_id: int, uuids: list[str]) -> dict[str, Details]:
        client = state.clients[cell_id]
        label = client.cell.label
        outcome = await client.details(uuids, version)
        match outcome:
            case CellDetails(details=found):
                return found
            case CellFailed(schema_fault=str(reason)):
                state.metrics.config_errors.labels(label, reason).inc()
            case CellFailed(error=error):
                log.warning("detail fetch failed in %s: %s", label, error)
            case CellTimedOut() | CellSlow():
                log.warning("detail fetch timed out in %s", label)
            case CellSkipped():
                log.warning("detail fetch skipped in %s: circuit breaker open", label)
        state.metrics.cell_outcomes.labels(label, down_name(outcome)).inc()
        left_out.append(client.cell)
        return {}

    left_out: list[Cell] = []
    found = await run_all([one(cell_id, uuids) for cell_id, uuids in by_cell.items()])
    return PageDetails({uuid: d for part in found for uuid, d in part.items()}, left_out)


async def page_security_groups(state: AppState, rows: Sequence[Row]) -> tuple[Groups | None, bool]:
    """``security_groups`` per uuid of ``rows`` from Neutron and whether Neutron failed:
    ``(None, False)`` when no Neutron is configured, ``({}, True)`` when it failed."""
    if state.neutron is None:
        return None, False
    groups = await state.neutron.security_groups([str(row["uuid"]) for row in rows])
    if isinstance(groups, NotInCatalog):  # no Neutron in the catalog: as without one
        return None, False
    return ({}, True) if groups is None else (groups, False)
