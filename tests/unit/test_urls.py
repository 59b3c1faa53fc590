"""Nova's templated ``cell_mappings`` URLs, filled as ``CellMapping.format_db_url`` does."""

from __future__ import annotations

import logging

import pytest

from cells.urls import format_db_url

CONNECTION = "mysql+pymysql://nova:s3cr%40t@DB.example:3307/nova_api?charset=utf8#frag"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "{scheme}://{username}:{password}@{hostname}:{port}/nova_cell1?{query}",
            "mysql+pymysql://nova:s3cr%40t@db.example:3307/nova_cell1?charset=utf8",
        ),
        (
            "{scheme}://{username}@{hostname}/{path}_cell2",
            "mysql+pymysql://nova@db.example/nova_api_cell2",
        ),
        ("mysql://x@y/z#{fragment}", "mysql://x@y/z#frag"),
        ("postgresql://plain@host/cell", "postgresql://plain@host/cell"),
    ],
)
def test_fills_the_template(template: str, expected: str) -> None:
    assert format_db_url(template, CONNECTION) == expected


def test_missing_port_and_password_are_none_as_in_nova() -> None:
    got = format_db_url("{scheme}://{username}:{password}@{hostname}:{port}/c", "mysql://u@h/db")
    assert got == "mysql://u:None@h:None/c"


def test_several_hosts_get_indexed_keys() -> None:
    connection = "mysql://u1:p1@h1:3306,u2@[::1]:3307/nova"
    template = "{scheme}://{username1}:{password1}@{hostname1}:{port1}|{username2}{password2}@{hostname2}{port2}"
    assert format_db_url(template, connection) == "mysql://u1:p1@h1:3306|u2None@::1:3307"


def test_without_connection_the_url_stays_and_a_template_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="cells.urls"):
        assert format_db_url("{scheme}://x/y", None, "cell c1") == "{scheme}://x/y"
        assert format_db_url("mysql://x/y", None) == "mysql://x/y"
    assert [r.getMessage() for r in caplog.records] == [
        "cell c1: database_connection is a template but no [database] connection is set "
        "(CELLGATE_DATABASE_CONNECTION)"
    ]


def test_an_unknown_field_leaves_the_url_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="cells.urls"):
        assert format_db_url("{nope}://x", CONNECTION) == "{nope}://x"
    assert "cannot fill" in caplog.text
    assert "s3cr" not in caplog.text
