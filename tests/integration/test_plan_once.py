"""A first batch without values is planned once per connection on real PostgreSQL
(:mod:`cells.plan`), and every other keyset statement still gets a custom plan."""

from __future__ import annotations

from typing import cast

import pytest

from cells.filters import InstanceFilters
from cells.order import Direction, SortSpec
from cells.plan import QueryPlan
from cells.rawsql import AsyncpgExecutor, Pooled, RawSql
from cells.registry import EngineOptions, open_executor
from tests.support.cellsets import CellSet

pytestmark = pytest.mark.integration

SPEC = SortSpec.build([("created_at", Direction.DESC)])
COLUMNS = ("uuid", "display_name", "project_id", "created_at")


async def _statements(executor: AsyncpgExecutor, conn: object) -> dict[str, tuple[int, int]]:
    """Per keyset statement prepared on ``conn``: its (generic, custom) plan counts."""
    rows = await cast(Pooled, conn).driver.fetch(  # type: ignore[attr-defined]  # asyncpg's connection (asyncpg has no type hints)
        "SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements"
        " WHERE statement LIKE 'SELECT instances.uuid%'"
    )
    return {r["statement"]: (r["generic_plans"], r["custom_plans"]) for r in rows}


async def test_an_admin_first_batch_is_planned_once_and_reads_the_same_rows(
    pg_cells: CellSet,
) -> None:
    executor = open_executor(pg_cells.cells[0].url, EngineOptions())
    assert isinstance(executor, AsyncpgExecutor)
    admin = QueryPlan(SPEC, InstanceFilters(), COLUMNS)
    conn = await executor.connect()
    try:
        sizes, rows = [], []
        for n in (23, 24, 24, 23):  # learned batch sizes a row or two apart: one statement
            prepared, values, size = admin.bind(executor, None, n)
            assert isinstance(prepared, RawSql)
            assert not prepared.names
            assert not values
            sizes.append(size)
            rows.append(await executor.fetch(conn, prepared, values))
        assert sizes == [24, 24, 24, 24]
        plans = await _statements(executor, conn)
        assert len(plans) == 1, plans
        ((generic, custom),) = plans.values()
        assert (generic, custom) == (4, 0)  # planned once, its plan kept

        # The same rows as the statement with binds, which a cell plans at every call.
        bound = executor.prepare(None, lambda: admin.select(None, 24, named=True))
        assert isinstance(bound, RawSql)
        assert "lim" in bound.names
        assert rows[0] == await executor.fetch(conn, bound, {"lim": 24})
        assert len(rows[0]) == 24
        assert all(r == rows[0] for r in rows)

        # A project's first batch keeps a custom plan: Nova's indexes need the project seen.
        project = str(rows[0][0]["project_id"])
        scoped = QueryPlan(SPEC, InstanceFilters(project_id=project), COLUMNS)
        for _ in range(3):
            prepared, values, size = scoped.bind(executor, None, 23)
            assert size == 23
            assert values == {"lim": 23}
            got = await executor.fetch(conn, prepared, values)
            assert got
            assert {r["project_id"] for r in got} == {project}
        assert project not in str(cast(RawSql, prepared).sql)
        plans = await _statements(executor, conn)
        assert [p for s, p in plans.items() if "instances.project_id =" in s] == [(0, 3)]

        # After a position, the statement takes binds again (custom plans).
        prepared, values, size = admin.bind(executor, (rows[0][-1]["created_at"], "x"), 23)
        assert size == 23
        assert set(values) == {"k0", "k1", "lim"}
    finally:
        await executor.release(conn)
        await executor.dispose()
