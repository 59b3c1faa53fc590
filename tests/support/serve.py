"""``cellgate serve`` as a subprocess: its command line, a clean environment, and waiting
for its banner (the CLI and worker tests)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

__all__ = ["START_TIMEOUT_S", "cli", "serve_env", "wait_for_banner"]

START_TIMEOUT_S = 30


def serve_env(**extra: str) -> dict[str, str]:
    """The environment without any CELLGATE_* setting of the developer's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLGATE_")}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


def cli(*args: str) -> list[str]:
    """``python -m gateway.cli ARGS`` with this interpreter."""
    return [sys.executable, "-m", "gateway.cli", *args]


def wait_for_banner(process: subprocess.Popen[str], stderr_path: Path) -> str:
    """The banner line (``... serving on ...``) once printed; fails the test with the tail of
    ``stderr_path`` if the process ends or stays silent past :data:`START_TIMEOUT_S`."""
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    line = process.stdout.readline()
    while "serving on" not in line:
        if not line or time.monotonic() > deadline:
            pytest.fail(f"serve did not start: {stderr_path.read_text()[-3000:]}")
        line = process.stdout.readline()
    return line
