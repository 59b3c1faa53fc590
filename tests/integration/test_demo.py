"""The README's quick start, for real: ``cellgate demo``, then the commands its banner prints.

The console script runs as a subprocess on SQLite cells under a temporary directory; every
``curl`` line of the banner must exit 0 with a JSON ``servers`` body, the ``openstack
server list`` line must exit 0 (and agree with the first ``curl``), the ``openstack server
show`` line must show its server, and Ctrl-C (SIGINT) must stop the server cleanly. The
demo honours the auth settings of the environment (``noauth`` only when
``CELLGATE_AUTH_MODE`` is unset).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.clients]

BANNER_TIMEOUT_S = 40
SHUTDOWN_TIMEOUT_S = 10


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cellgate() -> str:
    """The installed console script, preferring the one beside this interpreter."""
    beside = Path(sys.executable).parent / "cellgate"
    if beside.is_file():
        return str(beside)
    found = shutil.which("cellgate")
    if found is None:
        pytest.fail("the cellgate console script is not installed (pip install -e .)")
    return found


def _clean_env() -> dict[str, str]:
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
def _running_demo(tmp_path: Path, instances: int, env: dict[str, str]) -> Iterator[Demo]:
    port = _free_port()
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [
                _cellgate(),
                "demo",
                "--data-dir",
                str(tmp_path / "data"),
                "--port",
                str(port),
                "--instances",
                str(instances),
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**_clean_env(), "PYTHONUNBUFFERED": "1", **env},
        )
    running = Demo(process, stderr_path)
    try:
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        running.close()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    with _running_demo(tmp_path, 3000, {}) as running:
        yield running


def _run(line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        line, shell=True, capture_output=True, text=True, timeout=60, env=_clean_env()
    )


def test_demo_quick_start(demo: Demo) -> None:
    banner = demo.banner()
    url = banner[0].split("serving on ", 1)[1].split()[0]
    assert url.startswith("http://127.0.0.1:")

    commands = [line.strip() for line in banner[1:] if line.strip() and line.strip() != "Try:"]
    curls = [c for c in commands if c.startswith("curl ")]
    openstack = [c for c in commands if " openstack " in f" {c} "]
    assert len(curls) == 3, banner
    assert [" server list " in c for c in openstack] == [True, False], banner
    assert len(curls) + len(openstack) == len(commands), banner
    server_list, server_show = openstack

    bodies = []
    for line in curls:
        result = _run(line)
        assert result.returncode == 0, (line, result.stderr)
        body = json.loads(result.stdout)
        assert "servers" in body, (line, body)
        assert body["servers"], (line, body)
        bodies.append(body)
    first_five = [server["id"] for server in bodies[0]["servers"]]
    assert len(first_five) == 5

    result = _run(server_list)
    assert result.returncode == 0, (server_list, result.stdout, result.stderr)
    assert all(uuid in result.stdout for uuid in first_five), result.stdout
    as_json = _run(f"{server_list} -f json")
    assert as_json.returncode == 0, as_json.stderr
    assert [row["ID"] for row in json.loads(as_json.stdout)] == first_five

    server_id = server_show.rsplit(" ", 1)[1]
    as_json = _run(f"{server_show} -f json")
    assert as_json.returncode == 0, (server_show, as_json.stdout, as_json.stderr)
    shown = json.loads(as_json.stdout)
    assert shown["id"] == server_id
    assert shown["project_id"] == "demo"

    demo.process.send_signal(signal.SIGINT)
    try:
        code = demo.process.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"cellgate demo did not stop within {SHUTDOWN_TIMEOUT_S} s of SIGINT")
    stderr = demo.stderr_path.read_text(errors="replace")
    assert code == 0, demo.diagnostics()
    assert "Traceback" not in stderr, stderr[-4000:]


JWT_SECRET = "demo-test-secret-that-is-long-enough-0123"


def _status(url: str, token: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"X-Auth-Token": token})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_demo_honours_the_auth_mode_of_the_environment(tmp_path: Path) -> None:
    env = {"CELLGATE_AUTH_MODE": "jwt", "CELLGATE_JWT_SECRET": JWT_SECRET}
    with _running_demo(tmp_path, 300, env) as demo:
        deadline = time.monotonic() + BANNER_TIMEOUT_S
        while "serving on" not in (line := demo.next_line(deadline)):
            pass
        assert "auth_mode=jwt" in line
        url = line.split("serving on ", 1)[1].split()[0] + "/v2.1/servers?limit=3"
        status, body = _status(url, "demo:demo")  # the noauth token means nothing here
        assert status == 401, body
        claims = {"sub": "demo", "project_id": "demo", "roles": [], "exp": time.time() + 60}
        status, body = _status(url, jwt.encode(claims, JWT_SECRET, algorithm="HS256"))
        assert status == 200, body
        servers = body["servers"]
        assert isinstance(servers, list)
        assert len(servers) == 3
        demo.process.send_signal(signal.SIGINT)
        assert demo.process.wait(timeout=SHUTDOWN_TIMEOUT_S) == 0, demo.diagnostics()
    assert "noauth" not in demo.stderr_path.read_text()
