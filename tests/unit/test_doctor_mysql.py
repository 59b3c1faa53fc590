"""The doctor on MariaDB/MySQL cells, without a server: which orders Nova's indexes serve, the
online ``ALTER TABLE`` advice (plain column indexes, no COLLATE, no NULLS), the rule under a
binary listing collation, and the text and JSON the doctor prints."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import String

import cells.doctor.indexes
from cells.doctor import DatabaseReport, Diagnosis, OrderReport
from cells.doctor.indexes import (
    Coverage,
    IndexColumn,
    ListingOrder,
    Serving,
    TableIndex,
    coverage,
    create_statement,
    listing_orders,
    mysql_note,
    needed_columns,
)
from cells.schema import instances
from gateway.doctor import render_json, render_text

ORDERS = {order.label: order for order in listing_orders()}
GENERAL_CI = "utf8mb3_general_ci"


def _column(name: str, descending: bool = False) -> IndexColumn:
    """A key part as information_schema reports it: NULL smallest, the column's collation."""
    string = isinstance(instances.c[name].type, String)
    return IndexColumn(name, descending, not descending, GENERAL_CI if string else None)


def _nova_indexes() -> list[TableIndex]:
    """Nova's ``instances`` indexes as MariaDB reports them (ascending, utf8mb3_general_ci)."""
    return [
        TableIndex(str(index.name), tuple(_column(c.name) for c in index.columns))
        for index in instances.indexes
    ]


def _index_for(order: ListingOrder, name: str = "recommended") -> TableIndex:
    """What the recommended ALTER TABLE creates, as MariaDB would report it."""
    lead = tuple(_column(c) for c in order.equality)
    rest = tuple(_column(c.name or "", c.descending) for c in needed_columns(order, "mysql"))
    return TableIndex(name, lead + rest)


def test_nova_indexes_serve_the_default_order_by_created_at_only() -> None:
    # (deleted, created_at) read backwards gives created_at DESC; the uuid ties are sorted.
    assert coverage(ORDERS["created_at desc"], _nova_indexes(), "mysql") == Coverage(
        Serving.PARTIAL, "instances_deleted_created_at_idx", 1
    )


@pytest.mark.parametrize("label", [label for label in ORDERS if label != "created_at desc"])
def test_nova_indexes_serve_no_other_order(label: str) -> None:
    assert coverage(ORDERS[label], _nova_indexes(), "mysql").serving is Serving.MISSING


@pytest.fixture
def collation_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    """A listing that sorts strings in each column's collation (not the gateway's: it
    compares ``CAST(col AS BINARY)``), for the doctor's logic under that rule."""
    monkeypatch.setattr(cells.doctor.indexes, "MYSQL_STRING_COLLATION", None)


@pytest.mark.usefixtures("collation_listing")
@pytest.mark.parametrize("label", list(ORDERS))
def test_the_recommended_index_serves_its_order(label: str) -> None:
    order = ORDERS[label]
    assert coverage(order, [_index_for(order)], "mysql") == Coverage(
        Serving.SERVED, "recommended", len(order.spec.keys)
    )


def test_mysql_statements_are_online_plain_column_indexes() -> None:
    assert create_statement(ORDERS["created_at desc"], "mysql") == (
        "ALTER TABLE instances ADD INDEX instances_deleted_created_at_desc_uuid_idx "
        "(deleted, created_at DESC, uuid), ALGORITHM=INPLACE, LOCK=NONE"
    )
    assert create_statement(ORDERS["project: created_at desc"], "mysql") == (
        "ALTER TABLE instances ADD INDEX instances_project_id_deleted_created_at_desc_uuid_idx "
        "(project_id, deleted, created_at DESC, uuid), ALGORITHM=INPLACE, LOCK=NONE"
    )
    for order in ORDERS.values():
        statement = create_statement(order, "mysql")
        assert "COLLATE" not in statement
        assert "NULLS" not in statement
        assert statement.endswith(", ALGORITHM=INPLACE, LOCK=NONE")


def test_nulls_are_smallest_on_mysql() -> None:
    [name, uuid] = needed_columns(ORDERS["display_name asc"], "mysql")
    assert (name.name, name.descending, name.nulls_first) == ("display_name", False, True)
    [name, uuid] = needed_columns(ORDERS["display_name desc"], "mysql")
    assert (name.descending, name.nulls_first) == (True, False)
    # The gateway's listing compares strings as CAST(col AS BINARY).
    assert (uuid.name, uuid.descending, uuid.collation) == ("uuid", False, "binary")


