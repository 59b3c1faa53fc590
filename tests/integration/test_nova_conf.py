"""``cellgate serve --nova-config``: a gateway configured by nothing but an operator's
``nova.conf`` (real PostgreSQL cells), in one process and in worker processes."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.support.cellsets import CellSet
from tests.support.liveserver import free_port
from tests.support.serve import cli, serve_env, wait_for_banner

pytestmark = pytest.mark.integration


def _nova_conf(tmp_path: Path, cells: CellSet) -> Path:
    # What a deployment's file holds besides: options cellgate does not read are ignored.
    conf = tmp_path / "nova.conf"
    conf.write_text(
        f"""[DEFAULT]
transport_url = rabbit://openstack:pw@10.0.0.1:5672//
[api]
max_limit = 7
[api_database]
connection = {cells.api_url}
max_pool_size = 5
[database]
connection = {cells.cells[0].url}
[glance]
api_servers = http://10.0.0.5:9292
"""
    )
    return conf


def _get(url: str) -> dict[str, object]:
    request = urllib.request.Request(url, headers={"X-Auth-Token": "admin:admin"})
    with urllib.request.urlopen(request, timeout=30) as response:
        body: dict[str, object] = json.load(response)
        return body


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_with_only_nova_conf(tmp_path: Path, pg_cells: CellSet, workers: str) -> None:
    port = free_port()
    stderr_path = tmp_path / "stderr.log"
    command = cli(
        "serve", "--port", str(port), "--workers", workers,
        "--nova-config", str(_nova_conf(tmp_path, pg_cells)),
    )  # fmt: skip
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=serve_env(),
        )
    try:
        wait_for_banner(process, stderr_path)
        base = f"http://127.0.0.1:{port}/v2.1"
        page = _get(f"{base}/servers?all_tenants=1&limit=100")
        servers = page["servers"]
        assert isinstance(servers, list)
        assert len(servers) == 7  # [api] max_limit clamps the page
        assert "servers_links" in page
        detail = _get(f"{base}/servers/detail?all_tenants=1")
        assert isinstance(detail["servers"], list)
        assert len(detail["servers"]) == 7
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, stderr_path.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
