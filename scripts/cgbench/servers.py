"""The gateways under test: ``cellgate serve`` subprocesses on free loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import BinaryIO

from cgbench import REPO
from cgbench.httpconn import HttpConn
from cgbench.metrics import Samples, parse_metrics
from cgbench.procs import stop_process
from cgbench.profiles import ServerName

STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One ``cellgate serve`` with the caller's settings, logging to ``server-NAME.log``."""

    def __init__(
        self,
        name: str,
        api_url: str,
        env: dict[str, str],
        logdir: Path,
        args: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CELLGATE_")}
        self.env.update(env)
        self.env["CELLGATE_API_DATABASE_URL"] = api_url
        self.env["PYTHONPATH"] = str(REPO) + os.pathsep + self.env.get("PYTHONPATH", "")
        self.args = args  # more `cellgate serve` arguments (--workers N)
        self.log_path = logdir / f"server-{name.replace(' ', '-').replace(',', '')}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        cmd = [sys.executable, "-m", "gateway.cli", "serve", "--host", "127.0.0.1"]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*cmd, "--port", str(self.port), *self.args],
            cwd=REPO,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        conn = HttpConn("127.0.0.1", self.port)
        try:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    break
                try:
                    status, _, _ = await conn.get("/readyz")
                    if status == 200:
                        return
                except (OSError, asyncio.IncompleteReadError, TimeoutError):
                    conn.close()
                await asyncio.sleep(0.2)
        finally:
            conn.close()
        tail = self.log_path.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"server {self.name} did not become ready:\n{tail}")

    def warnings(self) -> dict[str, int]:
        """Counts of WARNING/ERROR log messages (by message, numbers elided)."""
        counts: dict[str, int] = defaultdict(int)
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                if not line.startswith("{"):
                    continue
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if entry.get("level") in ("WARNING", "ERROR"):
                        msg = re.sub(r"\d+(\.\d+)?", "N", str(entry.get("msg", "")))[:120]
                        counts[f"{entry['level']}: {msg}"] += 1
        return dict(counts)

    async def metrics(self) -> Samples:
        conn = HttpConn("127.0.0.1", self.port)
        try:
            status, _, body = await conn.get("/metrics")
        finally:
            conn.close()
        if status != 200:
            raise RuntimeError(f"/metrics of {self.name} answered {status}")
        return parse_metrics(body.decode())

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        stop_process(proc, signal.SIGINT, STOP_TIMEOUT_S)  # SIGINT: uvicorn's graceful stop
        if self._log is not None:
            self._log.close()
            self._log = None


Servers = dict[ServerName, Server]


def connection_peak(clients: int) -> int:
    """Our PostgreSQL connections at most while one gateway is loaded: the sharded one holds
    one connection per cell per in-flight request, plus API-database ones, plus this process."""
    return clients * (8 + 1) + 2


async def exclusive(servers: Servers, name: ServerName, clients: int) -> Server:
    """Run ``name`` alone: a loaded sharded gateway holds clients × cells connections, and
    PostgreSQL's max_connections is shared with everything else on this machine."""
    for other, server in servers.items():
        if other != name and server.running and connection_peak(clients) > 30:
            server.stop()
    server = servers[name]
    if not server.running:
        server.start()
        await server.wait_ready()
    return server
