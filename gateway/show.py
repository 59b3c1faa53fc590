"""``GET /servers/{id}``: find the instance (:mod:`cells.show`), apply Nova's rules to the
outcome, render it with the detail view.

* Found: the ``/servers/detail`` entry of the server (same renderer, same side data),
  plus ``server_groups`` from 2.71, which Nova shows on ``show`` only (the group looked up
  as Nova's project-scoped query finds it: any for an admin, the caller's project's for
  anyone else; :mod:`gateway.requestspecs`).
* Not found — unknown, purged or malformed id, soft-deleted (for admins too: Nova reads
  with ``read_deleted="no"``), another project's for a non-admin, not scheduled to a cell
  yet: 404 ``itemNotFound`` "Instance <id> could not be found.".
* Cell down (error, hang, open breaker): from 2.69 Nova's down-cell view from the API
  database (404 where Nova gives one: queued for delete, no request spec), with the cell in
  ``X-Cells-Unavailable``; before 2.69 a 503 with ``Retry-After`` (Nova gives a 500), except
  for a mapping queued for delete: a 404 at every microversion.
* The API database down: every cell is asked for the uuid (:func:`cells.find_instance`),
  counted in ``cellgate_api_database_fallbacks_total{lookup="mapping"}``.

Like a listing, everything runs inside ``request_budget_s``; a cell whose schema does not
match is a 500 that never touches its breaker, and a failing API database is a 503.
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuid_module
from dataclasses import dataclass, field, replace
from enum import StrEnum

from cells import (
    Cell,
    CellDown,
    CellFailed,
    CellsError,
    Found,
    Missing,
    ShowOutcome,
    down_cell_view,
    down_name,
    find_instance,
)
from gateway.auth import Principal
from gateway.cellerrors import http_error
from gateway.details import page_security_groups
from gateway.errors import GatewayError, NotFound, ServiceUnavailable
from gateway.requestspecs import group_scope, server_spec
from gateway.state import AppState
from gateway.views import ViewContext, server_detail, stub_show

__all__ = ["ShowResult", "Shown", "instance_uuid", "show_server"]

log = logging.getLogger(__name__)


class ShowResult(StrEnum):
    """The ``outcome`` label of ``cellgate_show_requests_total``."""

    FOUND = "found"
    NOT_FOUND = "not_found"
    STUB = "stub"
    UNAVAILABLE = "unavailable"
    ERROR = "error"


@dataclass(slots=True)
class Shown:
    """The ``server`` body and the cells the response must name as unavailable."""

    server: dict[str, object]
    unavailable: list[Cell] = field(default_factory=list)
    neutron_unavailable: bool = False  # security_groups left out (gateway.neutron)


def instance_uuid(server_id: str) -> str | None:
    """The uuid to look up, or ``None`` when ``server_id`` cannot be one.

    Nova looks up only uuid-like ids and its MySQL comparison ignores case, so an upper
    case uuid finds its server there; stored uuids are lower case, so the id is lowered.
    """
    lowered = server_id.lower()
    try:
        return lowered if str(uuid_module.UUID(lowered)) == lowered else None
    except ValueError:
        return None


async def show_server(
    state: AppState, caller: Principal, server_id: str, ctx: ViewContext
) -> Shown:
    """The server ``server_id`` as ``caller`` may see it at ``ctx.version``; raises
    :class:`~gateway.errors.NotFound` or :class:`~gateway.errors.ServiceUnavailable` (a
    misconfigured cell is a down one: the 2.69 view, or a 503 below)."""
    metrics = state.metrics.show_requests
    try:
        async with asyncio.timeout(state.settings.request_budget_s):
            shown = await _show(state, caller, server_id, ctx)
    except (CellsError, TimeoutError) as exc:
        error = http_error(exc, state, "request")
        metrics.labels(_result(error)).inc()
        raise error from None
    except GatewayError as error:
        metrics.labels(_result(error)).inc()
        raise
    metrics.labels(ShowResult.STUB if shown.unavailable else ShowResult.FOUND).inc()
    return shown


def _result(error: GatewayError) -> ShowResult:
    """The metric's label for a show that failed with ``error``."""
    if isinstance(error, NotFound):
        return ShowResult.NOT_FOUND
    if isinstance(error, ServiceUnavailable):
        return ShowResult.UNAVAILABLE
    return ShowResult.ERROR


