"""Version discovery (unauthenticated) and operations endpoints."""

from __future__ import annotations

import asyncio

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from cells import CellFailed, CellOutcome, CellRows, CellSkipped, CellTimedOut
from gateway.deps import State, base_url
from gateway.versions import version_document, versions_document

__all__ = ["router"]

router = APIRouter()


def _json(body: object, status: int = 200, media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=media_type)


@router.get("/", summary="Version discovery")
async def versions(request: Request) -> Response:
    return _json(versions_document(base_url(request)))


@router.get("/v2.1", summary="The v2.1 version document")
@router.get("/v2.1/", include_in_schema=False)
async def version(request: Request) -> Response:
    return _json(version_document(base_url(request)))


@router.get("/identity/v3", include_in_schema=False)
@router.get("/identity/v3/", include_in_schema=False)
async def identity_discovery(request: Request) -> Response:
    """A discovery-only identity v3 document.

    The openstack CLI insists on an identity v3 *proxy* before ``server list`` even when it
    never calls identity; pointing ``OS_IDENTITY_ENDPOINT_OVERRIDE`` here satisfies it.
    Nothing else of identity is served.
    """
    href = f"{base_url(request)}/identity/v3/"
    return _json(
        {
            "version": {
                "id": "v3.14",
                "status": "stable",
                "updated": "2020-04-07T00:00:00Z",
                "links": [{"rel": "self", "href": href}],
                "media-types": [
                    {
                        "base": "application/json",
                        "type": "application/vnd.openstack.identity-v3+json",
                    }
                ],
            }
        }
    )


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(state: State) -> Response:
    # Under ``serve --workers N``, every worker's values (gateway.metrics says how).
    state.metrics.record_breakers(state.clients.values())
    return Response(state.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", summary="Liveness (no dependencies)")
async def healthz() -> Response:
    return _json({"status": "pass"}, media_type="application/health+json")


@router.get("/readyz", summary="Readiness: API DB and at least one cell reachable")
async def readyz(state: State) -> Response:
    """``application/health+json``: the API DB must answer and at least one cell; a down
    cell is ``warn``, and so is a misconfigured one (its last schema fault named). A cell
    whose breaker is open is reported without being probed, so a frozen cell never makes
    this endpoint slow."""

    def check(outcome: CellOutcome) -> str:
        match outcome:
            case CellRows():
                return "pass"
            case CellSkipped():
                return "circuit breaker open"
            case CellFailed(error=error):
                return error
            case CellTimedOut(timeout_s=timeout_s):
                return f"no answer within {timeout_s:g} s"
        return "unknown"

    clients = list(state.clients.values())
    outcomes = await asyncio.gather(state.api.probe(), *(c.probe() for c in clients))
    results = [check(outcome) for outcome in outcomes]
    api_ok = results[0] == "pass"
    checks: dict[str, list[dict[str, str]]] = {
        "api_database": [
            {"status": "pass" if api_ok else "fail", "output": "" if api_ok else results[0]}
        ]
    }
    live = 0
    for client, result in zip(clients, results[1:], strict=True):
        fault = client.schema_fault
        if result == "pass" and fault is not None:
            # It answers SELECT 1 but not the listing's reads: not serving.
            result = f"misconfigured: {fault}"
        ok = result == "pass"
        live += ok
        checks[f"cell:{client.cell.label}"] = [
            {
                "status": "pass" if ok else "warn",
                "output": "" if ok else result,
                "breaker": client.breaker_state.value,
            }
        ]
    ready = api_ok and live > 0
    status = "pass" if ready and live == len(clients) else ("warn" if ready else "fail")
    return _json(
        {"status": status, "checks": checks},
        status=200 if ready else 503,
        media_type="application/health+json",
    )
