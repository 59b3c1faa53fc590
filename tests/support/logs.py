"""Log records of one logger captured as the JSON lines the gateway would print."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

from gateway.logs import JsonFormatter

__all__ = ["JsonLines", "captured_lines"]


class JsonLines(logging.Handler):
    """Every record, formatted by :class:`~gateway.logs.JsonFormatter` (request id and
    extra fields included) and parsed back."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def messages(self, msg: str) -> list[dict[str, Any]]:
        """The lines whose message is ``msg``."""
        return [line for line in self.lines if line["msg"] == msg]


@contextlib.contextmanager
def captured_lines(logger_name: str) -> Iterator[JsonLines]:
    """Capture ``logger_name`` at DEBUG for the duration of the block."""
    logger = logging.getLogger(logger_name)
    handler, level = JsonLines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
