"""The two servers under test, on the same databases and the same Neutron.

- nova-api 34.0.0: ``scripts/nova_api.py serve`` (gunicorn, ``workers`` processes of
  :data:`NOVA_THREADS` threads; Nova's paste pipeline without ``authtoken``, so callers
  come from ``X-User-Id``/``X-Project-Id``/``X-Roles``); that process also serves the
  empty Neutron both servers ask for the detail view's security groups (every port and
  group list empty), so the Neutron costs neither the measuring process's CPU nor a
  difference between the servers.
- ``cellgate serve --workers N`` (:class:`cgbench.servers.Server`) in ``trusted-headers``
  mode, everything else at its defaults but the page cache and the coalescing of
  identical listings, both off: every request is answered by a fan-out, as in Nova. The
  frontier cache (Redis) stays on: it is how cellgate pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from cgbench import REPO
from cgbench.novaratio.data import NovaDatabases
from cgbench.procs import stop_process
from cgbench.servers import Server, free_port

__all__ = ["NOVA_THREADS", "Pair", "cellgate_env", "forget", "servers"]

NOVA_THREADS = 4
"""gunicorn threads per nova-api worker (``scripts/nova_api.py``'s ``gunicorn.conf.py``)."""
_NOVA_API = REPO / "scripts" / "nova_api.py"
_STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Pair:
    """Both servers, ready."""

    nova_url: str
    nova_port: int
    neutron_url: str
    cellgate: Server


def cellgate_env(neutron_url: str, redis_url: str, redis_prefix: str) -> dict[str, str]:
    """``cellgate serve``'s settings for the run (see the module docstring)."""
    return {
        "CELLGATE_AUTH_MODE": "trusted-headers",
        "CELLGATE_NEUTRON_URL": neutron_url,
        "CELLGATE_PAGE_CACHE_TTL_S": "0",
        "CELLGATE_COALESCE_LISTINGS": "false",
        "CELLGATE_REDIS_URL": redis_url,
        "CELLGATE_REDIS_PREFIX": redis_prefix,
        "CELLGATE_LOG_FORMAT": "json",
    }


def _start_nova(dbs: NovaDatabases, workers: int, work_dir: Path) -> subprocess.Popen[bytes]:
    """``scripts/nova_api.py serve``; it prints one JSON line once nova-api answers."""
    work_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(_NOVA_API), "serve", "--api-db", dbs.api,
         "--database", dbs.nova, "--port", str(free_port()), "--workers", str(workers),
         "--work-dir", str(work_dir)],
        stdout=subprocess.PIPE,
    )  # fmt: skip


async def _nova_ready(proc: subprocess.Popen[bytes], work_dir: Path) -> dict[str, str]:
    """The JSON line of a started ``scripts/nova_api.py serve`` (its URLs)."""
    assert proc.stdout is not None
    line = await asyncio.to_thread(proc.stdout.readline)
    if not line:
        code = await asyncio.to_thread(proc.wait)
        raise RuntimeError(f"scripts/nova_api exited with {code}; see {work_dir}")
    info = json.loads(line)
    return {"url": str(info["url"]), "neutron_url": str(info["neutron_url"])}


def _stop_nova(proc: subprocess.Popen[bytes]) -> None:
    stop_process(proc, signal.SIGTERM, _STOP_TIMEOUT_S)
    if proc.stdout is not None:
        proc.stdout.close()


async def forget(redis_url: str, prefix: str) -> int:
    """Delete the run's keys (``prefix:*``) from Redis; how many there were."""
    client = Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        return len(keys)
    finally:
        await client.aclose()


@contextlib.asynccontextmanager
async def servers(
    dbs: NovaDatabases, workers: int, logdir: Path, redis_url: str, redis_prefix: str
) -> AsyncIterator[Pair]:
    """nova-api and cellgate with ``workers`` worker processes each, on ``dbs``; both
    stopped on exit (their logs stay in ``logdir``)."""
    work_dir = logdir / "nova-api"
    nova = _start_nova(dbs, workers, work_dir)
    cellgate: Server | None = None
    try:
        info = await _nova_ready(nova, work_dir)
        env = cellgate_env(info["neutron_url"], redis_url, redis_prefix)
        cellgate = Server("cellgate", dbs.api, env, logdir, ("--workers", str(workers)))
        cellgate.start()
        await cellgate.wait_ready(120.0)
        port = int(info["url"].rsplit(":", 1)[1])
        yield Pair(info["url"], port, info["neutron_url"], cellgate)
    finally:
        if cellgate is not None:
            cellgate.stop()
        _stop_nova(nova)
