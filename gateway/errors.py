"""Errors that reach clients, rendered in Nova's fault shape.

::

    GatewayError                    status  fault name
    ├── BadRequest                  400     badRequest
    ├── Unauthorized                401     unauthorized   (+ WWW-Authenticate)
    ├── Forbidden                   403     forbidden
    ├── NotFound                    404     itemNotFound
    ├── MethodNotAllowed            405     badMethod
    ├── NotAcceptable               406     computeFault
    ├── UriTooLong                  414     computeFault
    ├── CellConfigurationError      500     computeFault   (a cell's schema; details logged)
    └── ServiceUnavailable          503     serviceUnavailable   (+ Retry-After)

Fault names come from one table, Nova's ``Fault._fault_names``
(``nova/api/openstack/wsgi.py``); a status it does not list — 406, 414, 500 — is a
``computeFault``, as in Nova. Anything else that escapes is a bug: :class:`FaultBarrier`
turns it into a bare 500 ``computeFault`` with no detail (the traceback goes to the log,
never to the client), passing through the middleware that adds the request id and the
version headers.
"""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "FAULT_NAMES",
    "BadRequest",
    "CellConfigurationError",
    "FaultBarrier",
    "Forbidden",
    "GatewayError",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "ServiceUnavailable",
    "Unauthorized",
    "UriTooLong",
    "fault_name",
    "fault_response",
    "install_error_handlers",
]

log = logging.getLogger(__name__)

# Nova's Fault._fault_names; every other status is a computeFault.
FAULT_NAMES: dict[int, str] = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    501: "notImplemented",
    503: "serviceUnavailable",
}
_UNEXPECTED = (
    "Unexpected API Error. Please report this at the gateway's operators and attach the "
    "request id if possible."
)


def fault_name(status: int) -> str:
    """Nova's fault name for an HTTP status."""
    return FAULT_NAMES.get(status, "computeFault")


class GatewayError(Exception):
    """Base of every client-visible error."""

    status = 500

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}

    @property
    def fault(self) -> str:
        return fault_name(self.status)


class BadRequest(GatewayError):
    status = 400


class Unauthorized(GatewayError):
    status = 401


class Forbidden(GatewayError):
    status = 403


class NotFound(GatewayError):
    status = 404


class MethodNotAllowed(GatewayError):
    status = 405


class NotAcceptable(GatewayError):
    status = 406


class UriTooLong(GatewayError):
    status = 414


class CellConfigurationError(GatewayError):
    """A cell's schema does not match what cellgate reads: the operator's problem, shown as
    Nova's generic 500 ``computeFault`` (details only in the log)."""

    def __init__(self) -> None:
        super().__init__(
            "Unexpected API Error. A cell database is misconfigured; the gateway's "
            "operators have the details in its log."
        )


class ServiceUnavailable(GatewayError):
    status = 503

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, {"Retry-After": str(retry_after_s)})


def fault_response(
    status: int, fault: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """Nova's ``{"<fault>": {"code": N, "message": "..."}}`` body."""
    body = orjson.dumps({fault: {"code": status, "message": message}})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Render every error — ours, routing's, and unexpected ones — as a Nova fault."""

    async def on_gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return fault_response(exc.status, exc.fault, exc.message, exc.headers)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        message = exc.detail if isinstance(exc.detail, str) else "Error"
        if status == 404:
            message = "The resource could not be found."
        headers = dict(exc.headers or {})
        allow = headers.get("Allow", "")
        if "GET" in allow.split(", ") and "HEAD" not in allow:
            headers["Allow"] = f"{allow}, HEAD"  # HEAD is served wherever GET is
        return fault_response(status, fault_name(status), message, headers)

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # Only what escapes the middleware itself lands here; see FaultBarrier.
        log.exception("unexpected error serving %s", request.url.path)
        return fault_response(500, "computeFault", _UNEXPECTED)

    app.add_exception_handler(GatewayError, on_gateway_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)


class FaultBarrier:
    """Turn an exception escaping the routes into a 500 ``computeFault``, logged.

    Starlette hands an ``Exception`` handler to its outermost middleware, so its response
    would skip every other middleware (no request id, no version headers); this one sits
    inside them. After the response has started there is nothing to send: re-raise.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            if started:
                raise
            log.exception("unexpected error serving %s", scope["path"])
            await fault_response(500, "computeFault", _UNEXPECTED)(scope, receive, send)
