#!/usr/bin/env python3
"""Describe SQLAlchemy tables as plain JSON: the half of ``nova_conformance`` that runs
inside the throw-away venv holding Nova (it needs nothing but SQLAlchemy and, for
``--nova``, Nova's models), and that ``nova_conformance.py`` also imports to describe
cellgate's own tables the same way.

    python nova_dump.py --nova              # {"main": {...}, "api": {...}} on stdout
    python nova_dump.py --nova --ddl main   # PostgreSQL DDL of Nova's cell tables, JSON list

Nova's ``nova.db.types`` imports ``nova.utils`` (and so most of Nova's dependencies) for one
helper that only matters when binding IPv6 values; a stub stands in for it here.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    create_mock_engine,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

Shape = dict[str, Any]

_KINDS: tuple[tuple[type[TypeEngine[Any]], str], ...] = (
    (Enum, "enum"),
    (Boolean, "boolean"),
    (BigInteger, "biginteger"),
    (Integer, "integer"),
    (Float, "float"),
    (DateTime, "datetime"),
    (Text, "text"),
    (String, "string"),
)


def kind_of(sql_type: TypeEngine[Any]) -> tuple[str, int | None]:
    """The generic kind of a column type and its length (``TypeDecorator``: its impl)."""
    while isinstance(sql_type, TypeDecorator):
        sql_type = sql_type.impl_instance
    for cls, name in _KINDS:
        if isinstance(sql_type, cls):
            length = getattr(sql_type, "length", None)
            return name, length if isinstance(length, int) else None
    return type(sql_type).__name__.lower(), None


def describe(metadata: MetaData, only: set[str] | None = None) -> Shape:
    """Tables → columns (kind, length, nullable, primary key) and indexes (including
    unique constraints, keyed by name: columns and uniqueness)."""
    out: Shape = {}
    for table in metadata.sorted_tables:
        if only is not None and table.name not in only:
            continue
        columns = {}
        for column in table.columns:
            kind, length = kind_of(column.type)
            columns[column.name] = {
                "kind": kind,
                "length": length,
                "nullable": bool(column.nullable),
                "primary_key": bool(column.primary_key),
            }
        indexes = {
            str(index.name): {"columns": [c.name for c in index.columns], "unique": index.unique}
            for index in table.indexes
        }
        for constraint in table.constraints:
            if isinstance(constraint, UniqueConstraint) and not isinstance(
                constraint, PrimaryKeyConstraint
            ):
                indexes[str(constraint.name)] = {
                    "columns": [c.name for c in constraint.columns],
                    "unique": True,
                }
        out[table.name] = {"columns": columns, "indexes": indexes}
    return out


def postgresql_ddl(metadata: MetaData) -> list[str]:
    """``CREATE TYPE/TABLE/INDEX`` statements for ``metadata`` on PostgreSQL, in order."""
    statements: list[str] = []

    def capture(sql: Any, *args: Any, **kwargs: Any) -> None:
        statements.append(str(sql.compile(dialect=engine.dialect)).strip())

    engine = create_mock_engine("postgresql://", capture)
    metadata.create_all(engine, checkfirst=False)
    return statements


def _nova_metadata() -> dict[str, MetaData]:
    stub = types.ModuleType("nova.utils")
    stub.get_shortened_ipv6 = lambda value: value  # type: ignore[attr-defined]  # a stub module given the one function Nova's models import
    sys.modules.setdefault("nova.utils", stub)
    from nova.db.api import models as api_models  # type: ignore[import-not-found]  # nova is installed only in the Nova venv this runs in
    from nova.db.main import models as main_models  # type: ignore[import-not-found]  # nova is installed only in the Nova venv this runs in

    return {"main": main_models.BASE.metadata, "api": api_models.BASE.metadata}


def main() -> None:
    """Print Nova's table shapes, or the DDL of one of its databases, as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nova", action="store_true", required=True)
    parser.add_argument("--ddl", choices=("main", "api"))
    args = parser.parse_args()
    metadata = _nova_metadata()
    if args.ddl:
        json.dump(postgresql_ddl(metadata[args.ddl]), sys.stdout)
    else:
        json.dump({name: describe(md) for name, md in metadata.items()}, sys.stdout)


if __name__ == "__main__":
    main()
