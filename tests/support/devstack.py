"""``scripts/devstack`` in a temporary directory on free ports, for the integration tests.

:func:`devstack` yields a :class:`Stack` whose ``run`` calls the scripts with the stack's
environment (``CELLGATE_DEVSTACK_DIR`` under ``/tmp``, where the ``postgres`` and ``mysql``
users can reach it, a free port block outside Linux's ephemeral range, a free gateway
port), and runs ``scripts/devstack down --purge`` whatever happens.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from stackconf import read_state
from stackprocs import port_bindable
from tcpproxy import REREAD_S

__all__ = ["DEVSTACK", "OUTAGE", "REREAD_S", "ROOT", "Stack", "devstack", "port_base"]

ROOT = Path(__file__).resolve().parents[2]
DEVSTACK = ROOT / "scripts" / "devstack"
OUTAGE = ROOT / "scripts" / "outage"
# Outside Linux's ephemeral range (32768-60999), so no client connection can take our ports.
PORT_RANGE = range(20_000, 32_000, 200)


def port_base(cells: int) -> tuple[int, int]:
    """A port base whose every devstack port is free, and a free gateway port beside it."""
    offsets = [0, *range(1, cells + 1), 98, 99, *range(101, 101 + cells), 199]
    for base in PORT_RANGE:
        if all(port_bindable(base + offset) for offset in offsets):
            return base, base + 98
    raise RuntimeError("no free port block for the devstack")


@dataclass
class Stack:
    """The scripts' environment, and ``state.env`` once :meth:`load_state` read it."""

    env: dict[str, str]
    state: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            list(args),
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        print(f"$ {' '.join(Path(a).name if '/' in a else a for a in args)}  -> {done.returncode}")
        print(done.stdout.rstrip())
        if done.stderr.strip():
            print(done.stderr.rstrip())
        return done

    def load_state(self) -> None:
        state = read_state(Path(self.env["CELLGATE_DEVSTACK_DIR"]) / "state.env")
        assert state is not None, "no state.env"
        self.state.update(state)


@contextmanager
def devstack(cells: int, **env: str) -> Iterator[Stack]:
    """A :class:`Stack` of ``cells`` cells; ``down --purge`` on the way out."""
    base_dir = tempfile.mkdtemp(prefix="cg-devstack-", dir="/tmp")
    base, gateway_port = port_base(cells)
    stack = Stack(
        {
            **os.environ,
            "CELLGATE_DEVSTACK_DIR": base_dir,
            "CELLGATE_DEVSTACK_PORT_BASE": str(base),
            "CELLGATE_DEVSTACK_GATEWAY_PORT": str(gateway_port),
            **env,
        }
    )
    try:
        yield stack
    finally:
        stack.run(str(DEVSTACK), "down", "--purge", timeout=120)
        shutil.rmtree(base_dir, ignore_errors=True)
