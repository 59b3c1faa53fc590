"""Carrying out a chaos schedule on a ``scripts/devstack`` stack.

Every fault but one goes through ``scripts/outage`` (the one way the project takes a cell,
the API database or Redis down, freezes it, slows it, cuts its connections and restores
it); a killed worker is a SIGKILL to one of ``cellgate serve --workers N``'s processes,
which uvicorn's supervisor replaces. :class:`FaultRunner` plays a schedule on the running
event loop and records when each step really happened (:class:`Applied`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cgbench import REPO
from cgbench.chaosplan import Fault, FaultKind
from cgbench.console import say

__all__ = ["Applied", "FaultRunner", "worker_pids"]

OUTAGE = REPO / "scripts" / "outage"
CUT_EVERY_S = 2.0
OUTAGE_TIMEOUT_S = 90.0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def worker_pids(gateway_pid: int) -> list[int]:
    """The uvicorn worker processes of ``serve --workers N`` (multiprocessing's spawned
    children; its resource tracker is a child too, without ``spawn_main``)."""
    out = []
    for child in _children(gateway_pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmdline:
            out.append(child)
    return sorted(out)


@dataclass
class Applied:
    """What became of one scheduled fault: when it really started and ended (seconds from
    the start of the load), and the steps taken with their output or error."""

    fault: Fault
    started_s: float = float("nan")
    ended_s: float = float("nan")
    steps: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class FaultRunner:
    """Plays ``schedule`` against the stack in ``devstack_dir``, whose gateway runs as
    ``gateway_pid``; ``slow_delay_s`` is the proxy delay of a slowed cell."""

    def __init__(
        self,
        schedule: Sequence[Fault],
        devstack_dir: Path,
        gateway_pid: int,
        slow_delay_s: float,
        seed: int,
    ) -> None:
        self.schedule = list(schedule)
        self.env = {**os.environ, "CELLGATE_DEVSTACK_DIR": str(devstack_dir)}
        self.gateway_pid = gateway_pid
        self.slow_delay_s = slow_delay_s
        self.rng = random.Random(seed)
        self.applied = [Applied(f) for f in self.schedule]
        self.t0 = time.monotonic()

    def now_s(self) -> float:
        return time.monotonic() - self.t0

    async def run(self, t0: float) -> list[Applied]:
        """Play the schedule (times relative to the monotonic ``t0``); every fault is
        undone before this returns, even when cancelled."""
        self.t0 = t0
        try:
            await asyncio.gather(*(self._play(a) for a in self.applied))
        finally:
            await self.restore_all()
        return self.applied

    async def _outage(self, applied: Applied, target: str, action: str, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            str(OUTAGE), target, action, *args,
            env=self.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            async with asyncio.timeout(OUTAGE_TIMEOUT_S):
                out, _ = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            applied.errors.append(f"{self.now_s():.1f}s outage {target} {action}: timed out")
            return
        line = f"{self.now_s():.1f}s outage {target} {action}: {out.decode().strip()}"
        (applied.steps if proc.returncode == 0 else applied.errors).append(line)

    async def _sleep_until(self, at_s: float) -> None:
        await asyncio.sleep(max(0.0, at_s - self.now_s()))

    async def _play(self, a: Applied) -> None:
        f = a.fault
        await self._sleep_until(f.start_s)
        a.started_s = self.now_s()
        say(f"chaos: {a.started_s:6.1f}s start {f.kind.value} {','.join(f.targets)}")
        await self._start(a)
        if f.kind is FaultKind.CELL_CUT:
            while self.now_s() + CUT_EVERY_S < f.end_s:
                await asyncio.sleep(CUT_EVERY_S)
                await self._outage(a, f.targets[0], "cut")
        await self._sleep_until(f.end_s)
        await self._end(a)
        a.ended_s = self.now_s()
        say(f"chaos: {a.ended_s:6.1f}s end   {f.kind.value} {','.join(f.targets)}")

    async def _start(self, a: Applied) -> None:
        f = a.fault
        match f.kind:
            case FaultKind.CELL_STOP | FaultKind.TWO_CELLS_DOWN | FaultKind.APIDB_RESTART:
                await asyncio.gather(*(self._outage(a, t, "down") for t in f.targets))
            case FaultKind.REDIS_RESTART:
                await self._outage(a, "redis", "down")
            case FaultKind.CELL_FREEZE | FaultKind.REDIS_FREEZE:
                await self._outage(a, f.targets[0], "hang")
            case FaultKind.CELL_SLOW:
                await self._outage(a, f.targets[0], "slow", "--delay", f"{self.slow_delay_s:g}")
            case FaultKind.CELL_CUT:
                await self._outage(a, f.targets[0], "cut")
            case FaultKind.WORKER_KILL:
                self._kill_worker(a)

    def _kill_worker(self, a: Applied) -> None:
        workers = worker_pids(self.gateway_pid)
        if not workers:
            a.errors.append(f"{self.now_s():.1f}s no worker of pid {self.gateway_pid} to kill")
            return
        victim = self.rng.choice(workers)
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
        a.steps.append(f"{self.now_s():.1f}s SIGKILL worker {victim} (of {workers})")

    async def _end(self, a: Applied) -> None:
        if a.fault.kind in (FaultKind.WORKER_KILL, FaultKind.CELL_CUT):
            return
        await asyncio.gather(*(self._outage(a, t, "restore") for t in a.fault.targets))

    async def restore_all(self) -> None:
        """Restore every target the schedule names (a no-op for the healthy ones)."""
        targets = sorted({t for f in self.schedule for t in f.targets if t != "worker"})
        scratch = Applied(self.schedule[0]) if self.schedule else None
        if scratch is None:
            return
        await asyncio.gather(*(self._outage(scratch, t, "restore") for t in targets))
