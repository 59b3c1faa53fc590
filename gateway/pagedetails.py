"""Late materialization of a page's detail data: after the merge, one batched read of the
side tables in every cell the page's rows came from, all cells concurrently.

A cell that answered the keyset query but cannot answer here (failed, hung, slow, or its
breaker opened meanwhile) makes the page a 503: it would otherwise show servers without
addresses, flavor or volumes, which looks complete.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from cells import (
    CellDetails,
    CellFailed,
    CellSkipped,
    CellSlow,
    CellTimedOut,
    Details,
    Row,
    run_all,
)
from gateway.cellerrors import cells_unavailable
from gateway.state import AppState

__all__ = ["fetch_page_details"]

log = logging.getLogger(__name__)


async def fetch_page_details(
    state: AppState,
    rows: Sequence[Row],
    cell_of: Mapping[str, int],
    version: tuple[int, int],
) -> dict[str, Details]:
    """Side data per uuid for ``rows`` (stubs and rows of unknown cells have none)."""
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
            case CellFailed(error=error):
                log.warning("detail fetch failed in %s: %s", label, error)
            case CellTimedOut() | CellSlow():
                log.warning("detail fetch timed out in %s", label)
            case CellSkipped():
                log.warning("detail fetch skipped in %s: circuit breaker open", label)
        raise cells_unavailable([label], state)

    # One task group: a failing cell cancels the others' reads (cells.fanout.run_all).
    found = await run_all([one(cell_id, uuids) for cell_id, uuids in by_cell.items()])
    return {uuid: details for part in found for uuid, details in part.items()}
