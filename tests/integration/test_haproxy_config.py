"""deploy/haproxy/cellgate.cfg is a configuration Debian's HAProxy accepts, pasted into a
frontend beside a nova-api backend as docs/deploy.md says (``haproxy -c``). The routing
itself, through a live HAProxy with real clients, is test_haproxy_routing's; the health
check with a hung cell, test_haproxy_readyz's."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SNIPPET = (Path(__file__).parents[2] / "deploy" / "haproxy" / "cellgate.cfg").read_text()
HEAD = """\
global
    log stdout format raw local0
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend nova_api
    bind 127.0.0.1:18774
    default_backend nova_api_back
"""
NOVA = """\
backend nova_api_back
    server nova-api1 127.0.0.1:8774 check
"""


def _assembled() -> str:
    frontend = SNIPPET.split("# ---- in the frontend", 1)[1].split("# ---- beside", 1)[0]
    backend = "backend cellgate_back" + SNIPPET.split("\nbackend cellgate_back", 1)[1]
    lines = [line for line in frontend.splitlines()[1:] if not line.startswith("#")]
    return HEAD + "\n".join(lines) + "\n" + NOVA + backend


def test_haproxy_accepts_the_snippet(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        message = "haproxy not installed (apt-get install haproxy)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    config = tmp_path / "haproxy.cfg"
    config.write_text(_assembled())
    checked = subprocess.run(
        [haproxy, "-c", "-f", str(config)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "use_backend cellgate_back if cellgate_method cellgate_path" in config.read_text()
