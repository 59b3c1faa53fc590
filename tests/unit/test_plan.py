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
