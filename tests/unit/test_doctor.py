"""The doctor's pure parts: the index-serving rule, statement rendering, the schema compare."""

from __future__ import annotations

import pytest
from sqlalchemy import String

from cells.doctor.indexes import (
    Coverage,
    IndexColumn,
    ListingOrder,
    Serving,
    TableIndex,
    coverage,
    create_statement,
    listing_orders,
    needed_columns,
)
from cells.schema import cell_metadata, instances
from cells.schemacheck import SchemaMismatch, compare, expected_columns

ORDERS = {order.label: order for order in listing_orders()}


def _nova_indexes() -> list[TableIndex]:
    """Nova's own ``instances`` indexes as PostgreSQL reports them (ascending, NULLS LAST,
    strings in the database's default collation)."""
    out = []
    for index in instances.indexes:
        cols = tuple(
            IndexColumn(c.name, collation="default" if isinstance(c.type, String) else None)
            for c in index.columns
        )
        out.append(TableIndex(str(index.name), cols))
    return out


def _index_for(order: ListingOrder, name: str = "recommended") -> TableIndex:
    """What the recommended statement creates, as PostgreSQL would report it."""
    lead = tuple(IndexColumn(c) for c in order.equality)
    return TableIndex(name, lead + needed_columns(order, "postgresql"))


def test_checked_orders() -> None:
    assert list(ORDERS) == [
        "created_at desc",
        "project: created_at desc",
        "display_name asc",
        "display_name desc",
        "hostname asc",
        "hostname desc",
        "host asc",
        "host desc",
    ]


def test_nova_indexes_serve_the_default_order_only_by_created_at() -> None:
    # (deleted, created_at) read backwards: created_at DESC, uuid ties sorted by PostgreSQL.
    assert coverage(ORDERS["created_at desc"], _nova_indexes(), "postgresql") == Coverage(
        Serving.PARTIAL, "instances_deleted_created_at_idx", 1
    )


@pytest.mark.parametrize("label", [label for label in ORDERS if label != "created_at desc"])
def test_nova_indexes_serve_no_other_order(label: str) -> None:
    assert coverage(ORDERS[label], _nova_indexes(), "postgresql").serving is Serving.MISSING


@pytest.mark.parametrize("label", list(ORDERS))
def test_the_recommended_index_serves_its_order(label: str) -> None:
    order = ORDERS[label]
    assert coverage(order, [_index_for(order)], "postgresql") == Coverage(
        Serving.SERVED, "recommended", len(order.spec.keys)
    )


def test_a_fully_reversed_index_serves_by_a_backward_scan() -> None:
    order = ORDERS["project: created_at desc"]
    backwards = TableIndex(
        "backwards",
        (
            IndexColumn("deleted"),  # equality columns in any order
            IndexColumn("project_id"),
            IndexColumn("created_at"),  # ASC NULLS LAST: DESC NULLS FIRST reversed
            IndexColumn("uuid", descending=True, nulls_first=True, collation="C"),
        ),
    )
    assert coverage(order, [backwards], "postgresql").serving is Serving.SERVED


def test_mixed_directions_serve_only_the_prefix() -> None:
    asc = ORDERS["display_name asc"]
    # display_name desc wants (display_name DESC NULLS LAST, uuid ASC): the asc index read
    # backwards gives display_name right and uuid DESC.
    assert coverage(ORDERS["display_name desc"], [_index_for(asc)], "postgresql") == Coverage(
        Serving.PARTIAL, "recommended", 1
    )


def test_wrong_nulls_placement_does_not_serve() -> None:
    plain = TableIndex(
        "plain",
        (
            IndexColumn("deleted"),
            IndexColumn("display_name", collation="C"),  # NULLS LAST: the query says FIRST
            IndexColumn("uuid", collation="C"),
        ),
    )
    assert coverage(ORDERS["display_name asc"], [plain], "postgresql").serving is Serving.MISSING


