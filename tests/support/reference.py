"""The reference: the real nova-api (``scripts/nova_api``) on databases cellgate also reads.

:func:`nova_python` builds (or reuses) the Nova venv; :func:`seed_nova_databases` creates
an API database, cells and nova-api's own ``[database]`` with **all** of Nova's tables
(Nova's DDL, from its models in that venv) and seeds them with cellgate's seeder
(:func:`seeded_nova_databases`: and drops them afterwards); :func:`running_nova_api`
serves them with ``scripts/nova_api serve`` on a free port.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import nova_api
import nova_conformance
import pytest

from cells.seeding import SeedCell, SeedPlan, drop_database, reset_database, seed

__all__ = [
    "NovaDatabases",
    "empty_neutron",
    "nova_python",
    "running_nova_api",
    "seed_nova_databases",
    "seeded_nova_databases",
]

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"

START_TIMEOUT_S = 180


def nova_python() -> Path:
    """The Nova venv's python (built when missing or stale); skips without PyPI, fails
    under ``CI=true``."""
    try:
        venv = nova_api.install(os.environ)
    except subprocess.CalledProcessError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"could not build the nova venv: {exc}")
    return venv / "bin" / "python"


class NovaDatabases:
    """URLs of a seeded API database, its cells, and nova-api's own database."""

    def __init__(self, base: str, prefix: str, cells: int) -> None:
        self.api = f"{base}/{prefix}_api"
        self.api_with_dead_cell = f"{base}/{prefix}_api_dead"
        self.database = f"{base}/{prefix}_nova"
        self.cells = [SeedCell(f"cell{i}", f"{base}/{prefix}_cell{i}") for i in range(1, cells + 1)]

    @property
    def cell_urls(self) -> list[str]:
        return [c.url for c in self.cells]

    @property
    def all(self) -> list[str]:
        return [self.api, self.api_with_dead_cell, self.database, *self.cell_urls]


async def seed_nova_databases(
    python: Path, base: str, prefix: str, cells: int, plan: SeedPlan
) -> NovaDatabases:
    """Nova's tables everywhere (Nova's own DDL), then cellgate's seeder on top."""
    dbs = NovaDatabases(base, prefix, cells)
    main_ddl = nova_conformance.nova_ddl(python, "main")
    api_ddl = nova_conformance.nova_ddl(python, "api")
    await asyncio.gather(*(reset_database(url) for url in dbs.all))
    await nova_conformance.create_db(dbs.api, api_ddl)
    await asyncio.gather(
        *(nova_conformance.create_db(url, main_ddl) for url in [dbs.database, *dbs.cell_urls])
    )
    await seed(dbs.api, dbs.cells, plan, progress=False)
    await _copy_with_dead_cell(dbs)
    return dbs


@asynccontextmanager
async def seeded_nova_databases(
    python: Path, base: str, prefix: str, plan: SeedPlan, cells: int = 4
) -> AsyncIterator[NovaDatabases]:
    """:func:`seed_nova_databases`, ``prefix`` made unique to this process; every database
    dropped on the way out."""
    dbs = await seed_nova_databases(python, base, f"{prefix}_{os.getpid()}", cells, plan)
    try:
        yield dbs
    finally:
        for url in dbs.all:
            await drop_database(url)


DEAD_CELL_URL = "postgresql://postgres@127.0.0.1:1/nowhere"
"""A cell whose server refuses connections (nothing listens on port 1)."""


async def _copy_with_dead_cell(dbs: NovaDatabases) -> None:
    """``api_with_dead_cell``: a copy of the API database with one more cell, refusing."""
    await drop_database(dbs.api_with_dead_cell)
    base, _, api_name = dbs.api.rpartition("/")
    dead_name = dbs.api_with_dead_cell.rpartition("/")[2]
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{dead_name}" TEMPLATE "{api_name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(dbs.api_with_dead_cell)
    try:
        await conn.execute(
            "INSERT INTO cell_mappings (id, uuid, name, transport_url, database_connection,"
            " disabled, created_at) SELECT max(id) + 1, $1, 'dead', 'none:///', $2, false,"
            " now() FROM cell_mappings",
            str(uuid.uuid4()),
            DEAD_CELL_URL,
        )
    finally:
        await conn.close()


@contextmanager
def running_nova_api(
    dbs: NovaDatabases,
    port: int,
    workers: int = 2,
    *,
    api: str | None = None,
    neutron_url: str | None = None,
    policy_file: Path | None = None,
    work_dir: Path | None = None,
) -> Iterator[str]:
    """``scripts/nova_api serve`` on ``port`` (asking ``neutron_url``, else an empty Neutron
    of its own; ``policy_file`` as its ``[oslo_policy] policy_file``; its ``nova.conf`` in
    ``work_dir`` when given); yields its URL, stops it on the way out."""
    proc = subprocess.Popen(
        [
            sys.executable,
            str(SCRIPTS / "nova_api.py"),
            "serve",
            "--api-db",
            api or dbs.api,
            "--database",
            dbs.database,
            "--port",
            str(port),
            "--workers",
            str(workers),
            *(["--neutron-url", neutron_url] if neutron_url else []),
            *(["--policy-file", str(policy_file)] if policy_file else []),
            *(["--work-dir", str(work_dir)] if work_dir else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            pytest.fail(f"scripts/nova_api exited with {proc.wait(timeout=START_TIMEOUT_S)}")
        yield str(json.loads(line)["url"])
    finally:
        assert proc.stdout is not None
        proc.stdout.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextmanager
def empty_neutron() -> Iterator[str]:
    """An empty Neutron (every port and group list empty) for nova-api and cellgate both:
    its URL."""
    server = nova_api.serve_empty_neutron()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
