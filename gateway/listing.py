"""Listing orchestration: scope → cells → marker → fan-out/merge → outcome policy.

Returns a :class:`Page` of rows; rendering is :mod:`gateway.views`' job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field

from cells import (
    ApiDatabaseUnavailable,
    Cell,
    CellClient,
    CellsError,
    ListQuery,
    ListResult,
    Row,
    SortSpec,
    first_error,
    list_instances,
    resolve_marker,
    walk_fingerprint,
)
from cells.details import VIEW_COLUMNS, Details
from cells.novajson import RequestSpecInfo
from cells.stubs import StubRow, stubs_possible
from gateway.auth import Principal
from gateway.cellerrors import cells_unavailable, http_error
from gateway.details import fetch_page_details, page_security_groups
from gateway.errors import BadRequest
from gateway.frontiers import cached_frontier, read_ahead_next, save_frontier
from gateway.ipfilters import ip_filters_by_neutron
from gateway.neutron import Groups
from gateway.params import Version
from gateway.request import ListRequest
from gateway.requestspecs import page_specs
from gateway.state import AppState, ProjectCells

__all__ = ["Page", "list_page"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Page:
    """One page of instances (the cells' :class:`~cells.ListResult`) and what the
    response must say about it."""

    listing: ListResult  # the rows in order, whether more exist, the cells left out
    queried: list[Cell] = field(default_factory=list)
    details: dict[str, Details] = field(default_factory=dict)  # detail view: per uuid
    security_groups: Groups | None = None  # detail view, from Neutron when configured
    neutron_unavailable: bool = False  # Neutron failed: security_groups left out
    # The next marker when it is not the last row shown (that row's cell was left out).
    last_uuid: str | None = None
    specs: dict[str, RequestSpecInfo] = field(default_factory=dict)  # detail from 2.96
    zones: dict[str, str] = field(default_factory=dict)  # detail: host -> zone shown


async def _cells_to_ask(
    state: AppState, project_id: str | None
) -> tuple[list[CellClient], dict[int, float] | None]:
    """The cells to ask and each one's expected share of the rows (``None``: equal)."""
    enabled = [c for c in state.clients.values() if not c.cell.disabled]
    if not state.settings.per_project_cells:
        return enabled, None
    key = ProjectCells.ALL if project_id is None else project_id
    try:
        counts = await state.project_cells.counts(key, lambda: state.api.cell_counts(project_id))
    except ApiDatabaseUnavailable as exc:
        # The API database cannot count: ask every enabled cell, a superset of the project's
        # (the listing stays exact, only wider), sized equally. Its other lookups (a cold
        # marker, the 2.69 stubs) still need it; a first page does not.
        log.warning("API database unavailable for the cell counts, asking every cell: %s", exc)
        state.metrics.api_fallbacks.labels("cell_counts").inc()
        return enabled, None
    if project_id is not None:
        # A project with no mappings asks no cell at all (Nova asks every cell: H13). A
        # static cell unknown to cell_mappings (negative id) cannot be pruned: always asked.
        enabled = [c for c in enabled if c.cell.id in counts or c.cell.id < 0]
    # For all projects every cell is asked, even one without mappings: the counts may be
    # up to project_cells_ttl_s old, and an empty cell costs a one-row query.
    total = sum(counts.get(c.cell.id, 0) for c in enabled)
    if total == 0 or any(c.cell.id < 0 for c in enabled):
        return enabled, None
    return enabled, {c.cell.id: counts.get(c.cell.id, 0) / total for c in enabled}


def _columns(spec: SortSpec, detail: bool) -> tuple[str, ...]:
    if detail:
        return VIEW_COLUMNS
    return tuple(dict.fromkeys(("uuid", "display_name", *spec.names)))


async def list_page(
    state: AppState,
    principal: Principal,
    request: ListRequest,
    *,
    detail: bool,
    version: Version = (2, 1),
    nova_stubs: bool = False,
) -> Page:
    """Fetch the page ``request`` asks for; raises 4xx/5xx :mod:`gateway.errors`.
    ``nova_stubs``: Nova would answer this request with stubs for down cells
    (:func:`gateway.celldown.nova_shows_stubs`), so a strict configuration does too.

    Everything, the API database's lookups included, runs inside ``request_budget_s``.
    Whose fault a failure is was decided by :mod:`cells.faults`: the client's is a 400 for
    this request only, a cell's is an outcome (partial page, or 503) — a misconfigured
    cell's too, without its breaker — and the API database's a 503
    (:mod:`gateway.cellerrors`).
    """
    if request.limit == 0 or request.empty:
        return Page(ListResult([], False))
    try:
        async with asyncio.timeout(state.settings.request_budget_s):
            page = await _list(state, principal, request, detail, version)
    except (CellsError, TimeoutError) as exc:
        raise http_error(exc, state, "listing") from None

    ips = [name for name in ("ip", "ip6") if getattr(request.filters, name) is not None]
    if page.listing.slow and (request.filters.regex or ips):
        # The cells are alive; this request's own expression was too costly for them.
        names = ", ".join(sorted({column for column, _ in request.filters.regex} | set(ips)))
        raise BadRequest(
            f"The filter {names} could not be evaluated within "
            f"{state.settings.cell_timeout_s:g} s in cell(s) "
            f"{', '.join(c.label for c in page.listing.slow)}; use a simpler expression."
        )
    if page.listing.unavailable:
        covered = {c.id for c in page.listing.stubbed}
        missing = [c for c in page.listing.unavailable if c.id not in covered]
        if not state.settings.list_records_by_skipping_down_cells and (missing or not nova_stubs):
            # Nova fails such a listing, except where it answers with stubs (gateway.celldown).
            raise cells_unavailable(page.listing.unavailable, state)
        if missing and len(page.listing.unavailable) == len(page.queried):
            # Nothing to show: every asked cell is down and no stubs stand in for them all.
            raise cells_unavailable(page.listing.unavailable, state)
        log.warning(
            "partial listing: %s unavailable", ", ".join(c.label for c in page.listing.unavailable)
        )
    return page


async def _list(
    state: AppState,
    principal: Principal,
    request: ListRequest,
    detail: bool,
    version: Version,
) -> Page:
    filters = request.filters
    if request.flavorid is not None:
        type_ids = await state.api.flavor_ids(request.flavorid)
        if not type_ids:
            return Page(ListResult([], False))  # Nova: an unknown flavor lists nothing
        filters = dataclasses.replace(filters, instance_type_ids=type_ids)
    filters = await ip_filters_by_neutron(state, filters)
    if filters.matches_nothing:
        return Page(ListResult([], False))  # Nova: no port has such an address
    spec = SortSpec.build(request.sort)
    clients, shares = await _cells_to_ask(state, filters.project_id)
    columns = _columns(spec, detail)
    walk = walk_fingerprint(filters, spec, [c.cell.id for c in clients], columns)
    resume = None
    if request.marker is not None:
        resume = await cached_frontier(state, walk, request.marker, columns, clients)
    after = None
    if request.marker is not None and resume is None:
        # all_tenants (granted by the policy, maybe to a non-admin) finds any project's marker.
        scope = None if principal.is_admin or request.all_tenants else principal.project_id
        after = await resolve_marker(state.api, state.clients, spec, request.marker, scope)
    query = ListQuery(spec, filters, request.limit, after, columns)
    keep = state.settings.frontier_max_rows // max(1, len(clients))
    stubs_from = None
    if version >= (2, 69) and stubs_possible(spec, filters):
        stubs_from = state.api
    # A page not resumed from a frontier sizes its first batches by what each cell supplied
    # to the walk's last such page: its first page, or its last page after a cold marker
    # (the mix of cells deep in a listing is not the head's).
    learned = None if resume is not None else walk if request.marker is None else f"{walk}@"
    if learned is not None:
        shares = state.head_shares.blend(learned, shares, [c.cell.id for c in clients])
    result = await list_instances(
        clients, query, resume, keep_rows=keep, stubs_from=stubs_from, shares=shares
    )
    if learned is not None and result.rows and not result.unavailable:
        supplied = Counter(result.cell_of.get(str(row["uuid"])) for row in result.rows)
        state.head_shares.learn(learned, {c: n for c, n in supplied.items() if c is not None})
    _observe(state, result)
    if result.has_more and result.frontier is not None and result.rows:
        await save_frontier(state, walk, result.rows[-1], result.frontier, columns)
        if request.marker is not None and state.read_aheads.max_in_flight > 0:
            # The walk went on past its first page: read its next page ahead.
            read_ahead_next(state, clients, query, result, shares, walk, keep)
    page = Page(result, [c.cell for c in clients])
    if detail:  # late materialization: side data for this page's rows only
        # Neutron and the API database beside the cells' side tables; a cell failing its
        # side data is left out (below), an API database failing its lookups fails the page.
        default = state.settings.default_availability_zone
        try:
            async with asyncio.TaskGroup() as group:
                side = group.create_task(
                    fetch_page_details(state, result.rows, result.cell_of, version)
                )
                groups = group.create_task(page_security_groups(state, result.rows))
                specs = group.create_task(page_specs(state, result.rows, version, principal))
                zones = group.create_task(
                    state.host_zones.for_rows(state.api, result.rows, default)
                )
        except BaseExceptionGroup as failed:
            # The error itself (the API database's lookups failing: 503), not a group of it,
            # which no error handler knows (a 500).
            raise first_error(failed) from None
        page.details = side.result().details
        page.security_groups, page.neutron_unavailable = groups.result()
        page.specs, page.zones = specs.result(), zones.result()
        if side.result().left_out:
            _leave_out(page, side.result().left_out, result.cell_of, version)
    return page


def _leave_out(page: Page, cells: list[Cell], cell_of: dict[str, int], version: Version) -> None:
    """Leave out the rows of ``cells`` (their side data failed or is misconfigured) as a down
    cell's: stubs in their places from 2.69, dropped below.

    The next marker is the last row shown: where rows at the page's end were dropped, the
    next page starts after the last one kept (a marker without a frontier: the left-out
    cells are asked again from there), so a cell that recovers by then loses its rows to no
    walk, as with a cell down at the fan-out. Only when nothing is kept does the marker
    pass the dropped rows, named on this page, so a walk always moves on."""
    ids = {c.id for c in cells}
    page.listing.unavailable += [c for c in cells if c not in page.listing.unavailable]
    merged = page.listing.rows
    kept: list[Row] = []
    for row in merged:
        if cell_of.get(str(row["uuid"])) not in ids:
            kept.append(row)
        elif version >= (2, 69):
            kept.append(StubRow(row))
    if merged and not kept:
        page.last_uuid = str(merged[-1]["uuid"])
    page.listing.rows = kept
    page.listing.stubbed += [
        c for c in cells if version >= (2, 69) and c not in page.listing.stubbed
    ]


def _observe(state: AppState, result: ListResult) -> None:
    state.metrics.observe(result)
    for stats in result.stats:
        log.debug(
            "cell outcome",
            extra={
                "cell": stats.cell.label,
                "outcome": stats.outcome,
                "stubs": stats.stubs,
                "queries": stats.queries,
                "rows": stats.rows_fetched,
                "elapsed_ms": round(stats.elapsed_ms, 2),
            },
        )
