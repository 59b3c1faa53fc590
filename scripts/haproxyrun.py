#!/usr/bin/env python3
"""Debian's HAProxy in front of cellgate replicas and a nova-api, configured with the
operator's snippet (``deploy/haproxy/cellgate.cfg``) as ``docs/deploy.md`` says: the
snippet's routing lines go into the frontend that serves nova-api, its ``cellgate_back``
backend beside nova-api's. Only the ``server`` lines are this run's own: the replicas
(checked on ``/readyz``), nova-api's servers (nova-api's own backend, and the snippet's
backups of ``cellgate_back``).

The one way the routing test and the replica benchmark run HAProxy (stdlib only)::

    with HaProxy(port, cellgate=[("127.0.0.1", 8001), ...], nova=[("127.0.0.1", 8774)]) as lb:
        ... lb.url ...

An empty ``nova`` list gives nova-api's backend a server on a port nothing listens on
(what is not routed to cellgate then gets HAProxy's 503).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["HaProxy", "HaProxyError", "assemble", "binary", "snippet_parts"]

SNIPPET = Path(__file__).resolve().parents[1] / "deploy" / "haproxy" / "cellgate.cfg"
START_TIMEOUT_S = 20.0
Address = tuple[str, int]

_HEAD = """\
global
    log stdout format raw local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend nova_api
    bind 127.0.0.1:{port}
    default_backend nova_api_back
"""


class HaProxyError(RuntimeError):
    """HAProxy is missing, refused the configuration, or did not start."""


def binary() -> str | None:
    """The ``haproxy`` executable, or ``None``."""
    return shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )


def snippet_parts(text: str) -> tuple[list[str], list[str]]:
    """The snippet's frontend lines and its ``cellgate_back`` backend lines (comments,
    blank lines and ``server`` lines dropped: the servers are each run's own)."""
    frontend = text.split("# ---- in the frontend", 1)[1].split("# ---- beside", 1)[0]
    backend = "backend cellgate_back" + text.split("\nbackend cellgate_back", 1)[1]

    def keep(line: str) -> bool:
        stripped = line.strip()
        return bool(stripped) and not stripped.startswith("#")

    front = [line for line in frontend.splitlines()[1:] if keep(line)]
    back = [
        line
        for line in backend.splitlines()
        if keep(line) and not line.strip().startswith("server ")
    ]
    return front, back


def assemble(
    port: int, cellgate: Sequence[Address], nova: Sequence[Address], text: str | None = None
) -> str:
    """A whole configuration: the frontend on ``127.0.0.1:port`` with the snippet's
    routing, nova-api's backend, and ``cellgate_back`` with ``cellgate`` (then ``nova`` as
    backups, as the snippet has them)."""
    front, back = snippet_parts(text if text is not None else SNIPPET.read_text())
    novas = list(nova) or [("127.0.0.1", _closed_port())]
    lines = [_HEAD.format(port=port).rstrip("\n"), *front, "backend nova_api_back", "    mode http"]
    lines += [f"    server nova-api{i} {h}:{p} check" for i, (h, p) in enumerate(novas, 1)]
    lines += back
    lines += [f"    server cellgate{i} {h}:{p} check" for i, (h, p) in enumerate(cellgate, 1)]
    lines += [f"    server nova-api{i} {h}:{p} backup" for i, (h, p) in enumerate(nova, 1)]
    return "\n".join(lines) + "\n"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class HaProxy:
    """HAProxy in the foreground (``-db``) on ``127.0.0.1:port`` until :meth:`stop`."""

    port: int
    cellgate: Sequence[Address]
    nova: Sequence[Address] = ()
    snippet: str | None = None  # the snippet's text (default: deploy/haproxy/cellgate.cfg)
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cellgate-haproxy-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.work / "haproxy.log"

    def start(self) -> HaProxy:
        executable = binary()
        if executable is None:
            raise HaProxyError("haproxy not installed (apt-get install haproxy)")
        self.work.mkdir(parents=True, exist_ok=True)
        config = self.work / "haproxy.cfg"
        config.write_text(assemble(self.port, self.cellgate, self.nova, self.snippet))
        checked = subprocess.run(
            [executable, "-c", "-q", "-f", str(config)], capture_output=True, text=True
        )
        if checked.returncode != 0:
            raise HaProxyError(f"haproxy -c refused {config}: {checked.stdout}{checked.stderr}")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [executable, "-db", "-f", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _listening(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise HaProxyError(f"haproxy did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        """Stop HAProxy (SIGTERM, SIGKILL after 10 s); the work directory stays."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> HaProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
