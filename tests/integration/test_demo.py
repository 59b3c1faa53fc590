"""The README's quick start, for real: ``cellgate demo``, then the commands its banner prints.

The console script runs as a subprocess on SQLite cells under a temporary directory; every
``curl`` line of the banner must exit 0 with a JSON ``servers`` body, the ``openstack
server list`` line must exit 0 (and agree with the first ``curl``), the ``openstack server
show`` line must show its server, and Ctrl-C (SIGINT) must stop the server cleanly. The
demo honours the auth settings of the environment (``noauth`` only when
``CELLGATE_AUTH_MODE`` is unset).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from tests.support.demo import BANNER_TIMEOUT_S, SHUTDOWN_TIMEOUT_S, Demo, clean_env, running_demo

pytestmark = [pytest.mark.integration, pytest.mark.clients]


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    with running_demo(tmp_path, 3000, {}) as running:
        yield running


def _run(line: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        line, shell=True, capture_output=True, text=True, timeout=60, env=clean_env()
    )


def test_demo_quick_start(demo: Demo) -> None:
    banner = demo.banner()
    url = banner[0].split("serving on ", 1)[1].split()[0]
    assert url.startswith("http://127.0.0.1:")
    # The web console is on in the demo, and the banner says where.
    assert f"console: {url}/console;" in banner[0], banner
    with urllib.request.urlopen(f"{url}/console", timeout=10) as page:
        assert page.headers["Content-Type"].startswith("text/html")
        assert b"/console/static/console.js" in page.read()

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
    with running_demo(tmp_path, 300, env) as demo:
        deadline = time.monotonic() + BANNER_TIMEOUT_S
        while "serving on" not in (line := demo.next_line(deadline)):
            pass
        assert "auth_mode=jwt" in line
        url = line.split("serving on ", 1)[1].split()[0] + "/v2.1/servers?limit=3"
        status, body = _status(url, "demo:demo")  # the noauth token means nothing here
        assert status == 401, body
        claims = {"sub": "demo", "project_id": "demo", "roles": [], "exp": time.time() + 60}
        status, body = _status(url, jwt.encode(claims, JWT_SECRET, algorithm="HS256"))
        assert status == 403, body  # Nova's policy: listing needs reader (or admin)
        claims["roles"] = ["reader"]
        status, body = _status(url, jwt.encode(claims, JWT_SECRET, algorithm="HS256"))
        assert status == 200, body
        servers = body["servers"]
        assert isinstance(servers, list)
        assert len(servers) == 3
        demo.process.send_signal(signal.SIGINT)
        assert demo.process.wait(timeout=SHUTDOWN_TIMEOUT_S) == 0, demo.diagnostics()
    assert "noauth" not in demo.stderr_path.read_text()
