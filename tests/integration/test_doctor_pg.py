"""``cellgate doctor`` and the start-up schema check against real PostgreSQL.

Two small seeded sets of their own: a healthy one (API DB + 2 cells) and a broken one whose
single cell lost ``instances.display_name``. The doctor must report each cell's true count
and collation and the recommended statements; on the broken set it exits 1 naming the
table and column, the app's lifespan raises ``SchemaMismatch``, and ``cellgate serve``
exits 2 with the same words.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from asgi_lifespan import LifespanManager

from cells.schemacheck import SchemaMismatch
from gateway.app import create_app
from tests.support.apps import LIFESPAN_TIMEOUTS, app_client
from tests.support.cellsets import MISSING_COLUMN, CellSet, drop_postgres, seed_postgres
from tests.support.liveserver import free_port
from tests.support.services import PG_BASE

pytestmark = pytest.mark.integration


def _env(api_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLGATE_")}
    return {**env, "PYTHONUNBUFFERED": "1", "CELLGATE_API_DATABASE_URL": api_url, **extra}


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


async def _cellgate(api_url: str, *args: str, **env: str) -> Run:
    """``cellgate ARGS`` as a process, within 120 s."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        *args,
        env=_env(api_url, **env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(120):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


@pytest.fixture(scope="module")
async def healthy(postgres: str) -> AsyncIterator[CellSet]:
    cell_set = await seed_postgres(f"cg_doctor_{os.getpid()}", cells=2, instances=400)
    yield cell_set
    await drop_postgres(cell_set)


async def _fetchval(url: str, query: str) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(query)
    finally:
        await conn.close()


async def test_doctor_reports_each_cell(healthy: CellSet) -> None:
    result = await _cellgate(healthy.api_url, "doctor", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["api"]["reachable"]
    assert report["api"]["schema_ok"]
    assert [c["name"] for c in report["cells"]] == ["cell1", "cell2"]
    for cell, seeded in zip(report["cells"], healthy.cells, strict=True):
        count = await _fetchval(seeded.url, "SELECT count(*) FROM instances WHERE deleted = 0")
        collate = await _fetchval(
            seeded.url,
            "SELECT datcollate FROM pg_database WHERE datname = current_database()",
        )
        assert cell["reachable"] is True
        assert cell["instances"] == count
        assert cell["collation"].startswith(str(collate))
        assert cell["schema_ok"] is True
        assert cell["schema_problems"] == []
        assert cell["latency_ms"] >= 0
        orders = {o["order"]: o for o in cell["orders"]}
        assert orders["created_at desc"]["serving"] == "partial"
        assert orders["created_at desc"]["index"] == "instances_deleted_created_at_idx"
        assert orders["project: created_at desc"]["statement"] == (
            "CREATE INDEX CONCURRENTLY instances_project_id_deleted_created_at_desc_uuid_idx "
            'ON instances (project_id, deleted, created_at DESC, uuid COLLATE "C")'
        )
        assert orders["display_name asc"]["statement"] == (
            "CREATE INDEX CONCURRENTLY instances_deleted_display_name_uuid_idx "
            'ON instances (deleted, display_name COLLATE "C" NULLS FIRST, uuid COLLATE "C")'
        )


async def test_doctor_text_output(healthy: CellSet) -> None:
    result = await _cellgate(healthy.api_url, "doctor")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "cell1" in out
    assert "cell2" in out
    assert "-- cell1, cell2\nCREATE INDEX CONCURRENTLY instances_deleted_display_name" in out
    assert "schema: ok" in out


async def test_doctor_never_wrote_and_sees_a_created_index(healthy: CellSet) -> None:
    url = healthy.cells[0].url
    indexes_before = await _fetchval(url, "SELECT count(*) FROM pg_indexes")
    statement = (
        "CREATE INDEX instances_project_id_deleted_created_at_desc_uuid_idx "
        'ON instances (project_id, deleted, created_at DESC, uuid COLLATE "C")'
    )
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
    report = json.loads((await _cellgate(healthy.api_url, "doctor", "--json")).stdout)
    orders = {o["order"]: o for o in report["cells"][0]["orders"]}
    assert orders["project: created_at desc"]["serving"] == "served"
    assert orders["project: created_at desc"]["statement"] is None
    other = {o["order"]: o for o in report["cells"][1]["orders"]}
    assert other["project: created_at desc"]["serving"] == "missing"
    assert await _fetchval(url, "SELECT count(*) FROM pg_indexes") == indexes_before + 1


async def test_doctor_reports_an_unreachable_cell_without_failing(healthy: CellSet) -> None:
    static = json.dumps(
        [
            {"name": "cell1", "uuid": "u1", "database_url": healthy.cells[0].url},
            {"name": "gone", "uuid": "u2", "database_url": f"{PG_BASE}/cg_doctor_no_such_db"},
        ]
    )
    result = await _cellgate(healthy.api_url, "doctor", "--json", CELLGATE_CELLS=static)
    assert result.returncode == 0, result.stderr
    cells = {c["name"]: c for c in json.loads(result.stdout)["cells"]}
    assert cells["gone"]["reachable"] is False
    assert "does not exist" in cells["gone"]["errors"][0]
    assert cells["cell1"]["reachable"] is True


async def test_doctor_names_the_missing_column(broken: CellSet) -> None:
    result = await _cellgate(broken.api_url, "doctor")
    assert result.returncode == 1, result.stdout
    assert MISSING_COLUMN in result.stdout
    assert "schema: PROBLEMS" in result.stdout


async def test_startup_refuses_a_cell_without_a_column(broken: CellSet) -> None:
    app = create_app(broken.settings())
    with pytest.raises(SchemaMismatch) as caught:
        async with LifespanManager(app, **LIFESPAN_TIMEOUTS):
            pass
    assert caught.value.problems == (MISSING_COLUMN,)


async def test_startup_check_can_be_turned_off(broken: CellSet) -> None:
    async with app_client(broken.settings(check_schema_at_startup=False)) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_serve_exits_2_naming_cell_table_and_column(broken: CellSet) -> None:
    result = await _cellgate(broken.api_url, "serve", "--port", str(free_port()))
    assert result.returncode == 2, result.stderr
    assert MISSING_COLUMN in result.stderr
    assert "CELLGATE_CHECK_SCHEMA_AT_STARTUP=false" in result.stderr


def _nodes(plan: dict[str, object]) -> list[dict[str, object]]:
    out = [plan]
    for child in plan.get("Plans", []):  # type: ignore[attr-defined]  # EXPLAIN's JSON plan is dict[str, object]
        out += _nodes(child)
    return out


@pytest.mark.parametrize(
    ("direction", "position_value", "bounded"),
    [("desc", "host-00", "<="), ("asc", None, "IS NULL")],
)
async def test_doctor_index_bounds_a_page_across_the_nulls(
    healthy: CellSet, direction: str, position_value: str | None, bounded: str
) -> None:
    """With the doctor's index for ``host`` (nullable), the page after a position whose
    remaining rows straddle the NULLs (after a value descending, after a NULL ascending) is
    a bounded range of that index: the position's side is an Index Cond on ``host``, not a
    filter over every row before it (``host <= $v OR host IS NULL`` bounds no range)."""
    from cells.doctor.indexes import ListingOrder, create_statement
    from cells.filters import InstanceFilters
    from cells.order import Direction, SortSpec
    from cells.plan import QueryPlan
    from cells.rawsql import RawSql
    from tests.support.executors import asyncpg_executor

    spec = SortSpec.build([("host", Direction(direction))])
    url = healthy.cells[1].url
    name = f"instances_deleted_host{'_desc' if direction == 'desc' else ''}_uuid_idx"
    statement = create_statement(ListingOrder("host", ("deleted",), spec), "postgresql")
    assert name in statement
    plan = QueryPlan(spec, InstanceFilters(), ("uuid", "host", "created_at"))
    prepared, values, _ = plan.bind(asyncpg_executor(), (position_value, "8" * 8), 10)
    assert isinstance(prepared, RawSql)
    sql, args = prepared.sql, prepared.args(values)
    assert "UNION ALL" in sql
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement.replace(" CONCURRENTLY", ""))
        await conn.execute("ANALYZE instances")
        await conn.execute("SET enable_seqscan = off")
        explained = json.loads(await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args))
        rows = await conn.fetch(sql, *args)
        await conn.execute(f"DROP INDEX {name}")
    finally:
        await conn.close()
    scans = [n for n in _nodes(explained[0]["Plan"]) if n.get("Index Name") == name]
    assert len(scans) == 2, explained  # both branches read the doctor's index
    conds = [str(n.get("Index Cond", "")) for n in scans]
    assert any("host" in c and bounded in c for c in conds), conds
    assert len(rows) == 10


