"""A real ``cellgate demo`` subprocess on SQLite cells under a temporary directory, its
stdout read line by line (the quick-start and console tests)."""

from __future__ import annotations

import contextlib
import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

__all__ = ["BANNER_TIMEOUT_S", "SHUTDOWN_TIMEOUT_S", "Demo", "clean_env", "running_demo"]

BANNER_TIMEOUT_S = 40
SHUTDOWN_TIMEOUT_S = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cellgate_script() -> str:
    """The installed console script, preferring the one beside this interpreter."""
    beside = Path(sys.executable).parent / "cellgate"
    if beside.is_file():
        return str(beside)
    found = shutil.which("cellgate")
    if found is None:
        pytest.fail("the cellgate console script is not installed (pip install -e .)")
    return found


def clean_env() -> dict[str, str]:
    """No OS_* (the openstack CLI) and no CELLGATE_* (the demo reads them) of the caller's."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "CELLGATE_"))}


class Demo:
    """A running ``cellgate demo`` whose stdout is read line by line in a thread."""

    def __init__(self, process: subprocess.Popen[str], stderr_path: Path) -> None:
        self.process = process
        self.stderr_path = stderr_path
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, deadline: float) -> str:
        remaining = deadline - time.monotonic()
        try:
            line = self.lines.get(timeout=max(remaining, 0.01))
        except queue.Empty:
            pytest.fail(f"cellgate demo printed nothing new in time; so far: {self.output}")
        if line is None:
            pytest.fail(f"cellgate demo exited ({self.process.poll()}): {self.diagnostics()}")
        self.output.append(line)
        return line

    def banner(self) -> list[str]:
        """Every line from the one containing "serving on" to the end of the banner."""
        deadline = time.monotonic() + BANNER_TIMEOUT_S
        while "serving on" not in (line := self.next_line(deadline)):
            pass
        banner = [line]
        # The banner is one print: the "Try:" line, then the commands, until the
        # openstack server show one, which is the last.
        while " server show " not in banner[-1]:
            banner.append(self.next_line(deadline))
        return banner

    def close(self) -> None:
        """After the process ended: let the reader reach EOF, then close the pipe."""
        self._reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()

    def diagnostics(self) -> str:
        stderr = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return f"stdout={self.output!r}\nstderr={stderr[-4000:]}"


@contextlib.contextmanager
def running_demo(
    tmp_path: Path, instances: int, env: dict[str, str], args: Sequence[str] = ()
) -> Iterator[Demo]:
    """``cellgate demo`` with ``instances`` on a free port, ``env`` over a clean
    environment and extra ``args``; killed on exit if still running."""
    port = free_port()
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [
                cellgate_script(),
                "demo",
                "--data-dir",
                str(tmp_path / "data"),
                "--port",
                str(port),
                "--instances",
                str(instances),
                *args,
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**clean_env(), "PYTHONUNBUFFERED": "1", **env},
        )
    running = Demo(process, stderr_path)
    try:
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        running.close()
