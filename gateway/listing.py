"""Listing orchestration: scope → cells → marker → fan-out/merge → outcome policy.

Returns a :class:`Page` of rows; rendering is :mod:`gateway.views`' job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import DateTime

from cache import fingerprint, frontier_key
from cells import (
    Cell,
    CellClient,
    CellCursor,
    CellsError,
    ListQuery,
    ListResult,
    Row,
    SortSpec,
    decode_frontier,
    encode_frontier,
    list_instances,
    resolve_marker,
)
from cells.details import VIEW_COLUMNS, Details
from cells.filters import InstanceFilters
from cells.schema import instances
from cells.stubs import stubs_possible
from gateway.auth import Principal
from gateway.cellerrors import cells_unavailable, http_error
from gateway.errors import BadRequest
from gateway.pagedetails import fetch_page_details
from gateway.request import ListRequest
from gateway.state import AppState, ProjectCells

__all__ = ["Page", "list_page"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Page:
    """One page of instances and what the response must say about it."""

    rows: list[Row]
    has_more: bool
    unavailable: list[Cell] = field(default_factory=list)
    queried: list[Cell] = field(default_factory=list)
    slow: list[Cell] = field(default_factory=list)  # of the unavailable: alive, too slow
    stubbed: list[Cell] = field(default_factory=list)  # of the unavailable: shown as stubs
    details: dict[str, Details] = field(default_factory=dict)  # detail view: per uuid


async def _cells_to_ask(
    state: AppState, project_id: str | None
) -> tuple[list[CellClient], dict[int, float] | None]:
    """The cells to ask and each one's expected share of the rows (``None``: equal)."""
    enabled = [c for c in state.clients.values() if not c.cell.disabled]
    if not state.settings.per_project_cells:
        return enabled, None
    key = ProjectCells.ALL if project_id is None else project_id
    counts = await state.project_cells.counts(key, lambda: state.api.cell_counts(project_id))
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


_ALL_COLUMNS = VIEW_COLUMNS
_DATETIME_COLUMNS = frozenset(c.name for c in instances.columns if isinstance(c.type, DateTime))


def _columns(spec: SortSpec, detail: bool) -> tuple[str, ...]:
    if detail:
        return _ALL_COLUMNS
    return tuple(dict.fromkeys(("uuid", "display_name", *spec.names)))


def _filter_parts(filters: InstanceFilters) -> dict[str, object]:
    parts: dict[str, object] = {}
    for f in dataclasses.fields(filters):
        value = getattr(filters, f.name)
        if isinstance(value, frozenset):
            value = sorted(value, key=repr)
        elif isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        parts[f.name] = value
    return parts


def walk_fingerprint(
    filters: InstanceFilters, spec: SortSpec, clients: list[CellClient], columns: tuple[str, ...]
) -> str:
    """What makes two pages part of the same walk: scope and filters (``project_id`` is
    the scope), order, cell set and column set. Never shared across projects."""
    return fingerprint(
        {
            "filters": _filter_parts(filters),
            "sort": [[k.name, k.direction.value] for k in spec.keys],
            "cells": sorted(c.cell.id for c in clients),
            "columns": list(columns),
        }
    )


async def _cached_frontier(
    state: AppState,
    walk: str,
    marker: str,
    columns: tuple[str, ...],
    clients: list[CellClient],
) -> dict[int, CellCursor] | None:
    key = frontier_key(state.settings.redis_prefix, walk, marker)
    blob = await state.store.get(key, state.settings.frontier_ttl_s)
    frontier = decode_frontier(blob, columns) if blob is not None else None
    if frontier is not None and set(frontier) != {c.cell.id for c in clients}:
        frontier = None  # saved for another cell set: a miss
    state.metrics.frontier.labels("hit" if frontier else "miss").inc()
    return frontier


async def _save_frontier(
    state: AppState,
    walk: str,
    last: Row,
    saved: dict[int, CellCursor],
    columns: tuple[str, ...],
) -> None:
    key = frontier_key(state.settings.redis_prefix, walk, str(last["uuid"]))
    blob = encode_frontier(saved, columns, _DATETIME_COLUMNS)
    await state.store.set(key, blob, state.settings.frontier_ttl_s)


async def list_page(
    state: AppState,
    principal: Principal,
    request: ListRequest,
    *,
    detail: bool,
    version: tuple[int, int] = (2, 1),
) -> Page:
    """Fetch the page ``request`` asks for; raises 4xx/5xx :mod:`gateway.errors`.

    Everything, the API database's lookups included, runs inside ``request_budget_s``.
    Whose fault a failure is was decided by :mod:`cells.faults`: the client's is a 400 for
    this request only, a cell's is an outcome (partial page, or 503), a configuration
    error is a 500 that never touches a breaker, the API database's a 503
    (:mod:`gateway.cellerrors`).
    """
    if request.limit == 0 or request.empty:
        return Page([], False)
    try:
        async with asyncio.timeout(state.settings.request_budget_s):
            page = await _list(state, principal, request, detail, version)
    except (CellsError, TimeoutError) as exc:
        raise http_error(exc, state, "listing") from None

    if page.slow and request.filters.regex:
        # The cells are alive; this request's own expression was too costly for them.
        names = ", ".join(sorted({column for column, _ in request.filters.regex}))
        raise BadRequest(
            f"The filter {names} could not be evaluated within "
            f"{state.settings.cell_timeout_s:g} s in cell(s) "
            f"{', '.join(c.label for c in page.slow)}; use a simpler expression."
        )
    if page.unavailable:
        covered = {c.id for c in page.stubbed}
        if not state.settings.list_records_by_skipping_down_cells:
            raise cells_unavailable(page.unavailable, state)
        missing = [c for c in page.unavailable if c.id not in covered]
        if missing and len(page.unavailable) == len(page.queried):
            # Nothing to show: every asked cell is down and no stubs stand in for them all.
            raise cells_unavailable(page.unavailable, state)
        log.warning("partial listing: %s unavailable", ", ".join(c.label for c in page.unavailable))
    return page


async def _list(
    state: AppState,
    principal: Principal,
    request: ListRequest,
    detail: bool,
    version: tuple[int, int],
) -> Page:
    filters = request.filters
    if request.flavorid is not None:
        type_ids = await state.api.flavor_ids(request.flavorid)
        if not type_ids:
            return Page([], False)  # Nova: an unknown flavor lists nothing
        filters = dataclasses.replace(filters, instance_type_ids=type_ids)
    spec = SortSpec.build(request.sort)
    clients, shares = await _cells_to_ask(state, filters.project_id)
    columns = _columns(spec, detail)
    walk = walk_fingerprint(filters, spec, clients, columns)
    resume = None
    if request.marker is not None:
        resume = await _cached_frontier(state, walk, request.marker, columns, clients)
    after = None
    if request.marker is not None and resume is None:
        scope = None if principal.is_admin else principal.project_id
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
        await _save_frontier(state, walk, result.rows[-1], result.frontier, columns)
    page = Page(
        result.rows,
        result.has_more,
        result.unavailable,
        [c.cell for c in clients],
        result.slow,
        result.stubbed,
    )
    if detail:  # late materialization: side data for this page's rows only
        page.details = await fetch_page_details(state, result.rows, result.cell_of, version)
    return page


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
