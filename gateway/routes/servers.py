"""``GET /v2.1[/{project_id}]/servers[/detail]`` and ``GET /v2.1[/{project_id}]/servers/{id}``.

The listing routes are declared before the show routes: ``/servers/detail`` must never be
read as the server ``detail``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from cache import page_key
from cells import Row, fingerprint
from cells.stubs import StubRow
from gateway.auth import Principal
from gateway.celldown import nova_shows_stubs
from gateway.deps import Caller, Microversion, State, base_url
from gateway.errors import BadRequest, GatewayError, ServiceUnavailable
from gateway.listing import list_page
from gateway.metrics import ListOutcome
from gateway.neutron import LEFT_OUT_HEADER
from gateway.pagecache import UNAVAILABLE, pack, still_down, unpack
from gateway.params import Version
from gateway.policy import NO_VIEW, ListGrants
from gateway.request import applied_query, parse_list_request
from gateway.show import show_server
from gateway.state import AppState
from gateway.versions import version_headers
from gateway.views import (
    ViewContext,
    next_link,
    server_detail,
    server_summary,
    stub_detail,
    stub_summary,
)

__all__ = ["router"]

router = APIRouter()


def _stub(row: Row, ctx: ViewContext, detail: bool) -> dict[str, object]:
    uuid = str(row["uuid"])
    created = row["created_at"]
    if not detail or not isinstance(created, datetime):
        return stub_summary(uuid, ctx)
    return stub_detail(uuid, str(row["project_id"]), created, ctx)


async def _render(
    request: Request,
    state: AppState,
    caller: Principal,
    version: Version,
    items: list[tuple[str, str]],
    grants: ListGrants,
    detail: bool,
    project_id: str | None,
) -> tuple[bytes, dict[str, str]]:
    parsed = parse_list_request(items, caller, grants, version, state.settings.max_limit)
    stubs = nova_shows_stubs(items, version, grants.all_filters)
    page = await list_page(state, caller, parsed, detail=detail, version=version, nova_stubs=stubs)
    ctx = ViewContext(
        base_url(request),
        project_id,
        version,
        grants.view,
        default_availability_zone=state.settings.default_availability_zone,
        security_groups=page.security_groups,
        service_down_time_s=state.settings.service_down_time_s,
        host_zones=page.zones,
    )

    def render(row: Row) -> dict[str, object]:
        if isinstance(row, StubRow):
            return _stub(row, ctx, detail)
        if detail:
            uuid = str(row["uuid"])
            return server_detail(row, ctx, page.details.get(uuid), page.specs.get(uuid))
        return server_summary(row, ctx)

    body: dict[str, object] = {"servers": [render(row) for row in page.listing.rows]}
    last = page.last_uuid or (str(page.listing.rows[-1]["uuid"]) if page.listing.rows else None)
    if page.listing.has_more and last is not None:
        collection = "servers/detail" if detail else "servers"
        body["servers_links"] = [next_link(ctx, collection, items, last)]
    headers = version_headers(version)
    if page.listing.unavailable:
        headers[UNAVAILABLE] = ",".join(c.label for c in page.listing.unavailable)
    if page.neutron_unavailable:
        headers[LEFT_OUT_HEADER] = "security_groups"
    return orjson.dumps(body), headers


def _check_project(project_id: str | None, caller: Principal) -> None:
    if project_id is not None and project_id != caller.project_id:
        raise BadRequest(
            f"Malformed request URL: URL's project_id '{project_id}' doesn't match "
            f"Context's project_id '{caller.project_id}'"
        )


def _failure(exc: Exception) -> ListOutcome:
    if isinstance(exc, ServiceUnavailable):
        return "unavailable"
    if isinstance(exc, GatewayError) and exc.status < 500:
        return "client_error"
    return "error"


async def _servers(
    request: Request,
    state: State,
    caller: Caller,
    version: Microversion,
    *,
    detail: bool,
    project_id: str | None,
) -> Response:
    """A listing, counted once per request by outcome (a page cache hit as the page it
    repeats: complete, or partial while its cells are still down)."""
    try:
        response = await _list_servers(request, state, caller, version, detail, project_id)
    except Exception as exc:
        state.metrics.requests.labels(_failure(exc)).inc()
        raise
    partial = UNAVAILABLE in response.headers or LEFT_OUT_HEADER in response.headers
    state.metrics.requests.labels("partial" if partial else "complete").inc()
    return response


async def _list_servers(
    request: Request,
    state: AppState,
    caller: Principal,
    version: Version,
    detail: bool,
    project_id: str | None,
) -> Response:
    _check_project(project_id, caller)
    items = applied_query(request.query_params.multi_items(), version)
    grants = state.policy.listing(caller, detail=detail)
    # Identical requests (same scope, policy decisions, query, microversion, base URL)
    # share one fan-out while in flight, and one rendered body for page_cache_ttl_s.
    key = page_key(
        state.settings.redis_prefix,
        fingerprint(
            {
                "project": caller.project_id,
                "grants": dataclasses.asdict(grants),
                "path": [detail, project_id],
                "query": items,
                "version": list(version),
                "base": base_url(request),
            }
        ),
    )
    ttl = state.settings.page_cache_ttl_s
    clients = state.clients.values()
    if ttl > 0:
        entry = await state.store.get(key)  # expiry absolute from the write
        cached = unpack(entry) if entry is not None else None
        # A partial page answers only while the cells it names are still skipped here.
        if cached is not None and still_down(cached[1], clients):
            state.metrics.page_cache.labels("hit").inc()
            body, extra = cached
            headers = version_headers(version) | extra
            return Response(body, media_type="application/json", headers=headers)

    ran = False  # only the request whose compute() the flight runs is a miss

    async def compute() -> tuple[bytes, dict[str, str]]:
        nonlocal ran
        ran = True
        body, headers = await _render(
            request, state, caller, version, items, grants, detail, project_id
        )
        if ttl > 0 and LEFT_OUT_HEADER not in headers and still_down(headers, clients):
            await state.store.set(key, pack(body, headers), ttl)
        return body, headers

    if state.settings.coalesce_listings:
        body, headers = await state.flight.do(key, compute)
    else:
        body, headers = await compute()
    state.metrics.page_cache.labels("miss" if ran else "coalesced").inc()
    return Response(body, media_type="application/json", headers=headers)


@router.get("/v2.1/servers", summary="List servers (id, name, links)")
async def list_servers(
    request: Request, state: State, caller: Caller, version: Microversion
) -> Response:
    return await _servers(request, state, caller, version, detail=False, project_id=None)


@router.get("/v2.1/servers/detail", summary="List servers with details")
async def list_servers_detail(
    request: Request, state: State, caller: Caller, version: Microversion
) -> Response:
    return await _servers(request, state, caller, version, detail=True, project_id=None)


@router.get("/v2.1/{project_id}/servers", summary="List servers (project-scoped URL)")
async def list_project_servers(
    project_id: str, request: Request, state: State, caller: Caller, version: Microversion
) -> Response:
    return await _servers(request, state, caller, version, detail=False, project_id=project_id)


@router.get("/v2.1/{project_id}/servers/detail", summary="List servers with details (project URL)")
async def list_project_servers_detail(
    project_id: str, request: Request, state: State, caller: Caller, version: Microversion
) -> Response:
    return await _servers(request, state, caller, version, detail=True, project_id=project_id)


async def _show(
    request: Request,
    state: AppState,
    caller: Principal,
    version: Version,
    server_id: str,
    project_id: str | None,
) -> Response:
    _check_project(project_id, caller)
    if version >= STRICT_SHOW_QUERY_SINCE:
        _no_query(request)
    ctx = ViewContext(
        base_url(request),
        project_id,
        version,
        NO_VIEW,  # show decides on the server's project once it has found it
        default_availability_zone=state.settings.default_availability_zone,
        service_down_time_s=state.settings.service_down_time_s,
    )
    shown = await show_server(state, caller, server_id, ctx)
    headers = version_headers(version)
    if shown.unavailable:
        headers[UNAVAILABLE] = ",".join(c.label for c in shown.unavailable)
    if shown.neutron_unavailable:
        headers[LEFT_OUT_HEADER] = "security_groups"
    body = orjson.dumps({"server": shown.server})
    return Response(body, media_type="application/json", headers=headers)


STRICT_SHOW_QUERY_SINCE = (2, 102)
"""Nova's show takes no query parameter, and from 2.102 rejects any (before: ignores)."""


def _no_query(request: Request) -> None:
    names = sorted({name for name, _ in request.query_params.multi_items()})
    if names:
        listed = ", ".join(repr(name) for name in names)
        verb = "was" if len(names) == 1 else "were"
        raise BadRequest(
            "Invalid input for query parameters. Additional properties are not "
            f"allowed ({listed} {verb} unexpected)"
        )


@router.get("/v2.1/servers/{server_id}", summary="Show a server (the detail view)")
async def show_server_route(
    server_id: str, request: Request, state: State, caller: Caller, version: Microversion
) -> Response:
    return await _show(request, state, caller, version, server_id, project_id=None)


@router.get("/v2.1/{project_id}/servers/{server_id}", summary="Show a server (project URL)")
async def show_project_server(
    project_id: str,
    server_id: str,
    request: Request,
    state: State,
    caller: Caller,
    version: Microversion,
) -> Response:
    return await _show(request, state, caller, version, server_id, project_id=project_id)
