"""Listing orchestration: scope → cells → marker → fan-out/merge → outcome policy.

Returns a :class:`Page` of rows; rendering is :mod:`gateway.views`' job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field

from cells import (
    Cell,
    CellTarget,
    InvalidQuery,
    ListQuery,
    MarkerNotFound,
    MarkerUnavailable,
    Row,
    SortSpec,
    list_instances,
    resolve_marker,
)
from gateway.auth import Principal
from gateway.errors import BadRequest, ServiceUnavailable
from gateway.request import ListRequest
from gateway.state import AppState

__all__ = ["Page", "list_page"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Page:
    """One page of instances and what the response must say about it."""

    rows: list[Row]
    has_more: bool
    unavailable: list[Cell] = field(default_factory=list)
    queried: list[Cell] = field(default_factory=list)


async def _cells_to_ask(state: AppState, project_id: str | None) -> list[CellTarget]:
    enabled = [t for t in state.targets.values() if not t.cell.disabled]
    if project_id is None or not state.settings.per_project_cells:
        return enabled
    cell_ids = state.project_cells.get(project_id)
    if cell_ids is None:
        cell_ids = await state.api.cell_ids_for_project(project_id)
        state.project_cells.put(project_id, cell_ids)
    # A project with no mappings asks no cell at all (Nova asks every cell: H13).
    return [t for t in enabled if t.cell.id in cell_ids]


def _unavailable_error(cells: list[Cell], state: AppState) -> ServiceUnavailable:
    names = ", ".join(cell.label for cell in cells)
    return ServiceUnavailable(
        f"Cell(s) {names} not responding; the listing would be incomplete.",
        state.settings.retry_after_s,
    )


async def list_page(
    state: AppState, principal: Principal, request: ListRequest, *, detail: bool
) -> Page:
    """Fetch the page ``request`` asks for; raises 4xx/503 :mod:`gateway.errors`."""
    if request.limit == 0 or request.empty:
        return Page([], False)
    filters = request.filters
    if request.flavorid is not None:
        type_ids = await state.api.flavor_ids(request.flavorid)
        if not type_ids:
            return Page([], False)  # Nova: an unknown flavor lists nothing
        filters = dataclasses.replace(filters, instance_type_ids=type_ids)

    spec = SortSpec.build(request.sort)
    targets = await _cells_to_ask(state, filters.project_id)
    budget = state.settings.request_budget_s
    try:
        async with asyncio.timeout(budget):
            after = None
            if request.marker is not None:
                scope = None if principal.is_admin else principal.project_id
                after = await resolve_marker(state.api, state.targets, spec, request.marker, scope)
            columns = None if detail else ("uuid", "display_name", *spec.names)
            query = ListQuery(spec, filters, request.limit, after, columns)
            result = await list_instances(targets, query)
    except MarkerNotFound as exc:
        raise BadRequest(f"marker [{exc.marker}] not found") from None
    except MarkerUnavailable as exc:
        raise _unavailable_error([exc.cell], state) from None
    except InvalidQuery as exc:
        raise BadRequest(f"Invalid filter value: {exc}") from None
    except TimeoutError:
        raise ServiceUnavailable(
            f"The listing did not complete within {budget:g} s.", state.settings.retry_after_s
        ) from None

    if result.unavailable:
        if len(result.unavailable) == len(targets):
            raise _unavailable_error(result.unavailable, state)
        if not state.settings.list_records_by_skipping_down_cells:
            raise _unavailable_error(result.unavailable, state)
        log.warning(
            "partial listing: %s unavailable", ", ".join(c.label for c in result.unavailable)
        )
    return Page(result.rows, result.has_more, result.unavailable, [t.cell for t in targets])
