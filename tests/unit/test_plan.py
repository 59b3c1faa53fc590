"""When the keyset query splits in two index ranges (cells.plan.QueryPlan._split)."""

from __future__ import annotations

import datetime as dt

import pytest

from cells.filters import InstanceFilters
from cells.order import Direction, SortSpec, SqlValue
from cells.plan import Position, QueryPlan
from cells.rawsql import AsyncpgExecutor, CompileCache, RawSql
from tests.support.executors import asyncpg_executor

EXECUTOR = asyncpg_executor()


def _raw(
    plan: QueryPlan, position: Position, n: int, executor: AsyncpgExecutor = EXECUTOR
) -> tuple[str, list[object]]:
    """The SQL and arguments ``executor`` runs for ``plan``."""
    prepared, values, _ = plan.bind(executor, position, n)
    assert isinstance(prepared, RawSql)
    return prepared.sql, prepared.args(values)


def _sql(key: str, direction: str, first: SqlValue) -> str:
    spec = SortSpec.build([(key, Direction(direction))])
    plan = QueryPlan(spec, InstanceFilters(), ("uuid", key, "created_at"))
    return _raw(plan, (first, "u"), 10)[0]


@pytest.mark.parametrize(
    ("key", "direction", "first", "split"),
    [
        ("host", "desc", "h", True),  # smaller values, then the NULLs
        ("host", "asc", None, True),  # the rest of the NULLs, then every value
        ("host", "asc", "h", False),  # larger values only
        ("host", "desc", None, False),  # the rest of the NULLs only
        ("created_at", "desc", dt.datetime(2020, 1, 1), False),  # sorts as NOT NULL: one range
        ("launched_at", "asc", None, True),  # any nullable kind
    ],
)
def test_split_only_when_the_rest_straddles_the_nulls(
    key: str, direction: str, first: SqlValue, split: bool
) -> None:
    sql = _sql(key, direction, first)
    assert ("UNION ALL" in sql) is split
    assert "OFFSET" not in sql


def test_near_branch_bound_is_a_plain_range() -> None:
    near = _sql("host", "desc", "h").split("UNION ALL")[0]
    assert 'instances.host COLLATE "C" <= $' in near
    assert "IS NULL OR" not in near
    assert "instances.host IS NOT NULL" in near


def test_first_page_is_one_query() -> None:
    spec = SortSpec.build([("host", Direction.DESC)])
    plan = QueryPlan(spec, InstanceFilters(), ("uuid", "host"))
    assert "UNION" not in _raw(plan, None, 10)[0]


# --------------------------------------------------------------------------------------
# The executor's compiled-SQL cache
# --------------------------------------------------------------------------------------

_SPEC = SortSpec.build([("display_name", Direction.ASC)])
_COLUMNS = ("uuid", "display_name", "created_at")


def _fresh(project: str | None = "p1", **extra: object) -> QueryPlan:
    return QueryPlan(_SPEC, InstanceFilters(project_id=project, **extra), _COLUMNS)  # type: ignore[arg-type]  # **extra are InstanceFilters' own fields, by name


def test_a_second_plan_of_the_same_shape_compiles_nothing() -> None:
    executor = asyncpg_executor()
    sql, _ = _raw(_fresh(), ("a", "u1"), 10, executor)
    second = _fresh()
    hit = _raw(second, ("b", "u2"), 20, executor)
    assert "conditions" not in vars(second)  # a hit builds no clauses
    assert hit[0] == sql
    # Only the position and the page size were re-bound: the same as compiled afresh.
    executor.cache.clear()
    fresh = _fresh()
    assert _raw(fresh, ("b", "u2"), 20, executor) == hit
    assert "conditions" in vars(fresh)


def test_each_executor_has_its_own_cache() -> None:
    one, other = asyncpg_executor(), asyncpg_executor()
    _raw(_fresh(), ("a", "u1"), 10, one)
    assert len(one.cache) == 1
    assert len(other.cache) == 0
    fresh = _fresh()
    _raw(fresh, ("a", "u1"), 10, other)
    assert "conditions" in vars(fresh)  # compiled again: nothing shared between cells


