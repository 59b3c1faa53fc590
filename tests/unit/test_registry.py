"""Mapping Nova-style database URLs onto the async drivers."""

from __future__ import annotations

import re

import pytest

from cells.registry import UnsupportedDatabase, async_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://postgres@127.0.0.1:5432/nova",
            "postgresql+asyncpg://postgres@127.0.0.1:5432/nova",
        ),
        (
            "postgresql+psycopg2://u:p%40ss@db/nova_cell1",
            "postgresql+asyncpg://u:p%40ss@db/nova_cell1",
        ),
        ("postgresql+asyncpg://u@db/nova", "postgresql+asyncpg://u@db/nova"),
        ("sqlite:////abs/path/cell1.db", "sqlite+aiosqlite:////abs/path/cell1.db"),
        ("sqlite+pysqlite:///rel/cell1.db", "sqlite+aiosqlite:///rel/cell1.db"),
        ("sqlite://", "sqlite+aiosqlite://"),
        (
            "mysql+pymysql://nova:p%40ss@db:3306/nova_cell1?charset=utf8",
            "mysql+asyncmy://nova:p%40ss@db:3306/nova_cell1?charset=utf8",
        ),
        ("mysql://nova@db/nova", "mysql+asyncmy://nova@db/nova"),
        ("mysql+mysqldb://nova@db/nova", "mysql+asyncmy://nova@db/nova"),
        ("mysql+aiomysql://nova@db/nova", "mysql+asyncmy://nova@db/nova"),
        ("mysql+asyncmy://nova@db/nova", "mysql+asyncmy://nova@db/nova"),
        ("mariadb+pymysql://nova@db/nova", "mysql+asyncmy://nova@db/nova"),
    ],
)
def test_async_url(url: str, expected: str) -> None:
    assert async_url(url) == expected


@pytest.mark.parametrize(
    ("url", "scheme"),
    [("mssql+pyodbc://nova:secret@db/nova", "mssql+pyodbc"), ("oracle://u@h/db", "oracle")],
)
def test_async_url_rejects_other_schemes(url: str, scheme: str) -> None:
    with pytest.raises(UnsupportedDatabase, match=re.escape(repr(scheme))) as info:
        async_url(url)
    assert "secret" not in str(info.value)


def test_async_url_rejects_garbage() -> None:
    with pytest.raises(UnsupportedDatabase, match="cannot parse"):
        async_url("not a url")
