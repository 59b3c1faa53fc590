"""The chaos run's stack: ``scripts/devstack`` (the one way the project starts cells behind
delay proxies, the API database, Redis and the gateway) in a private directory under
``/tmp`` on a port block of its own, with ``cellgate serve --workers N``."""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from stackconf import read_state

from cgbench import REPO
from cgbench.console import say

__all__ = ["Stack", "gateway_connections"]

DEVSTACK = REPO / "scripts" / "devstack"
UP_TIMEOUT_S = 900.0


@dataclass
class Stack:
    """A devstack of ``cells`` cells; :meth:`up` starts it, :meth:`down` purges it."""

    cells: int
    instances: int
    workers: int
    port_base: int
    gateway_port: int
    settings: dict[str, str]  # CELLGATE_* for the gateway

    def __post_init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="cg-chaos-", dir="/tmp"))
        self.dir.chmod(0o755)  # the postgres user creates its data directories inside
        self.state: dict[str, str] = {}

    @property
    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("CELLGATE_")}
        return {
            **keep,
            **self.settings,
            "CELLGATE_DEVSTACK_DIR": str(self.dir),
            "CELLGATE_DEVSTACK_PORT_BASE": str(self.port_base),
            "CELLGATE_DEVSTACK_GATEWAY_PORT": str(self.gateway_port),
            "CELLGATE_DEVSTACK_WORKERS": str(self.workers),
            "CELLGATE_DEVSTACK_PROMETHEUS": "off",
        }

    def _devstack(self, *args: str) -> None:
        done = subprocess.run(
            [str(DEVSTACK), *args], env=self.env, cwd=REPO, capture_output=True, text=True,
            timeout=UP_TIMEOUT_S, check=False,
        )  # fmt: skip
        for line in done.stdout.splitlines():
            say(line)
        if done.returncode != 0:
            raise RuntimeError(f"devstack {' '.join(args)} failed:\n{done.stderr[-3000:]}")

    def up(self) -> None:
        self._devstack("up", "--cells", str(self.cells), "--instances", str(self.instances))
        state = read_state(self.dir / "state.env")
        if state is None:
            raise RuntimeError(f"devstack up wrote no {self.dir / 'state.env'}")
        self.state.update(state)

    def down(self) -> None:
        self._devstack("down", "--purge")

    @property
    def cell_names(self) -> list[str]:
        return self.state["CELL_NAMES"].split(",")

    def direct_urls(self) -> dict[str, str]:
        """Each cell's PostgreSQL server, not through its delay proxy."""
        return {
            name: self.state[f"CELL{i}_DIRECT_URL"] for i, name in enumerate(self.cell_names, 1)
        }

    @property
    def gateway_pid(self) -> int:
        return int(Path(self.state["GATEWAY_PID_FILE"]).read_text().split()[0])

    @property
    def gateway_url(self) -> str:
        return self.state["GATEWAY_URL"]

    @property
    def log(self) -> Path:
        return Path(self.state["GATEWAY_LOG"])


async def gateway_connections(urls: dict[str, str]) -> dict[str, int]:
    """The gateway's connections to each cell (``application_name = 'cellgate'``)."""
    out: dict[str, int] = {}
    for name, url in urls.items():
        conn = await asyncpg.connect(url, timeout=30)
        try:
            out[name] = int(
                await conn.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'cellgate'"
                )
            )
        finally:
            await conn.close()
    return out
