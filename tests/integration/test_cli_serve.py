"""``cellgate serve``/``demo`` as processes: noauth stays on loopback unless explicitly
allowed (exit status 2 otherwise, before anything is seeded or bound), noauth always warns,
a URL uvicorn's parser rejects still gets a Nova fault (414), never plain text, and a client
connection is closed after ``keepalive_max_requests`` answers.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gateway.params import MAX_URL_BYTES
from tests.support.cellsets import CellSet
from tests.support.liveserver import free_port
from tests.support.serve import cli, serve_env, wait_for_banner

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10"])
def test_serve_refuses_noauth_on_a_public_address(host: str) -> None:
    result = subprocess.run(
        cli("serve", "--host", host, "--port", str(free_port())),
        env=serve_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert f"refusing to serve auth_mode=noauth on {host}" in result.stderr
    assert "CELLGATE_ALLOW_INSECURE_NOAUTH=true" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_refuses_before_seeding(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = subprocess.run(
        cli("demo", "--host", "0.0.0.0", "--data-dir", str(data), "--instances", "100"),
        env=serve_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "refusing" in result.stderr
    assert not data.exists()


@contextmanager
def serving(
    tmp_path: Path, host: str, port: int, env: dict[str, str]
) -> Iterator[subprocess.Popen[str]]:
    """``cellgate serve`` until its banner, stopped with SIGINT (exit status 0) afterwards."""
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            cli("serve", "--host", host, "--port", str(port)),
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
    try:
        wait_for_banner(process, stderr_path)
        yield process
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0, stderr_path.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def _healthz(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
        status: int = response.status
        return status


def _stderr(tmp_path: Path) -> str:
    return (tmp_path / "stderr.log").read_text()


def _noauth_warnings(stderr: str) -> list[dict[str, object]]:
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [r for r in records if r["level"] == "WARNING" and "noauth" in str(r["msg"])]


def test_the_opt_in_lets_noauth_bind_everywhere_and_it_still_warns(
    tmp_path: Path, sqlite_cells: CellSet
) -> None:
    port = free_port()
    env = serve_env(
        CELLGATE_API_DATABASE_URL=sqlite_cells.api_url, CELLGATE_ALLOW_INSECURE_NOAUTH="true"
    )
    with serving(tmp_path, "0.0.0.0", port, env):
        assert _healthz(port) == 200
    assert len(_noauth_warnings(_stderr(tmp_path))) == 1


def test_jwt_binds_everywhere_without_the_opt_in(tmp_path: Path, sqlite_cells: CellSet) -> None:
    port = free_port()
    env = serve_env(
        CELLGATE_API_DATABASE_URL=sqlite_cells.api_url,
        CELLGATE_AUTH_MODE="jwt",
        CELLGATE_JWT_SECRET="a-test-secret-that-is-long-enough-0123",
    )
    with serving(tmp_path, "0.0.0.0", port, env):
        assert _healthz(port) == 200
    assert _noauth_warnings(_stderr(tmp_path)) == []


async def _raw(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), timeout=30)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
    return int(status_line.split()[1]), headers, body


def _get(target: str) -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: demo:demo\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


async def test_urls_of_any_length_get_nova_faults(tmp_path: Path, sqlite_cells: CellSet) -> None:
    port = free_port()
    with serving(
        tmp_path, "127.0.0.1", port, serve_env(CELLGATE_API_DATABASE_URL=sqlite_cells.api_url)
    ):
        for size in (MAX_URL_BYTES + 1, 16 * 1024, 100 * 1024, 1024 * 1024):
            query = ("uuid=x&" * (size // 7 + 1))[:size]
            status, headers, body = await _raw(port, _get(f"/v2.1/servers?{query}"))
            assert status == 414, (size, body[:200])
            assert headers["content-type"].startswith("application/json")
            fault = json.loads(body)["computeFault"]
            assert fault["code"] == 414
            assert str(MAX_URL_BYTES) in fault["message"]
            # The headers of every answer, also from the parser's rejection (> 64 KiB).
            assert headers["x-openstack-request-id"].startswith("req-")
            assert headers["openstack-api-version"] == "compute 2.1"
        status, headers, body = await _raw(port, b"NONSENSE\r\n\r\n")
        assert status == 400
        assert json.loads(body)["badRequest"]["code"] == 400
        # Still serving, in noauth on loopback.
        status, _, body = await _raw(port, _get("/v2.1/servers?limit=2"))
        assert status == 200
        assert len(json.loads(body)["servers"]) == 2
    assert len(_noauth_warnings(_stderr(tmp_path))) == 1


def test_a_connection_closes_after_keepalive_max_requests(
    tmp_path: Path, sqlite_cells: CellSet
) -> None:
    port = free_port()
    env = serve_env(
        CELLGATE_API_DATABASE_URL=sqlite_cells.api_url, CELLGATE_KEEPALIVE_MAX_REQUESTS="3"
    )
    with serving(tmp_path, "127.0.0.1", port, env):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            closes, sockets = [], []
            for _ in range(5):
                conn.request("GET", "/v2.1/servers?limit=1", headers={"X-Auth-Token": "demo:demo"})
                response = conn.getresponse()
                assert response.status == 200
                response.read()
                closes.append(response.getheader("connection"))
                sockets.append(conn.sock)  # http.client drops it after "connection: close"
        finally:
            conn.close()
    assert closes == [None, None, "close", None, None]
    assert sockets[0] is sockets[1] is not None
    assert sockets[2] is None
    # The client reconnected, and the new connection is kept alive again.
    assert sockets[3] is sockets[4] is not None
