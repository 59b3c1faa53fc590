"""The application factory, and the two small middlewares only it needs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.console import install_console
from gateway.demo import routes as drill_routes
from gateway.demo import start_drills
from gateway.errors import FaultBarrier, UriTooLong, fault_response, install_error_handlers
from gateway.gctune import tuned_gc
from gateway.lifespan import build_state
from gateway.logs import RequestIdMiddleware
from gateway.metrics import HttpMetricsMiddleware
from gateway.openapi import install_openapi
from gateway.params import MAX_URL_BYTES
from gateway.routes import meta, servers
from gateway.settings import Settings
from gateway.versions import VersionHeadersMiddleware

__all__ = ["HeadAsGet", "UrlLengthLimit", "create_app"]


def create_app(settings: Settings, *, demo: bool = False) -> FastAPI:
    """A gateway serving ``settings``; resources live in the lifespan, not in globals.

    ``demo`` (``cellgate demo`` only) lets the console run outage drills on the cells
    (:mod:`gateway.demo`); without it the app holds no drill state at all.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build_state(settings) as state:
            if demo:
                app.state.drills = start_drills(state)
            app.state.cellgate = state
            with tuned_gc(settings.gc_gen0_threshold):
                yield

    app = FastAPI(
        title="cellgate",
        summary="Nova's server listing across cells",
        version="0.1.0",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    install_error_handlers(app)
    # The last added runs first: every response, a 500 included, passes the request id
    # and version headers; HEAD drops the body of whatever is answered.
    app.add_middleware(FaultBarrier)
    app.add_middleware(UrlLengthLimit)
    # Inside HeadAsGet, which copies the scope: the route the router records must be seen.
    app.add_middleware(HttpMetricsMiddleware)
    app.add_middleware(HeadAsGet)
    app.add_middleware(VersionHeadersMiddleware)
    app.add_middleware(RequestIdMiddleware)
    app.include_router(meta.router)
    app.include_router(servers.router)
    if settings.console:
        install_console(app, demo=demo)
        if demo:
            app.include_router(drill_routes.router)
    install_openapi(app)
    return app


class HeadAsGet:
    """Serve ``HEAD`` wherever ``GET`` is served: the same status and headers, no body.

    FastAPI routes answer only the methods they declare; rewriting the method here covers
    every route without touching them (or the OpenAPI schema).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


class UrlLengthLimit:
    """Refuse a path plus query string over :data:`~gateway.params.MAX_URL_BYTES` with a
    414 in Nova's shape, before the query string is parsed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: bytes = scope.get("raw_path") or scope["path"].encode()
            length = len(path) + len(scope["query_string"])
            if length > MAX_URL_BYTES:
                error = UriTooLong(
                    f"Request URI too long: {length} bytes of path and query string; "
                    f"at most {MAX_URL_BYTES} are allowed."
                )
                response = fault_response(error.status, error.fault, error.message)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
