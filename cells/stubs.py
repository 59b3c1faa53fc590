"""Down-cell stubs (microversion ≥ 2.69) from the API database's ``instance_mappings``.

Nova prepends unsorted stubs to unfiltered, unpaged first pages only. Here the mappings of
a down cell become one more merge input, ordered by ``(created_at, uuid)`` with the same
keyset predicate as a cell, so stubs page like every other row. That needs an order the
mappings can honour (only ``created_at`` and ``uuid``) and no filter beyond the project
scope; otherwise the caller falls back to Nova's behaviour (no stubs).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ColumnElement, DateTime, Select, cast, false, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement

from cells.filters import InstanceFilters
from cells.keyset import after_position, order_by
from cells.order import SortSpec, SqlValue
from cells.schema import instance_mappings
from cells.sqltypes import exactly

__all__ = ["StubRow", "mapping_columns", "stub_statement", "stubs_possible"]

_HONOURABLE_KEYS = frozenset({"created_at", "uuid"})
_EPOCH = dt.datetime(1970, 1, 1)


class _Epoch(FunctionElement[dt.datetime]):
    """1970-01-01 00:00:00 as a ``DATETIME``, the stand-in for a NULL ``created_at``."""

    type = DateTime()
    inherit_cache = True


@compiles(_Epoch)
def _epoch(element: _Epoch, compiler: SQLCompiler, **kw: Any) -> str:
    # A bound datetime: SQLite stores DATETIME as text (a CAST would make it the number
    # 1970), PostgreSQL infers the type from the COALESCE.
    return compiler.process(literal(_EPOCH, DateTime()), **kw)


@compiles(_Epoch, "mysql")
def _epoch_mysql(element: _Epoch, compiler: SQLCompiler, **kw: Any) -> str:
    # The MySQL drivers send a datetime as a string literal, and COALESCE(DATETIME, string)
    # is a string there: the stubs' created_at would come back as text.
    return compiler.process(cast(literal(_EPOCH, DateTime()), DateTime()), **kw)


class StubRow(dict[str, SqlValue]):
    """A down cell's instance as its mapping knows it (``uuid``, ``project_id``,
    ``created_at``): merged and paged like any row, shown as a stub. Its type, not a
    column, says so: no instance column can be mistaken for the mark."""

    __slots__ = ()


def stubs_possible(spec: SortSpec, filters: InstanceFilters) -> bool:
    """Whether the mappings can reproduce this order and filter (scope only)."""
    if not set(spec.names) <= _HONOURABLE_KEYS:
        return False
    return filters == InstanceFilters(project_id=filters.project_id)


def mapping_columns() -> dict[str, ColumnElement[object]]:
    """The mapping columns standing in for the instance sort keys."""
    im = instance_mappings.c
    return {
        "uuid": im.instance_uuid,
        # NULL would break the NOT NULL ordering of created_at; Nova always sets it.
        "created_at": func.coalesce(im.created_at, _Epoch()),
    }


def stub_statement(
    spec: SortSpec,
    cell_id: int,
    project_id: str | None,
    position: tuple[SqlValue, ...] | None,
    n: int,
) -> Select[tuple[object, ...]]:
    """Stub rows of the instances of ``cell_id`` after ``position``."""
    im = instance_mappings.c
    cols = mapping_columns()
    conditions: list[ColumnElement[bool]] = [
        im.cell_id == cell_id,
        or_(im.queued_for_delete == false(), im.queued_for_delete.is_(None)),
    ]
    if project_id is not None:
        conditions.append(exactly(im.project_id, project_id))
    if position is not None:
        conditions.append(after_position(spec, cols, position))
    return (
        select(
            cols["uuid"].label("uuid"),
            im.project_id.label("project_id"),
            cols["created_at"].label("created_at"),
        )
        .where(*conditions)
        .order_by(*order_by(spec, cols))
        .limit(n)
    )
