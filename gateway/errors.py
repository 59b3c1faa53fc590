"""Errors that reach clients, rendered in Nova's fault shape.

::

    GatewayError                    status  fault name
    ├── BadRequest                  400     badRequest
    ├── Unauthorized                401     unauthorized
    ├── Forbidden                   403     forbidden
    ├── NotFound                    404     itemNotFound
    ├── MethodNotAllowed            405     badMethod
    ├── NotAcceptable               406     notAcceptable
    └── ServiceUnavailable          503     serviceUnavailable   (+ Retry-After)

Anything else that escapes is a bug: it becomes a bare 500 ``computeFault`` with no detail
(the traceback goes to the log, never to the client).
"""

from __future__ import annotations

import logging

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = [
    "BadRequest",
    "Forbidden",
    "GatewayError",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "ServiceUnavailable",
    "Unauthorized",
    "fault_response",
    "install_error_handlers",
]

log = logging.getLogger(__name__)


class GatewayError(Exception):
    """Base of every client-visible error."""

    status = 500
    fault = "computeFault"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class BadRequest(GatewayError):
    status, fault = 400, "badRequest"


class Unauthorized(GatewayError):
    status, fault = 401, "unauthorized"


class Forbidden(GatewayError):
    status, fault = 403, "forbidden"


class NotFound(GatewayError):
    status, fault = 404, "itemNotFound"


class MethodNotAllowed(GatewayError):
    status, fault = 405, "badMethod"


class NotAcceptable(GatewayError):
    status, fault = 406, "notAcceptable"


class ServiceUnavailable(GatewayError):
    status, fault = 503, "serviceUnavailable"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message, {"Retry-After": str(retry_after_s)})


_BY_STATUS: dict[int, type[GatewayError]] = {
    cls.status: cls
    for cls in (BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable)
}


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
        cls = _BY_STATUS.get(exc.status_code, GatewayError)
        message = exc.detail if isinstance(exc.detail, str) else "Error"
        if exc.status_code == 404:
            message = "The resource could not be found."
        return fault_response(exc.status_code, cls.fault, message, dict(exc.headers or {}))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error serving %s", request.url.path)
        return fault_response(
            500,
            "computeFault",
            "Unexpected API Error. Please report this at the gateway's "
            "operators and attach the request id if possible.",
        )

    app.add_exception_handler(GatewayError, on_gateway_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