def test_a_prefix_key_part_or_a_hash_index_serves_nothing() -> None:
    order = ORDERS["display_name asc"]
    full = _index_for(order)
    prefix = TableIndex("prefix", (full.columns[0], IndexColumn(None), *full.columns[2:]))
    hashed = TableIndex("hashed", full.columns, usable=False)
    assert coverage(order, [prefix, hashed], "mysql").serving is Serving.MISSING


def test_under_a_binary_listing_collation_plain_indexes_stop_at_strings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert cells.doctor.indexes.MYSQL_STRING_COLLATION == "binary"  # the gateway's listing
    monkeypatch.setattr(cells.doctor.indexes, "MYSQL_STRING_COLLATION", "utf8mb3_bin")
    default = ORDERS["created_at desc"]
    # created_at is served, uuid (utf8mb3_general_ci) cannot be: the server sorts the ties.
    assert coverage(default, [_index_for(default)], "mysql") == Coverage(
        Serving.PARTIAL, "recommended", 1
    )
    by_name = ORDERS["display_name asc"]
    result = coverage(by_name, [_index_for(by_name)], "mysql")
    assert result.serving is Serving.MISSING
    assert result.note == (
        "recommended has display_name in collation 'utf8mb3_general_ci', not \"utf8mb3_bin\""
    )
    assert "sorts strings by utf8mb3_bin" in mysql_note()
    assert "filesort" in mysql_note()


@pytest.mark.usefixtures("collation_listing")
def test_the_note_without_a_listing_collation() -> None:
    note = mysql_note()
    assert "ALGORITHM=INPLACE, LOCK=NONE" in note
    assert "utf8mb3_general_ci" in note
    assert "serve every order above" in note


def _mariadb_diagnosis() -> Diagnosis:
    orders = []
    for label in ("created_at desc", "display_name asc"):
        order = ORDERS[label]
        cov = coverage(order, _nova_indexes(), "mysql")
        orders.append(OrderReport(label, cov, create_statement(order, "mysql")))
    cell = DatabaseReport(
        "cell1",
        "u1",
        reachable=True,
        latency_ms=0.4,
        backend="mysql",
        version="10.11.19-MariaDB-0+deb12u1",
        instances=42,
        collation=GENERAL_CI,
        orders=tuple(orders),
    )
    api = DatabaseReport("API database", reachable=True, backend="mysql", version="10.11.19")
    return Diagnosis(api, (cell,))


def test_text_names_version_collation_and_the_online_statements() -> None:
    text = render_text(_mariadb_diagnosis())
    lines = text.splitlines()
    assert lines[0].split() == [
        "database", "reachable", "latency_ms", "version", "instances", "collation", "schema",
    ]  # fmt: skip
    assert lines[2].split() == [
        "cell1", "yes", "0.4", "10.11.19-MariaDB-0+deb12u1", "42", GENERAL_CI, "ok",
    ]  # fmt: skip
    assert "created_at desc   partial" in text
    assert "display_name asc  missing" in text
    assert "the database sorts the ties" in text
    assert f"  {mysql_note()}" in lines
    assert (
        "ALTER TABLE instances ADD INDEX instances_deleted_display_name_uuid_idx "
        "(deleted, display_name, uuid), ALGORITHM=INPLACE, LOCK=NONE;"
    ) in lines
    assert "COLLATE" not in text
    assert text.endswith("schema: ok")


def test_json_carries_backend_version_and_the_note() -> None:
    document = json.loads(render_json(_mariadb_diagnosis()))
    [cell] = document["cells"]
    assert (cell["backend"], cell["version"]) == ("mysql", "10.11.19-MariaDB-0+deb12u1")
    assert cell["orders"][0]["statement"].startswith("ALTER TABLE instances ADD INDEX")
    assert document["notes"] == [mysql_note()]


def test_no_mysql_note_for_postgresql_cells() -> None:
    d = _mariadb_diagnosis()
    pg = Diagnosis(d.api, tuple(DatabaseReport(c.name, backend="postgresql") for c in d.cells))
    assert json.loads(render_json(pg))["notes"] == []