def test_what_changes_the_key_changes_the_answer() -> None:
    base_sql, _ = _raw(_fresh(), ("a", "u"), 10)
    # Another filter value: same text, the new value bound.
    other_sql, other_args = _raw(_fresh("p2"), ("a", "u"), 10)
    assert other_sql == base_sql
    assert "p2" in other_args
    assert "p1" not in other_args
    # Another filter: other text.
    assert _raw(_fresh(host="h"), ("a", "u"), 10)[0] != base_sql
    # Another NULL pattern of the position: other text.
    assert _raw(_fresh(), (None, "u"), 10)[0] != base_sql
    # Another IN-list length: other text (the list is rendered in the SQL).
    two = _raw(_fresh(vm_states=frozenset({"active", "stopped"})), ("a", "u"), 10)
    three = _raw(_fresh(vm_states=frozenset({"active", "stopped", "error"})), ("a", "u"), 10)
    assert two[0] != three[0]
    assert "error" in three[1]
    assert "error" not in two[1]


def test_the_cache_is_bounded() -> None:
    executor = asyncpg_executor()
    executor.cache = CompileCache(size=4)
    for n in range(10):
        _raw(_fresh(f"project-{n}"), None, 10, executor)
    assert len(executor.cache) <= 4
    # A long statement (a long uuid list) is not kept at all.
    many = frozenset(f"{n:08d}-0000-0000-0000-000000000000" for n in range(100))
    before = dict(executor.cache._entries)
    _, args = _raw(_fresh(uuids=many), None, 10, executor)
    assert len(args) > 100
    assert dict(executor.cache._entries) == before


def _mysql(spec: SortSpec, position: Position, *, bounded: bool) -> str:
    from sqlalchemy.dialects import mysql

    plan = QueryPlan(spec, InstanceFilters(), ("uuid", "created_at"))
    statement = plan.select(position, 10, bounded=bounded)
    return str(statement.compile(dialect=mysql.dialect(), compile_kwargs={"literal_binds": True}))


def test_mysql_bound_on_the_first_key_only_where_its_index_serves() -> None:
    """MySQL sorts every row a range gives: the first key (not a string, not nullable,
    followed by others) is bounded by its value 11 rows on, read by a subquery."""
    default = SortSpec.build([("created_at", Direction.DESC)])
    sql = _mysql(default, None, bounded=True)
    assert "instances.created_at >= (SELECT instances.created_at" in sql
    assert "ORDER BY instances.created_at DESC \n LIMIT 10, 1) OR (SELECT" in sql  # offset 10
    assert sql.endswith("LIMIT 10")
    assert "LIMIT 10, 1" not in _mysql(default, None, bounded=False)
    after = _mysql(default, (dt.datetime(2020, 1, 1), "u"), bounded=True)
    assert "LIMIT 10, 1" not in after  # first pages only (see QueryPlan._first_key_bound)
    ascending = _mysql(SortSpec.build([("created_at", Direction.ASC)]), None, bounded=True)
    assert "instances.created_at <= (SELECT" in ascending
    assert "instances.created_at IS NULL OR" in ascending
    for unbounded in ([("display_name", Direction.ASC)], [("host", Direction.DESC)]):
        assert "LIMIT 10, 1" not in _mysql(SortSpec.build(unbounded), None, bounded=True)


def test_plan_once_sizes_are_exact_up_to_16_then_at_most_an_eighth_more() -> None:
    from cells.plan import plan_once_size

    sizes = [plan_once_size(n) for n in range(1, 2049)]
    assert sizes[:16] == list(range(1, 17))
    for n, size in enumerate(sizes, 1):
        assert n <= size <= n + n / 8, (n, size)
    assert len(set(sizes[1024:2048])) == 8  # 1025..2048: 8 statements per doubling


@pytest.mark.parametrize(
    ("filters", "once"),
    [
        (InstanceFilters(), True),
        (InstanceFilters(locked=True, include_soft_deleted=True), True),  # flags only
        (InstanceFilters(deleted=None), True),
        (InstanceFilters(project_id="p"), False),  # a request's value: binds
        (InstanceFilters(vm_states=frozenset({"active"})), False),
        (InstanceFilters(regex=(("display_name", "x"),)), False),
    ],
)
def test_only_a_first_batch_without_request_values_is_written_out(
    filters: InstanceFilters, once: bool
) -> None:
    spec = SortSpec.build([("created_at", Direction.DESC)])
    plan = QueryPlan(spec, filters, ("uuid", "created_at"))
    prepared, values, size = plan.bind(EXECUTOR, None, 23)
    assert isinstance(prepared, RawSql)
    assert (not values and not prepared.names and size == 24) is once
    assert (values == {"lim": 23} and size == 23) is not once
    # After a position, never: the position is a request's value.
    _, after, size = plan.bind(EXECUTOR, (dt.datetime(2020, 1, 1), "u"), 23)
    assert "lim" in after
    assert size == 23
