"""A real Keystone for the tests: ``scripts/keystone`` (PyPI's ``keystone`` in a venv of its
own, SQLite, fernet tokens) installed, served on loopback and stopped, the seeded projects
renamed to its ids, and a ``clouds.yaml`` for the OpenStack clients. Used by
``test_keystone_live`` and ``test_haproxy_routing``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cells.registry import async_url
from cells.schema import instance_mappings, instances
from tests.support.cellsets import CellSet

__all__ = [
    "READY_TIMEOUT_S",
    "SCRIPT",
    "Keystone",
    "ci",
    "clouds_yaml",
    "install_keystone",
    "rename_projects",
    "sdk_warnings",
    "start_keystone",
    "stop_keystone",
]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "keystone"
INSTALL_TIMEOUT_S = 900.0
READY_TIMEOUT_S = 300.0
F = TypeVar("F", bound=Callable[..., Any])

# openstacksdk warns about its own internals (see test_clients.py).
_SDK50 = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning")
_SDK60 = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning")


def sdk_warnings(test: F) -> F:
    return _SDK50(_SDK60(test))  # type: ignore[no-any-return]  # pytest's mark decorators are typed to return Any


@dataclass(frozen=True)
class Keystone:
    """A running ``scripts/keystone serve`` and what it created."""

    proc: subprocess.Popen[bytes]
    auth_url: str
    password: str
    projects: dict[str, str]
    work_dir: Path

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.auth_url, timeout=2.0):
                return True
        except OSError:
            return False

    def _until(self, answering: bool, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self._answers() is not answering:
            assert self.proc.poll() is None, f"scripts/keystone exited; see {self.work_dir}"
            assert time.monotonic() < deadline, f"Keystone still answering={not answering}"
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the server (the script keeps its state): connections are refused."""
        self.proc.send_signal(signal.SIGUSR1)
        self._until(False, 30.0)

    def start(self) -> None:
        self.proc.send_signal(signal.SIGUSR2)
        self._until(True, READY_TIMEOUT_S)


def ci() -> bool:
    return os.environ.get("CI") == "true"


def install_keystone() -> None:
    """Build (or reuse) the Keystone venv: skip when impossible here, fail under CI."""
    try:
        done = subprocess.run(
            [str(SCRIPT), "install"], capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        message = f"scripts/keystone install took more than {INSTALL_TIMEOUT_S:.0f} s"
    else:
        if done.returncode == 0:
            return
        message = f"scripts/keystone install failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"
    if ci():
        pytest.fail(message)
    pytest.skip(message)


def start_keystone(compute_url: str, port: int, work: Path) -> Keystone:
    out = work / "stdout"
    with open(out, "wb") as stdout, open(work / "stderr", "wb") as stderr:
        proc = subprocess.Popen(
            [str(SCRIPT), "serve", compute_url, "--port", str(port), "--work-dir", str(work)],
            stdout=stdout,
            stderr=stderr,
        )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not out.read_bytes().endswith(b"\n"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.terminate()  # the script stops its gunicorn on SIGTERM
            proc.wait(timeout=30)
            raise RuntimeError(f"Keystone did not start:\n{(work / 'stderr').read_text()}")
        time.sleep(0.2)
    info = json.loads(out.read_text())
    return Keystone(proc, info["auth_url"], info["password"], info["projects"], work)


def stop_keystone(keystone: Keystone) -> None:
    keystone.proc.send_signal(signal.SIGTERM)
    try:
        keystone.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        keystone.proc.kill()
        keystone.proc.wait()


async def rename_projects(cell_set: CellSet, renames: dict[str, str]) -> None:
    """Give the seeded projects Keystone's ids (Keystone picks ids; the seed picks names)."""
    targets = [(cell_set.api_url, instance_mappings)]
    targets += [(cell.url, instances) for cell in cell_set.cells]
    for url, table in targets:
        engine = create_async_engine(async_url(url), poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                for old, new in renames.items():
                    await conn.execute(
                        update(table).where(table.c.project_id == old).values(project_id=new)
                    )
        finally:
            await engine.dispose()


def clouds_yaml(path: Path, keystone: Keystone) -> Path:
    def cloud(user: str) -> dict[str, object]:
        auth = {
            "auth_url": keystone.auth_url,
            "username": user,
            "password": keystone.password,
            "project_name": user,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        }
        return {"auth": auth, "region_name": "RegionOne", "identity_api_version": 3}

    path.write_text(yaml.safe_dump({"clouds": {"demo": cloud("demo"), "admin": cloud("admin")}}))
    return path