async def _show(state: AppState, caller: Principal, server_id: str, ctx: ViewContext) -> Shown:
    uuid = instance_uuid(server_id)
    if uuid is None:
        raise _not_found(server_id)
    scope = None if caller.is_admin else caller.project_id
    outcome = await find_instance(state.api, state.clients, uuid, scope, ctx.version)
    _observe(state, outcome)
    if isinstance(outcome, Found | Missing) and (
        outcome.without_mapping if isinstance(outcome, Found) else outcome.reason == "in no cell"
    ):
        state.metrics.api_fallbacks.labels("mapping").inc()
    match outcome:
        case Found(row=row, details=details):
            grants = state.policy.show(caller, str(row["project_id"]))
            groups, neutron_failed = await page_security_groups(state, [row])
            spec = await server_spec(state, uuid, ctx.version, caller)
            default = state.settings.default_availability_zone
            zones = await state.host_zones.for_rows(state.api, [row], default)
            shown_ctx = replace(ctx, grants=grants, host_zones=zones, security_groups=groups)
            server = server_detail(row, shown_ctx, details, spec, show=True)
            unavailable: list[Cell] = []
        case Missing():
            raise _not_found(server_id)
        case CellDown(cell=cell, mapping=mapping):
            if mapping.queued_for_delete:
                # Deleted: what the cell would say. Nova knows it only from 2.69 (before,
                # any down cell is a 500); the mapping tells at every version.
                raise _not_found(server_id)
            if ctx.version < (2, 69):
                raise ServiceUnavailable(
                    f"Cell {cell.label} is not responding; the server's details are not available.",
                    state.settings.retry_after_s,
                )
            ctx = replace(ctx, grants=state.policy.show(caller, mapping.project_id))
            view = await down_cell_view(state.api, outcome)
            if view is None:
                raise _not_found(server_id)
            server = stub_show(uuid, mapping.project_id, mapping.created_at, view.spec, ctx)
            unavailable = [cell]
            neutron_failed = False
    if ctx.version >= (2, 71):
        group = await state.api.server_group(uuid, group_scope(caller))
        server["server_groups"] = [] if group is None else [group]
    return Shown(server, unavailable, neutron_failed)


def _not_found(server_id: str) -> NotFound:
    return NotFound(f"Instance {server_id} could not be found.")


def _observe(state: AppState, outcome: ShowOutcome) -> None:
    """The per-cell metrics and one log line for the cell asked, if one was."""
    level, rows = logging.DEBUG, 0
    match outcome:
        case Found(cell=cell, elapsed_ms=elapsed):
            name, rows = "ok", 1
        case Missing(reason=reason, cell=None):
            log.debug("not found without asking a cell", extra={"reason": reason})
            return
        case Missing(cell=Cell() as cell):
            name, elapsed = "ok", 0.0
        case CellDown(cell=cell, outcome=down):
            level, elapsed, name = logging.WARNING, down.elapsed_ms, down_name(down)
            if isinstance(down, CellFailed) and down.schema_fault is not None:
                state.metrics.config_errors.labels(cell.label, down.schema_fault).inc()
    state.metrics.cell_outcomes.labels(cell.label, name).inc()
    if elapsed:
        state.metrics.cell_latency.labels(cell.label).observe(elapsed / 1000)
    log.log(
        level,
        "cell outcome",
        extra={"cell": cell.label, "outcome": name, "rows": rows, "elapsed_ms": round(elapsed, 2)},
    )
