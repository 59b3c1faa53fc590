"""What the chaos run samples from the gateway every couple of seconds: answers by status
(its ``/metrics``), each worker's cell breakers (the worker's own gauge file: ``/metrics``
combines the workers into the worst one), the workers' pids and the RSS of the whole tree;
and the CPU the machine, the run's own processes (the stack's servers, the gateway, locust,
this process) and the gateway used since the previous sample, in cores: the machine is
shared, and a saturation rate means little without what others took.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.samples import Sample

from cgbench.chaosfaults import worker_pids
from cgbench.cpu import machine_busy_s, proc_cpu_s
from cgbench.httpconn import HttpConn
from cgbench.metrics import parse_metrics
from cgbench.rss import process_parents, tree_rss_kib

__all__ = ["CpuMeter", "MonSample", "breakers_of", "monitor", "served_by"]

SAMPLE_EVERY_S = 2.0
BREAKER = "cellgate_cell_breaker_state"


@dataclass(frozen=True)
class MonSample:
    t_s: float
    statuses: dict[str, float] | None  # cumulative /v2.1 answers by status; None: no scrape
    breakers: dict[int, dict[str, int]]  # worker pid → cell → 0 closed, 1 half-open, 2 open
    served: dict[int, float]  # worker pid → /v2.1 requests answered so far
    workers: tuple[int, ...]
    rss_kib: int
    machine_cores: float = 0.0  # since the previous sample
    ours_cores: float = 0.0  # the stack, the gateway, locust, this process
    gateway_cores: float = 0.0


class CpuMeter:
    """CPU since the previous reading: the machine's, and that of the process trees rooted
    at this process, the gateway and every process whose command line names ``marker``
    (the stack's directory: its PostgreSQL servers, delay proxies). Per process, so a
    process that exits takes nothing away from the sum."""

    def __init__(self, marker: str, gateway_pid: int) -> None:
        self.marker = marker.encode()
        self.gateway_pid = gateway_pid
        self.last_t = time.monotonic()
        self.last_machine = machine_busy_s()
        self.last: dict[int, float] = {}

    def _roots(self, parents: dict[int, int]) -> set[int]:
        roots = {os.getpid(), self.gateway_pid}
        for pid in parents:
            try:
                if self.marker in Path(f"/proc/{pid}/cmdline").read_bytes():
                    roots.add(pid)
            except OSError:
                continue
        return roots

    def read(self) -> tuple[float, float, float]:
        """(machine, ours, gateway) in cores since the previous call."""
        parents = process_parents()
        children: dict[int, list[int]] = {}
        for child, parent in parents.items():
            children.setdefault(parent, []).append(child)

        def tree(root: int) -> set[int]:
            out, todo = {root}, [root]
            while todo:
                for c in children.get(todo.pop(), []):
                    if c not in out:
                        out.add(c)
                        todo.append(c)
            return out

        ours = set().union(*(tree(r) for r in self._roots(parents)))
        gateway = tree(self.gateway_pid)
        now_cpu = {pid: proc_cpu_s(pid) for pid in ours}
        now, machine = time.monotonic(), machine_busy_s()
        span = max(1e-3, now - self.last_t)

        def used(pids: set[int]) -> float:
            return sum(now_cpu[p] - self.last.get(p, now_cpu[p]) for p in pids) / span

        out = ((machine - self.last_machine) / span, used(ours), used(gateway))
        self.last_t, self.last_machine, self.last = now, machine, now_cpu
        return out


def _metrics_dir(pid: int) -> Path | None:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in environ:
        if item.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
            return Path(item.split(b"=", 1)[1].decode())
    return None


def _own_samples(pid: int, kind: str) -> list[Sample]:
    """Worker ``pid``'s own samples from its ``kind`` file (``gauge_livemax``, ``counter``)."""
    directory = _metrics_dir(pid)
    if directory is None:
        return []
    files = [str(p) for p in directory.glob(f"{kind}_{pid}.db")]
    merged = MultiProcessCollector.merge(files, accumulate=False)  # type: ignore[no-untyped-call]  # prometheus_client.multiprocess is unannotated
    return [sample for family in merged for sample in family.samples]


def breakers_of(pid: int) -> dict[str, int]:
    """The cell breaker states worker ``pid`` last recorded (empty before its first)."""
    return {
        s.labels["cell"]: int(s.value)
        for s in _own_samples(pid, "gauge_livemax")
        if s.name == BREAKER
    }


def served_by(pid: int) -> float:
    """The ``/v2.1`` requests worker ``pid`` has answered."""
    return sum(
        s.value
        for s in _own_samples(pid, "counter")
        if s.name == "cellgate_http_requests_total" and s.labels["route"].startswith("/v2.1")
    )


async def _statuses(port: int) -> dict[str, float] | None:
    conn = HttpConn("127.0.0.1", port)
    try:
        status, _, body = await conn.get("/metrics")
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
        return None
    finally:
        conn.close()
    if status != 200:
        return None
    out: dict[str, float] = {}
    for (name, labels), value in parse_metrics(body.decode()).items():
        lab = dict(labels)
        if name == "cellgate_http_requests_total" and lab.get("route", "").startswith("/v2.1"):
            out[lab["status"]] = out.get(lab["status"], 0.0) + value
    return out


async def monitor(
    port: int, gateway_pid: int, stack_dir: str, t0: float, stop: asyncio.Event
) -> list[MonSample]:
    """Sample every :data:`SAMPLE_EVERY_S` until ``stop``."""
    out: list[MonSample] = []
    cpu = CpuMeter(stack_dir, gateway_pid)
    while not stop.is_set():
        t = time.monotonic() - t0
        workers = tuple(worker_pids(gateway_pid))
        machine, ours, gateway = cpu.read()
        out.append(
            MonSample(
                t_s=t,
                statuses=await _statuses(port),
                breakers={pid: breakers_of(pid) for pid in workers},
                served={pid: served_by(pid) for pid in workers},
                workers=workers,
                rss_kib=tree_rss_kib(gateway_pid),
                machine_cores=round(machine, 2),
                ours_cores=round(ours, 2),
                gateway_cores=round(gateway, 2),
            )
        )
        await asyncio.sleep(max(0.0, SAMPLE_EVERY_S - (time.monotonic() - t0 - t)))
    return out
