"""The web console at ``/console``: static files that drive the real API from the browser.

The page holds no data of its own: it asks ``/v2.1/servers[/detail]`` with the token the
user types (or the demo's), ``/readyz`` for cell health, and, in the demo only, the drill
routes to take a cell down, hang it or slow it (:mod:`gateway.demo.routes`). So the console
sees exactly what a client sees, under the same auth; it is off unless
``CELLGATE_CONSOLE=true`` (``cellgate demo`` turns it on).
"""

from __future__ import annotations

from pathlib import Path

import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles

from gateway.deps import State
from gateway.versions import MAX_VERSION, MIN_VERSION

__all__ = ["console_json", "install_console"]

STATIC = Path(__file__).parent / "static" / "console"
# Everything the page loads comes from this origin; no inline script, no CDN.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_NO_STORE = {"Cache-Control": "no-store"}


def console_json(body: object) -> Response:
    """``body`` as JSON that no cache keeps (the console's own answers)."""
    return Response(orjson.dumps(body), media_type="application/json", headers=_NO_STORE)


page = APIRouter(include_in_schema=False)


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
    demo: bool = request.app.state.console_demo
    noauth = state.settings.auth_mode == "noauth"
    return console_json(
        {
            "auth_mode": state.settings.auth_mode,
            "demo": demo,
            # The demo's noauth administrator: the console works with no typing at all.
            "token_hint": "admin:admin" if demo and noauth else None,
            "min_version": "{}.{}".format(*MIN_VERSION),
            "max_version": "{}.{}".format(*MAX_VERSION),
        }
    )


def install_console(app: FastAPI, *, demo: bool) -> None:
    """Serve the console's page and files; ``demo`` tells the page that the drill routes
    (:mod:`gateway.demo.routes`) are there."""
    app.state.console_demo = demo
    app.include_router(page)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
