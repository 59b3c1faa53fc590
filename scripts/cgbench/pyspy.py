"""py-spy profiles: a gateway under load, or this process running the listing in a loop,
summarised as shares of the main thread's samples."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from cgbench.console import say
from cgbench.load import load
from cgbench.results import CpuProfile, Skipped
from cgbench.servers import Server

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]+?)(?::\d+)?\)$")
_OURS = ("cells (ours)", "gateway (ours)", "cache (ours)")
# The frames every request runs under (the server loop): no inclusive share worth listing.
_SERVING_FRAMES = ("gateway/cli.py", "gateway/server.py", "gateway/workers.py")
_AREAS = (
    ("cells/", "cells (ours)"),
    ("gateway/", "gateway (ours)"),
    ("cache/", "cache (ours)"),
    ("sqlalchemy/", "SQLAlchemy"),
    ("asyncpg/", "asyncpg"),
    ("uvicorn/", "uvicorn"),
    ("starlette/", "starlette/FastAPI"),
    ("fastapi/", "starlette/FastAPI"),
    ("pydantic", "pydantic"),
    ("prometheus_client/", "prometheus_client"),
    ("asyncio/", "asyncio (event loop, socket I/O)"),
    ("uvloop/", "asyncio (event loop, socket I/O)"),
    ("redis/", "redis"),
    ("anyio/", "anyio (threadpool)"),
)


def _record(pid: int, seconds: float, rate: int, raw: Path) -> list[str]:
    return [
        *("record", "-p", str(pid), "-d", str(int(seconds)), "-r", str(rate)),
        *("-f", "raw", "--threads", "-o", str(raw)),
    ]


async def run_profile(
    server: Server, seconds: float, clients: int, workdir: Path, pg_dbs: frozenset[str]
) -> CpuProfile | Skipped:
    """py-spy on the sharded server under the admin limit-100 load (not a measured run)."""
    pyspy = shutil.which("py-spy")
    if pyspy is None or seconds <= 0:
        return Skipped("py-spy not installed" if pyspy is None else "disabled")
    raw = workdir / "pyspy-sharded-server.txt"
    say(f"py-spy: sharded server under admin limit-100 load, {seconds:g} s")
    proc = await asyncio.create_subprocess_exec(
        pyspy,
        *_record(server.pid, seconds, 200, raw),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await load(server, "admin", 100, clients, seconds + 1, 0.5, pg_dbs)
        async with asyncio.timeout(30):
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if not raw.is_file():
        return Skipped(f"py-spy wrote nothing (exit {proc.returncode})")
    return summarize_pyspy(raw.read_text())


async def profile_inprocess(
    page: Callable[[], Awaitable[object]], seconds: float, workdir: Path, name: str
) -> CpuProfile | Skipped:
    """py-spy on this very process while ``page`` runs in a loop (the listing path alone)."""
    pyspy = shutil.which("py-spy")
    if pyspy is None or seconds <= 0:
        return Skipped("py-spy not installed" if pyspy is None else "disabled")
    raw = workdir / f"pyspy-{name}.txt"
    proc = await asyncio.create_subprocess_exec(
        pyspy,
        *_record(os.getpid(), seconds, 250, raw),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    pages = 0
    cpu0 = time.process_time()
    try:
        await asyncio.sleep(0.5)  # let py-spy attach
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline and proc.returncode is None:
            await page()
            pages += 1
        async with asyncio.timeout(30):
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if not raw.is_file():
        return Skipped(f"py-spy wrote nothing (exit {proc.returncode})")
    # Nothing else runs in this process meanwhile, so every main-thread sample is the listing
    # (list_page and the fetch tasks it gathers, which have their own stacks).
    return replace(
        summarize_pyspy(raw.read_text()),
        pages=pages,
        cpu_ms_per_page=1000 * (time.process_time() - cpu0) / max(1, pages),
    )


def _area(path: str) -> str:
    head = path.split("/site-packages/")[-1].lstrip("/")
    for prefix, name in _AREAS:
        if head.startswith(prefix) or f"/{prefix}" in head:
            return name
    return "other (stdlib, C extensions' Python parts)"


def _short(path: str) -> str:
    return path.split("/site-packages/")[-1].replace("/work/main/", "")


def summarize_pyspy(
    text: str, thread: str = "MainThread", within: tuple[str, ...] = ()
) -> CpuProfile:
    """Shares of ``thread``'s samples (optionally only stacks through a function named in
    ``within``): self time by area and by function, inclusive time of our functions."""
    total = 0
    other_threads = 0
    other_leaf: dict[str, int] = defaultdict(int)
    by_area: dict[str, int] = defaultdict(int)
    self_fn: dict[str, int] = defaultdict(int)
    incl_fn: dict[str, int] = defaultdict(int)
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        if frames[0].startswith("thread ") or frames[0].startswith("process "):
            if thread not in frames[0]:
                other_threads += count
                leaf_other = _FRAME.match(frames[-1])
                if leaf_other:
                    other_leaf[f"{leaf_other['func']} ({_short(leaf_other['file'])})"] += count
                continue
            frames = frames[1:]
        parsed = [m for m in (_FRAME.match(f) for f in frames) if m]
        if within and not any(m["func"] in within for m in parsed):
            continue
        total += count
        if not parsed:
            continue
        leaf = parsed[-1]
        by_area[_area(leaf["file"])] += count
        self_fn[f"{leaf['func']} ({_short(leaf['file'])})"] += count
        seen = set()
        for m in parsed:
            if _area(m["file"]) not in _OURS or m["file"].endswith(_SERVING_FRAMES):
                continue
            name = f"{m['func']} ({_short(m['file'])})"
            if name not in seen:
                seen.add(name)
                incl_fn[name] += count

    def share(d: dict[str, int], n: int) -> list[tuple[str, float]]:
        return sorted(((k, v / total) for k, v in d.items()), key=lambda kv: -kv[1])[:n]

    return CpuProfile(
        samples=total,
        other_thread_samples=other_threads,
        other_thread_top=sorted(other_leaf.items(), key=lambda kv: -kv[1])[:3],
        by_area=share(by_area, 20) if total else [],
        self=share(self_fn, 15) if total else [],
        inclusive_ours=share(incl_fn, 18) if total else [],
    )
