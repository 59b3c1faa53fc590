"""The web console at ``/console``: static files that drive the real API from the browser.

The page holds no data of its own: it asks ``/v2.1/servers[/detail]`` with the token the
user types (or the demo's), ``/readyz`` for cell health, and, in the demo only, the drill
routes below to take a cell down, hang it or slow it (:mod:`cells.drills`). So the console
sees exactly what a client sees, under the same auth; it is off unless
``CELLGATE_CONSOLE=true`` (``cellgate demo`` turns it on).
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from cells import DRILLS, Drill, Drills
from gateway.deps import Caller, State
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.versions import MAX_VERSION, MIN_VERSION

__all__ = ["install_console"]

STATIC = Path(__file__).parent / "static" / "console"
# Everything the page loads comes from this origin; no inline script, no CDN.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_NO_STORE = {"Cache-Control": "no-store"}


def _json(body: object) -> Response:
    return Response(orjson.dumps(body), media_type="application/json", headers=_NO_STORE)


def _drills(state: State) -> Drills:
    if state.drills is None:  # the routes are only installed with drills; kept for mypy
        raise NotFound("Outage drills exist only in cellgate demo.")
    return state.drills


page = APIRouter(include_in_schema=False)
drills_router = APIRouter(include_in_schema=False)


@page.get("/console")
@page.get("/console/")
async def console_page() -> FileResponse:
    return FileResponse(
        STATIC / "index.html",
        headers={"Content-Security-Policy": _CSP, **_NO_STORE},
    )


@page.get("/console/config")
async def console_config(state: State, request: Request) -> Response:
    """What the page needs before it has a token: auth mode, versions, demo or not."""
    demo = state.drills is not None
    noauth = state.settings.auth_mode == "noauth"
    return _json(
        {
            "auth_mode": state.settings.auth_mode,
            "demo": demo,
            # The demo's noauth administrator: the console works with no typing at all.
            "token_hint": "admin:admin" if demo and noauth else None,
            "min_version": "{}.{}".format(*MIN_VERSION),
            "max_version": "{}.{}".format(*MAX_VERSION),
        }
    )


@drills_router.get("/console/drills")
async def list_drills(state: State, caller: Caller) -> Response:
    drills = _drills(state)
    return _json(
        {
            "drills": {label: drills.get(label) for label in drills.labels()},
            "choices": list(DRILLS),
            "slow_s": drills.slow_s,
        }
    )


@drills_router.put("/console/drills/{cell}")
async def set_drill(cell: str, request: Request, state: State, caller: Caller) -> Response:
    """Start a drill on one of the demo's cells: body ``{"drill": "down"}`` (``"none"``
    restores the cell). Administrators only."""
    drills = _drills(state)
    if not caller.is_admin:
        raise Forbidden("Only an administrator can run outage drills.")
    if cell not in drills.labels():
        raise NotFound(f"No cell {cell!r} to drill; cells: {', '.join(drills.labels())}.")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise BadRequest('The body must be JSON: {"drill": "down"}.') from None
    drill = body.get("drill") if isinstance(body, dict) else None
    if drill not in DRILLS:
        raise BadRequest(f"'drill' must be one of {', '.join(DRILLS)}.")
    drills.set(cell, cast(Drill, drill))
    return _json({"cell": cell, "drill": drill})


def install_console(app: FastAPI, *, drills: bool) -> None:
    """Serve the console's page and files; with ``drills``, the demo's drill routes too."""
    app.include_router(page)
    if drills:
        app.include_router(drills_router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
