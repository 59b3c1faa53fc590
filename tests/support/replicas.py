"""Several ``cellgate serve`` processes (replicas) on free loopback ports, for the tests
that need more than one gateway: the shared breakers and the HAProxy routing.

:func:`replicas` starts them with one environment each (``serve_env`` plus the settings
given), waits for every banner, and stops them all (SIGTERM, then SIGKILL) whatever the
test did; :class:`Replica` can be killed on its own (a replica lost) and scraped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.serve import cli, serve_env, wait_for_banner

__all__ = ["Replica", "free_port", "replicas"]

STOP_TIMEOUT_S = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Replica:
    """One ``cellgate serve`` process."""

    name: str
    port: int
    process: subprocess.Popen[str]
    stderr_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metric(self, name: str, **labels: str) -> float:
        """The sum of ``name``'s samples carrying ``labels`` in this replica's ``/metrics``."""
        response = httpx.get(f"{self.url}/metrics", timeout=30)
        response.raise_for_status()
        return sum(
            sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
        )

    def kill(self) -> None:
        """SIGKILL the replica's process group (a replica lost, no goodbye)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_TIMEOUT_S)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextmanager
def _replica(name: str, root: Path, settings: Mapping[str, str]) -> Iterator[Replica]:
    port = free_port()
    stderr_path = root / f"{name}.stderr.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            cli("serve", "--port", str(port)),
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=serve_env(**settings),
            start_new_session=True,
        )
    replica = Replica(name, port, process, stderr_path)
    try:
        wait_for_banner(process, stderr_path)
        yield replica
    finally:
        replica.stop()


@contextmanager
def replicas(root: Path, *settings: Mapping[str, str]) -> Iterator[list[Replica]]:
    """One replica per mapping of ``CELLGATE_*`` settings, started one after the other."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(_replica(f"replica{i}", root, s))
            for i, s in enumerate(settings, start=1)
        ]
