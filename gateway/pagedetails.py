"""Late materialization of a page's detail data: after the merge, one batched read per
side table in every cell the page's rows came from, all cells concurrently.

A cell that answered the keyset query but fails here makes the page a 503 (it would
otherwise show servers without addresses, flavor or volumes, which looks complete).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence

from cells import Blame, CellMisconfigured, Row, blame, run_all
from cells.details import Details, fetch_details
from cells.faults import DATABASE_ERRORS
from gateway.errors import ServiceUnavailable
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
        target = state.targets[cell_id]
        try:
            async with asyncio.timeout(target.timeout_s):
                return await fetch_details(target.engine, uuids, version)
        except DATABASE_ERRORS as exc:
            # Whose fault, as for the keyset query (cells.faults): a schema mismatch is a
            # 500, never an outage.
            fault = blame(exc)
            if fault.blame is Blame.CONFIG:
                raise CellMisconfigured(target.cell.label, fault.message) from exc
            log.warning("detail fetch failed in %s: %s", target.cell.label, fault.message)
            raise _unavailable(state, target.cell.label) from None
        except TimeoutError:
            log.warning("detail fetch timed out in %s", target.cell.label)
            raise _unavailable(state, target.cell.label) from None

    # One task group: a failing cell cancels the others' reads (cells.fanout.run_all).
    found = await run_all([one(cell_id, uuids) for cell_id, uuids in by_cell.items()])
    return {uuid: details for part in found for uuid, details in part.items()}


def _unavailable(state: AppState, label: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"Cell(s) {label} not responding; the listing would be incomplete.",
        state.settings.retry_after_s,
    )