def test_the_database_collation_does_not_serve_code_point_order() -> None:
    index = TableIndex(
        "by_name",
        (
            IndexColumn("deleted"),
            IndexColumn("display_name", nulls_first=True, collation="default"),
            IndexColumn("uuid", collation="default"),
        ),
    )
    result = coverage(ORDERS["display_name asc"], [index], "postgresql")
    assert result.serving is Serving.MISSING
    assert result.note == "by_name has display_name in collation 'default', not \"C\""


def test_unusable_indexes_are_ignored() -> None:
    order = ORDERS["host asc"]
    index = _index_for(order)
    invalid = TableIndex(index.name, index.columns, usable=False)
    assert coverage(order, [invalid], "postgresql").serving is Serving.MISSING


def test_the_project_order_needs_project_id_leading() -> None:
    order = ORDERS["project: created_at desc"]
    everyone = _index_for(ORDERS["created_at desc"])
    assert coverage(order, [everyone], "postgresql").serving is Serving.MISSING


def test_postgresql_statements() -> None:
    assert create_statement(ORDERS["project: created_at desc"], "postgresql") == (
        "CREATE INDEX CONCURRENTLY instances_project_id_deleted_created_at_desc_uuid_idx "
        'ON instances (project_id, deleted, created_at DESC, uuid COLLATE "C")'
    )
    assert create_statement(ORDERS["display_name asc"], "postgresql") == (
        "CREATE INDEX CONCURRENTLY instances_deleted_display_name_uuid_idx "
        'ON instances (deleted, display_name COLLATE "C" NULLS FIRST, uuid COLLATE "C")'
    )
    assert create_statement(ORDERS["display_name desc"], "postgresql") == (
        "CREATE INDEX CONCURRENTLY instances_deleted_display_name_desc_uuid_idx "
        'ON instances (deleted, display_name COLLATE "C" DESC NULLS LAST, uuid COLLATE "C")'
    )


def test_sqlite_statements_and_rule() -> None:
    order = ORDERS["display_name desc"]
    assert create_statement(order, "sqlite") == (
        "CREATE INDEX instances_deleted_display_name_desc_uuid_idx "
        "ON instances (deleted, display_name DESC, uuid)"
    )
    # SQLite reports BINARY and puts NULLs first ascending: a plain index serves asc.
    sqlite_index = TableIndex(
        "s",
        (
            IndexColumn("deleted", nulls_first=True, collation="BINARY"),
            IndexColumn("display_name", nulls_first=True, collation="BINARY"),
            IndexColumn("uuid", nulls_first=True, collation="BINARY"),
        ),
    )
    served = coverage(ORDERS["display_name asc"], [sqlite_index], "sqlite")
    assert served.serving is Serving.SERVED


def test_index_names_fit_postgresql() -> None:
    assert all(len(create_statement(o, "postgresql").split()[3]) <= 63 for o in ORDERS.values())


@pytest.mark.parametrize("key", ["access_ip_v4", "locked_by", "launched_at", "nope"])
def test_only_plain_string_keys_are_checked(key: str) -> None:
    with pytest.raises(ValueError, match=key):
        listing_orders([key])


def test_schema_compare_names_owner_table_and_column() -> None:
    expected = {"instances": ("uuid", "display_name"), "tags": ("resource_id",)}
    actual = {"instances": {"uuid"}}
    assert compare("cell cell2", expected, actual) == [
        "cell cell2: table instances lacks column display_name",
        "cell cell2: table tags is missing",
    ]
    assert compare("cell cell2", expected, {"instances": {"uuid", "display_name"}, "tags": {
        "resource_id"}}) == []  # fmt: skip


def test_expected_columns_skip_what_older_novas_lack() -> None:
    columns = expected_columns(cell_metadata)
    assert "compute_id" not in columns["instances"]
    assert "display_name" in columns["instances"]
    assert set(columns) == {t.name for t in cell_metadata.sorted_tables}


def test_mismatch_message_lists_every_problem() -> None:
    error = SchemaMismatch(["cell a: table t lacks column c", "cell b: table u is missing"])
    assert str(error) == "cell a: table t lacks column c; cell b: table u is missing"
    assert error.problems == ("cell a: table t lacks column c", "cell b: table u is missing")
