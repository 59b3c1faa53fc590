"""What the run ran on: machine, software versions, commit, PostgreSQL and Redis."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from redis.asyncio import Redis
from redis.exceptions import RedisError

from cgbench import REPO
from cgbench.datasets import connect_pg
from cgbench.profiles import Layout
from cgbench.results import Machine, Services

PACKAGES = ("fastapi", "uvicorn", "uvloop", "sqlalchemy", "asyncpg", "orjson", "redis")


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "-"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=5
    ).stdout.strip()


def machine_info() -> Machine:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    commit = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = _git("rev-parse", "--short", "HEAD")
        if _git("status", "--porcelain", "--untracked-files=no"):
            commit += " (with uncommitted changes)"
    return Machine(
        cpu=f"{cpu}, {os.cpu_count()} cores",
        memory=mem,
        os=f"{platform.system()} {platform.release()}",
        python=platform.python_version(),
        packages=", ".join(f"{m} {_version(m)}" for m in PACKAGES),
        commit=commit,
    )


async def server_versions(layout: Layout, redis_url: str) -> Services:
    conn = await connect_pg(layout)
    try:
        postgresql = str(await conn.fetchval("SHOW server_version"))
        shown = []
        for name in ("shared_buffers", "work_mem", "jit", "max_connections"):
            shown.append(f"{name}={await conn.fetchval(f'SHOW {name}')}")
    finally:
        await conn.close()
    redis_version = "?"
    with contextlib.suppress(RedisError, OSError, KeyError):
        r = Redis.from_url(redis_url, socket_timeout=2)
        try:
            redis_version = str((await r.info("server"))["redis_version"])
        finally:
            await r.aclose()
    return Services(postgresql=postgresql, pg_settings=", ".join(shown), redis=redis_version)