def _unavailable_cells(url: str) -> str | None:
    """``X-Cells-Unavailable`` of an admin listing from a live gateway."""
    request = urllib.request.Request(
        f"{url}/v2.1/servers?all_tenants=1&limit=5", headers={"X-Auth-Token": "admin:admin"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers.get("X-Cells-Unavailable")


async def test_cells_table_names_a_down_cell_and_its_open_breaker(healthy: CellSet) -> None:
    """``cellgate cells``: per cell reachable, latency, instances; with ``--gateway`` the
    breaker states of a running gateway, here after a listing opened the dead cell's."""
    from gateway.settings import StaticCell
    from tests.support.liveserver import start_live_server, stop_live_server

    dead = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    cells = [
        {"name": "cell1", "uuid": "u1", "database_url": healthy.cells[0].url},
        {"name": "cell2", "uuid": "u2", "database_url": healthy.cells[1].url},
        {"name": "cell3", "uuid": "u3", "database_url": dead},
    ]
    live = start_live_server(
        healthy.settings(cells=[StaticCell(**c) for c in cells], breaker_failures=1)
    )
    try:
        listing = await asyncio.to_thread(_unavailable_cells, live.url)
        assert listing == "cell3"
        static = json.dumps(cells)
        result = await _cellgate(
            healthy.api_url, "cells", "--json", "--gateway", live.url, CELLGATE_CELLS=static
        )
        text = await _cellgate(
            healthy.api_url, "cells", "--gateway", live.url, CELLGATE_CELLS=static
        )
    finally:
        stop_live_server(live)
    assert result.returncode == 1, result.stderr  # a cell is unreachable
    rows = {row["name"]: row for row in json.loads(result.stdout)["cells"]}
    assert rows["cell3"]["reachable"] is False
    assert rows["cell3"]["breaker"] == "open"
    for name, seeded in (("cell1", healthy.cells[0]), ("cell2", healthy.cells[1])):
        count = await _fetchval(seeded.url, "SELECT count(*) FROM instances WHERE deleted = 0")
        assert rows[name]["reachable"] is True
        assert rows[name]["instances"] == count
        assert rows[name]["breaker"] == "closed"
        assert rows[name]["latency_ms"] >= 0
    header, *lines = text.stdout.splitlines()
    assert header.split() == ["cell", "uuid", "reachable", "latency_ms", "instances", "breaker"]
    assert lines[2].split() == ["cell3", "u3", "no", "-", "-", "open"]
    print(text.stdout)
