"""When the keyset query splits in two index ranges (cells.plan.QueryPlan._split)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.dialects import postgresql

from cells.filters import InstanceFilters
from cells.order import Direction, SortSpec, SqlValue
from cells.plan import QueryPlan

DIALECT = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]


def _sql(key: str, direction: str, first: SqlValue) -> str:
    spec = SortSpec.build([(key, Direction(direction))])
    plan = QueryPlan(spec, InstanceFilters(), ("uuid", key, "created_at"))
    return plan.raw((first, "u"), 10, DIALECT)[0]


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
    assert "UNION" not in plan.raw(None, 10, DIALECT)[0]


# --------------------------------------------------------------------------------------
# The process-wide compiled-SQL cache
# --------------------------------------------------------------------------------------

_SPEC = SortSpec.build([("display_name", Direction.ASC)])
_COLUMNS = ("uuid", "display_name", "created_at")


def _fresh(project: str | None = "p1", **extra: object) -> QueryPlan:
    return QueryPlan(_SPEC, InstanceFilters(project_id=project, **extra), _COLUMNS)  # type: ignore[arg-type]


def test_a_second_plan_of_the_same_shape_compiles_nothing() -> None:
    import cells.plan as plan_module

    sql, _ = _fresh().raw(("a", "u1"), 10, DIALECT)
    second = _fresh()
    hit = second.raw(("b", "u2"), 20, DIALECT)
    assert "conditions" not in vars(second)  # a hit builds no clauses
    assert hit[0] == sql
    # Only the position and the page size were re-bound: the same as compiled afresh.
    plan_module._sql_cache.clear()
    fresh = _fresh()
    assert fresh.raw(("b", "u2"), 20, DIALECT) == hit
    assert "conditions" in vars(fresh)


def test_what_changes_the_key_changes_the_answer() -> None:
    base_sql, _ = _fresh().raw(("a", "u"), 10, DIALECT)
    # Another filter value: same text, the new value bound.
    other_sql, other_args = _fresh("p2").raw(("a", "u"), 10, DIALECT)
    assert other_sql == base_sql
    assert "p2" in other_args
    assert "p1" not in other_args
    # Another filter: other text.
    assert _fresh(host="h").raw(("a", "u"), 10, DIALECT)[0] != base_sql
    # Another NULL pattern of the position: other text.
    assert _fresh().raw((None, "u"), 10, DIALECT)[0] != base_sql
    # Another IN-list length: other text (the list is rendered in the SQL).
    two = _fresh(vm_states=frozenset({"active", "stopped"})).raw(("a", "u"), 10, DIALECT)
    three = _fresh(vm_states=frozenset({"active", "stopped", "error"})).raw(("a", "u"), 10, DIALECT)
    assert two[0] != three[0]
    assert "error" in three[1]
    assert "error" not in two[1]


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import cells.plan as plan_module

    monkeypatch.setattr(plan_module, "SQL_CACHE_SIZE", 4)
    for n in range(10):
        _fresh(f"project-{n}").raw(None, 10, DIALECT)
    assert len(plan_module._sql_cache) <= 4
    # A long statement (a long uuid list) is not kept at all.
    many = frozenset(f"{n:08d}-0000-0000-0000-000000000000" for n in range(100))
    before = dict(plan_module._sql_cache)
    _, args = _fresh(uuids=many).raw(None, 10, DIALECT)
    assert len(args) > 100
    assert dict(plan_module._sql_cache) == before
