"""Acceptance: a walk of ≥100k instances over ≥4 PostgreSQL cells equals the oracle.

``cg_big`` is seeded with 100,000 instances over 4 PostgreSQL cells (the seed leaves the
last one empty). For a handful of random sort/filter combinations — drawn from a
``random.Random`` whose seed is printed, so a failure can be replayed with
``CELLGATE_BIG_WALK_SEED`` — an admin walks ``all_tenants=1`` at ``limit=1000`` through
HTTP, and the concatenated pages must equal the independent oracle exactly. The first
combination has no status/name filter and a ``changes-since`` before the first instance,
so it walks all 100,000 rows (deleted ones included). Rows walked
and elapsed seconds are printed (run with ``-s``) and recorded as properties.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import time
from collections.abc import AsyncIterator

import pytest

from cells.seeding.dataset import EPOCH
from tests.support.apps import app_client
from tests.support.cellsets import CellSet, drop_postgres, seed_postgres
from tests.support.oracle import Snapshot, expected_uuids, load_snapshot, query_from_params, walk

pytestmark = pytest.mark.integration

INSTANCES = 100_000
CELLS = 4
COMBINATIONS = 6
SEED = int(os.environ.get("CELLGATE_BIG_WALK_SEED", "20240611"))
SORT_KEYS = [
    "created_at", "display_name", "hostname", "launched_at", "task_state", "host",
    "updated_at", "uuid",
]  # fmt: skip
NAMES = ["^web", "-0[0-9]{2}$", "é", "k8s|etl", "^[A-Z]", "1$"]
STATUSES = ["ACTIVE", "SHUTOFF", "ERROR", "BUILD"]


@pytest.fixture(scope="module")
async def big_cells(postgres: str) -> AsyncIterator[CellSet]:
    started = time.perf_counter()
    cell_set = await seed_postgres("cg_big", cells=CELLS, instances=INSTANCES, seed_value=42)
    elapsed = time.perf_counter() - started
    print(f"\nseeded {INSTANCES} instances over {CELLS} cells in {elapsed:.1f} s")
    try:
        yield cell_set
    finally:
        await drop_postgres(cell_set)


@pytest.fixture(scope="module")
async def big_snapshot(big_cells: CellSet) -> Snapshot:
    snapshot = await load_snapshot(big_cells)
    assert len(snapshot.rows) == INSTANCES
    return snapshot


def _combination(rng: random.Random, *, everything: bool) -> tuple[str, list[tuple[str, str]]]:
    """A random path and query: sort keys with some (or no) directions, optional filters.

    ``everything``: no status/name filter and a changes-since before the first instance, so
    the walk returns all rows, deleted ones included.
    """
    params: list[tuple[str, str]] = [("all_tenants", "1")]
    keys = rng.sample(SORT_KEYS, rng.randint(0, 3))
    dirs = [rng.choice(["asc", "desc"]) for _ in range(rng.randint(0, len(keys)))]
    for i, key in enumerate(keys):
        params.append(("sort_key", key))
        if i < len(dirs):
            params.append(("sort_dir", dirs[i]))
    if not keys and rng.random() < 0.5:
        params.append(("sort_dir", rng.choice(["asc", "desc"])))  # applies to created_at
    if everything:
        params.append(("changes-since", f"{EPOCH.isoformat()}Z"))
    else:
        if rng.random() < 0.35:
            for status in rng.sample(STATUSES, rng.randint(1, 2)):
                params.append(("status", status))
        if rng.random() < 0.35:
            params.append(("name", rng.choice(NAMES)))
        if rng.random() < 0.3:
            since = EPOCH + dt.timedelta(days=rng.randint(1, 330), seconds=rng.randint(0, 86399))
            params.append(("changes-since", f"{since.isoformat()}Z"))
    params.append(("limit", "1000"))
    path = "/v2.1/servers/detail" if rng.random() < 0.25 else "/v2.1/servers"
    return path, params


@pytest.mark.timeout(900)
async def test_big_walk_equals_oracle(
    big_cells: CellSet,
    big_snapshot: Snapshot,
    record_property: pytest.RecordProperty,
) -> None:
    rng = random.Random(SEED)
    print(f"\nbig walk: seed {SEED} (CELLGATE_BIG_WALK_SEED), {len(big_cells.cells)} cells")
    record_property("seed", SEED)
    total_rows, total_s = 0, 0.0
    async with app_client(big_cells.settings()) as client:
        for n in range(COMBINATIONS):
            path, params = _combination(rng, everything=n == 0)
            want = expected_uuids(big_snapshot, query_from_params(params, "admin"))
            started = time.perf_counter()
            got = await walk(client, path, params, "admin:admin")
            elapsed = time.perf_counter() - started
            query = "&".join(f"{k}={v}" for k, v in params)
            print(
                f"  #{n} {path}?{query}: {len(got.uuids)} rows, {len(got.pages)} pages, "
                f"{elapsed:.2f} s ({len(got.uuids) / max(elapsed, 1e-9):,.0f} rows/s)"
            )
            record_property(f"combination_{n}", f"{path}?{query}")
            record_property(f"rows_{n}", len(got.uuids))
            record_property(f"elapsed_s_{n}", round(elapsed, 3))
            assert len(got.uuids) == len(set(got.uuids)), f"#{n}: duplicates across pages"
            if got.uuids != want:
                first = next(
                    (i for i, (a, b) in enumerate(zip(got.uuids, want, strict=False)) if a != b),
                    min(len(got.uuids), len(want)),
                )
                pytest.fail(
                    f"#{n} {path}?{query}: walk differs from the oracle at position {first} "
                    f"(got {len(got.uuids)} rows, want {len(want)})"
                )
            assert all(size == 1000 for size in got.pages[:-1])
            if n == 0:
                assert len(got.uuids) == INSTANCES, "the first walk covers every instance"
            total_rows += len(got.uuids)
            total_s += elapsed
    print(f"  total: {total_rows} rows in {total_s:.1f} s")
