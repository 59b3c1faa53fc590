"""Serving the app with uvicorn in this process: the HTTP protocol that answers parser
rejections in Nova's shape, the start-up failure a schema mismatch is, the banner once
started, and a clean exit on Ctrl-C.

The server is uvicorn with its httptools parser; a request that parser rejects before the
app sees it (a URL over 64 KiB, or garbage) is answered in Nova's fault shape too. A
database lacking a table or column cellgate reads stops the server with a message naming
the cell, table and column, and exit status 2 (:mod:`cells.schemacheck`).
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import sys
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cells.schemacheck import SchemaMismatch
from gateway.app import create_app
from gateway.errors import fault_name
from gateway.logs import configure_logging
from gateway.params import MAX_URL_BYTES
from gateway.settings import Settings
from gateway.versions import version_headers

__all__ = [
    "USAGE_ERROR",
    "CellgateConfig",
    "NovaHttpProtocol",
    "StartupFailure",
    "loop_factory",
    "schema_message",
    "serve",
    "start_logging",
    "uvicorn_config",
]

log = logging.getLogger(__name__)

USAGE_ERROR = 2  # exit status of a usage or configuration error


class CellgateConfig(uvicorn.Config):
    """uvicorn's config, plus what :class:`NovaHttpProtocol` reads from it (a module-level
    class: a worker process gets it pickled)."""

    def __init__(self, app: ASGIApp | str, *, keepalive_max_requests: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.keepalive_max_requests = keepalive_max_requests


class NovaHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, answering a request its parser rejects with a Nova
    fault instead of plain text: a 414 ``computeFault`` for a URL past
    :data:`~gateway.params.MAX_URL_BYTES` (httptools cannot parse one over 64 KiB, so the
    app's own check never sees it), else a 400 ``badRequest``.

    It also closes a connection after ``keepalive_max_requests`` answers (``connection:
    close`` on the last), as nginx's ``keepalive_requests`` does: uvicorn has no such limit,
    and without one the clients that moved to the surviving worker while a killed one
    restarted stay there (the chaos soak, issue #22: the replacement answered nothing for
    the rest of the run)."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.max_requests: int = getattr(config, "keepalive_max_requests", 0)
        self.requests = 0

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.requests += 1
        if self.max_requests and self.requests >= self.max_requests:
            self.cycle.keep_alive = False  # uvicorn adds "connection: close" and closes

    def send_400_response(self, msg: str) -> None:
        url: bytes = getattr(self, "url", b"")  # unset when the request line itself is garbage
        status, message = 400, msg
        if len(url) > MAX_URL_BYTES:
            status = 414
            message = (
                f"Request URI too long: at most {MAX_URL_BYTES} bytes of path and query "
                "string are allowed."
            )
        body = orjson.dumps({fault_name(status): {"code": status, "message": message}})
        # The headers the app sets on every answer: a request id, and on the compute API
        # the (default) microversion's.
        rid = f"req-{uuid.uuid4()}"
        headers = {"X-OpenStack-Request-Id": rid, "X-Compute-Request-Id": rid}
        if url.startswith(b"/v2.1"):
            headers |= version_headers((2, 1))
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        head = (
            f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\n"
            "content-type: application/json\r\n"
            f"content-length: {len(body)}\r\n"
            f"{extra}connection: close\r\n\r\n"
        )
        self.transport.write(head.encode("latin-1") + body)
        self.transport.close()


class StartupFailure:
    """The app, remembering a :class:`SchemaMismatch` its lifespan raised: uvicorn only logs
    a startup failure, and ``serve`` must name the problem and exit with status 2."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.mismatch: SchemaMismatch | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except SchemaMismatch as exc:
            self.mismatch = exc
            raise


def schema_message(mismatch: SchemaMismatch) -> str:
    return "\n".join(
        [
            "cellgate: the databases lack tables or columns cellgate reads:",
            *(f"  {problem}" for problem in mismatch.problems),
            "Point cellgate at Nova's databases (see 'cellgate doctor'), or set "
            "CELLGATE_CHECK_SCHEMA_AT_STARTUP=false to serve anyway.",
        ]
    )


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when installed (uvicorn[standard] brings it), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def start_logging(settings: Settings, host: str) -> None:
    configure_logging(settings.log_level, settings.log_format)
    if settings.auth_mode == "noauth":
        log.warning(
            "auth_mode=noauth: any X-Auth-Token 'user:project' is trusted, project 'admin' "
            "is an administrator; for development and tests only (bound to %s)",
            host,
        )


def uvicorn_config(
    app: ASGIApp | str,
    settings: Settings,
    host: str,
    port: int,
    *,
    workers: int | None = None,
    factory: bool = False,
) -> uvicorn.Config:
    """cellgate's uvicorn config, one process or ``workers`` (``app`` then an import string
    of a ``factory``): the same options either way."""
    return CellgateConfig(
        app,
        keepalive_max_requests=settings.keepalive_max_requests,
        host=host,
        port=port,
        workers=workers,
        factory=factory,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep our handler
        access_log=False,
        proxy_headers=True,
        # By name, so worker processes import it too.
        http="gateway.server:NovaHttpProtocol",
        loop="auto",  # workers: uvloop when installed, as loop_factory does for one process
    )


def serve(
    settings: Settings, host: str, port: int, banner: str | None, *, demo: bool = False
) -> None:
    start_logging(settings, host)
    app = StartupFailure(create_app(settings, demo=demo))
    config = uvicorn_config(app, settings, host, port)
    server = uvicorn.Server(config)

    tasks: list[asyncio.Task[None]] = []

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        tasks.append(task)
        # uvicorn offers no "started" event to await; poll its flag briefly.
        while not server.started and not task.done():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        if banner and server.started:
            print(banner, flush=True)
        await task

    # uvicorn shuts down gracefully on SIGINT, then re-raises the signal; swallow it as
    # uvicorn.run does, so Ctrl-C is a clean exit (status 0), not a traceback.
    try:
        with (
            contextlib.suppress(KeyboardInterrupt),
            asyncio.Runner(loop_factory=loop_factory()) as runner,
        ):
            runner.run(run())
    except SystemExit:
        # uvicorn exits (status 3) from inside its task when the lifespan fails; the task
        # keeps that exit as its exception: collect it so asyncio does not log it again.
        for task in tasks:
            if task.done() and not task.cancelled():
                task.exception()
        if app.mismatch is None:
            raise
    if app.mismatch is not None:
        print(schema_message(app.mismatch), file=sys.stderr)
        sys.exit(USAGE_ERROR)
    if not server.started:
        sys.exit(1)
