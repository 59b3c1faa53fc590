"""Logging with a per-request id, and the middleware that sets it.

Two formats of the same fields: JSON (one object per line, for collectors) and text
(``HH:MM:SS LEVEL logger [req-id] message key=value ...``, for a person at a terminal).
The id is Nova's ``req-<uuid>`` form, returned as ``X-OpenStack-Request-Id`` and
``X-Compute-Request-Id`` so operators can match a client's error to the gateway's log.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from contextvars import ContextVar
from typing import Literal, TextIO

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "JsonFormatter",
    "LogFormat",
    "RequestIdMiddleware",
    "TextFormatter",
    "configure_logging",
    "request_id",
]

LogFormat = Literal["auto", "json", "text"]  # auto: text on a terminal, else JSON

request_id: ContextVar[str] = ContextVar("request_id", default="-")

# uvicorn adds ``color_message`` (its message with ANSI colours) to its records.
_DROPPED = frozenset({"color_message"})
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"} | _DROPPED
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _clean(text: str) -> str:
    return _ANSI.sub("", text)


def _extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": _clean(record.getMessage()),
            "request_id": request_id.get(),
        }
        for key, value in _extras(record).items():
            body[key] = _clean(value) if isinstance(value, str) else value
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(body, default=str).decode()


def _pair(key: str, value: object) -> str:
    text = _clean(str(value))
    if not text or any(c.isspace() or c in '"=' for c in text):
        text = orjson.dumps(text).decode()  # quoted, so the line still splits on spaces
    return f"{key}={text}"


class TextFormatter(logging.Formatter):
    """``HH:MM:SS LEVEL logger [req-id] message key=value ...``, a traceback below."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            self.formatTime(record, "%H:%M:%S"),
            f"{record.levelname:<7}",
            record.name,
            f"[{request_id.get()}]",
            _clean(record.getMessage()),
            *(_pair(k, v) for k, v in _extras(record).items()),
        ]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str, fmt: LogFormat = "auto", stream: TextIO | None = None) -> None:
    """Send every logger to ``stream`` (stderr): as text when ``fmt`` is ``text``, or
    ``auto`` and the stream is a terminal; as JSON otherwise."""
    stream = sys.stderr if stream is None else stream
    text = fmt == "text" or (fmt == "auto" and stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(TextFormatter() if text else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class RequestIdMiddleware:
    """Give every HTTP request an id (in the log context and the response headers)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = f"req-{uuid.uuid4()}"
        token = request_id.set(rid)
        raw = rid.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-openstack-request-id", raw))
                headers.append((b"x-compute-request-id", raw))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
