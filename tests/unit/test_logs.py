"""gateway.logs: JSON and text lines, without uvicorn's colours; the format choice."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import orjson
import pytest

from gateway.logs import (
    JsonFormatter,
    LogFormat,
    TextFormatter,
    configure_logging,
    request_id,
)

RID = "req-00000000-0000-0000-0000-000000000001"
RED = "\x1b[31m"
RESET = "\x1b[0m"


@pytest.fixture
def rid() -> Iterator[str]:
    token = request_id.set(RID)
    yield RID
    request_id.reset(token)


def _record(msg: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, msg, (), None)
    record.__dict__.update(extra)
    return record


def test_json_drops_color_message_and_ansi(rid: str) -> None:
    record = _record(
        f"Started {RED}server{RESET} process",
        color_message=f"Started {RED}server{RESET} process",
        cell=f"{RED}cell1{RESET}",
        rows=3,
    )
    line = JsonFormatter().format(record)
    assert "\x1b" not in line
    assert "\\u001b" not in line
    body = orjson.loads(line)
    assert "color_message" not in body
    assert body["msg"] == "Started server process"
    assert body["request_id"] == rid
    assert body["logger"] == "uvicorn.error"
    assert (body["cell"], body["rows"]) == ("cell1", 3)


def test_text_line(rid: str) -> None:
    record = _record(
        "cell outcome",
        color_message=f"{RED}cell outcome{RESET}",
        cell="cell1",
        outcome="ok",
        note="two words",
        empty="",
    )
    line = TextFormatter().format(record)
    clock, level, logger, rest = line.split(maxsplit=3)
    assert len(clock) == 8
    assert clock[2] == clock[5] == ":"
    assert (level, logger) == ("INFO", "uvicorn.error")
    assert rest == f'[{rid}] cell outcome cell=cell1 outcome=ok note="two words" empty=""'
    assert "color_message" not in line
    assert "\x1b" not in line


def test_text_without_request_has_placeholder_and_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("gateway", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = sys.exc_info()
    line = TextFormatter().format(record)
    assert line.split("\n")[0].endswith("ERROR   gateway [-] failed")
    assert "ValueError: boom" in line


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("fmt", "terminal", "json"),
    [
        ("auto", True, False),
        ("auto", False, True),
        ("json", True, True),
        ("text", False, False),
    ],
)
@pytest.mark.usefixtures("restore_root")
def test_format_choice(fmt: LogFormat, terminal: bool, json: bool) -> None:
    stream = _Terminal() if terminal else io.StringIO()
    configure_logging("INFO", fmt, stream)
    logging.getLogger("gateway.test").info("hello", extra={"cell": "cell1"})
    line = stream.getvalue().strip()
    if json:
        assert orjson.loads(line)["msg"] == "hello"
    else:
        assert line.endswith("INFO    gateway.test [-] hello cell=cell1")
