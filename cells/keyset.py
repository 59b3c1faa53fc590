"""Keyset ("seek") predicates and ORDER BY clauses for a :class:`~cells.order.SortSpec`.

Both follow the NULL rule of :mod:`cells.order` explicitly, whatever the backend's default:
nullable keys get ``NULLS FIRST`` ascending and ``NULLS LAST`` descending. Non-nullable keys
get no NULLS clause, so a plain ``(created_at DESC, uuid)`` index serves them.

"After position P" is the lexicographic disjunction, one term per key::

    (k1 ≻ p1) OR (k1 ≡ p1 AND k2 ≻ p2) OR ... (k1 ≡ p1 AND ... AND kn ≻ pn)

where ``≡`` is NULL-safe equality and ``≻`` is "strictly later in this key's direction",
both spelled out per NULL case. A redundant, index-friendly bound on the first key
(``k1 <= p1`` for a descending key, say) is ANDed in front so PostgreSQL turns it into an
index condition instead of filtering every row before the position.

String keys are compared through :func:`~cells.sqltypes.code_point` everywhere (ORDER BY,
bound and terms alike): ``COLLATE "C"`` in the query on PostgreSQL, ``CAST(col AS BINARY)``
on MariaDB/MySQL, whatever the column's or database's collation. MySQL has no NULLS
clause; it sorts NULL lowest, as this rule does, and the clause is left out there
(:mod:`cells.sqltypes`). The bound stays sargable for every non-string first key; for a
string first key an index on ``(col COLLATE "C")`` serves it (Nova creates none).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, String, and_, bindparam, false, literal, or_, true
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.types import TypeEngine

from cells.order import Direction, SortKey, SortSpec, SqlValue
from cells.sqltypes import code_point

__all__ = ["Param", "after_position", "order_by", "position_binds", "sort_expression"]

Param = ColumnElement[object]


def sort_expression(key: SortKey, columns: object) -> ColumnElement[object]:
    """The expression ``key`` sorts and compares on: the column, or for a string its
    code-point form (:func:`~cells.sqltypes.code_point`)."""
    column: ColumnElement[object] = columns[key.name]  # type: ignore[index]  # a table's or a subquery's column collection, by name
    if key.kind == "str":
        return code_point(column)  # type: ignore[return-value]  # ColumnElement is invariant: the text form passes as an object column
    return column


def _bind_type(key: SortKey, columns: object) -> TypeEngine[Any]:
    # A string key compares as text: never bind it as the column's ENUM or INET type.
    if key.kind == "str":
        return String()
    return columns[key.name].type  # type: ignore[index,no-any-return]  # the column collection as above, so its .type is Any


def order_by(spec: SortSpec, columns: object) -> list[UnaryExpression[object]]:
    """ORDER BY clauses for ``spec`` over a column collection (``table.c``)."""
    clauses: list[UnaryExpression[object]] = []
    for key in spec.keys:
        column = sort_expression(key, columns)
        if key.direction is Direction.ASC:
            clause = column.asc()
            clauses.append(clause.nulls_first() if key.nullable else clause)
        else:
            clause = column.desc()
            clauses.append(clause.nulls_last() if key.nullable else clause)
    return clauses


def _same(column: ColumnElement[object], value: SqlValue, param: Param) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == param


def _param(type_: TypeEngine[Any], value: SqlValue) -> ColumnElement[object]:
    # Always a bound parameter: SQLAlchemy turns a bare True/False into a constant that only
    # = and != accept, so ``locked > True`` would not even build.
    return literal(value, type_)


def _later(
    key: SortKey, column: ColumnElement[object], value: SqlValue, param: Param
) -> ColumnElement[bool]:
    """Rows strictly after ``value`` in this key alone."""
    if key.direction is Direction.ASC:
        # NULL is lowest: everything non-NULL is after a NULL; nothing NULL is after a value.
        return column.is_not(None) if value is None else column > param
    # Descending, NULLs last: nothing is after a NULL; smaller values and NULLs follow a value.
    if value is None:
        return false()
    if key.nullable:
        return or_(column < param, column.is_(None))
    return column < param


def _bound(
    key: SortKey, column: ColumnElement[object], value: SqlValue, param: Param
) -> ColumnElement[bool]:
    """A necessary (not sufficient) condition on the first key, sargable where possible."""
    if key.direction is Direction.ASC:
        return true() if value is None else column >= param
    if value is None:
        return column.is_(None)
    if key.nullable:
        return or_(column <= param, column.is_(None))
    return column <= param


def position_binds(spec: SortSpec, columns: object, position: Sequence[SqlValue]) -> list[Param]:
    """Named bind parameters ``k0..kn`` carrying ``position``: the SQL text then depends on
    which values are NULL but not on the values, so it can be compiled once and reused."""
    return [
        bindparam(f"k{i}", value=value, type_=_bind_type(key, columns))
        for i, (key, value) in enumerate(zip(spec.keys, position, strict=True))
    ]


def after_position(
    spec: SortSpec,
    columns: object,
    position: Sequence[SqlValue],
    binds: Sequence[Param] | None = None,
) -> ColumnElement[bool]:
    """The predicate selecting rows strictly after ``position`` in ``spec``'s order.

    ``binds`` (from :func:`position_binds`) replace the anonymous literal parameters.
    """
    if len(position) != len(spec.keys):
        raise ValueError("position does not match the sort spec")
    cols = [sort_expression(key, columns) for key in spec.keys]
    params = (
        list(binds)
        if binds is not None
        else [
            _param(_bind_type(key, columns), value)
            for key, value in zip(spec.keys, position, strict=True)
        ]
    )
    terms: list[ColumnElement[bool]] = []
    for i, key in enumerate(spec.keys):
        prefix = [_same(cols[j], position[j], params[j]) for j in range(i)]
        terms.append(and_(*prefix, _later(key, cols[i], position[i], params[i])))
    return and_(_bound(spec.keys[0], cols[0], position[0], params[0]), or_(*terms))
