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
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, false, literal, or_, true
from sqlalchemy.sql.elements import UnaryExpression

from cells.order import Direction, SortKey, SortSpec, SqlValue

__all__ = ["after_position", "order_by"]


def order_by(spec: SortSpec, columns: object) -> list[UnaryExpression[object]]:
    """ORDER BY clauses for ``spec`` over a column collection (``table.c``)."""
    clauses: list[UnaryExpression[object]] = []
    for key in spec.keys:
        column = columns[key.name]  # type: ignore[index]
        if key.direction is Direction.ASC:
            clause = column.asc()
            clauses.append(clause.nulls_first() if key.nullable else clause)
        else:
            clause = column.desc()
            clauses.append(clause.nulls_last() if key.nullable else clause)
    return clauses


def _same(column: ColumnElement[object], value: SqlValue) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _param(column: ColumnElement[object], value: SqlValue) -> ColumnElement[object]:
    # Always a bound parameter: SQLAlchemy turns a bare True/False into a constant that only
    # = and != accept, so ``locked > True`` would not even build.
    return literal(value, column.type)


def _later(key: SortKey, column: ColumnElement[object], value: SqlValue) -> ColumnElement[bool]:
    """Rows strictly after ``value`` in this key alone."""
    if key.direction is Direction.ASC:
        # NULL is lowest: everything non-NULL is after a NULL; nothing NULL is after a value.
        return column.is_not(None) if value is None else column > _param(column, value)
    # Descending, NULLs last: nothing is after a NULL; smaller values and NULLs follow a value.
    if value is None:
        return false()
    if key.nullable:
        return or_(column < _param(column, value), column.is_(None))
    return column < _param(column, value)


def _bound(key: SortKey, column: ColumnElement[object], value: SqlValue) -> ColumnElement[bool]:
    """A necessary (not sufficient) condition on the first key, sargable where possible."""
    if key.direction is Direction.ASC:
        return true() if value is None else column >= _param(column, value)
    if value is None:
        return column.is_(None)
    if key.nullable:
        return or_(column <= _param(column, value), column.is_(None))
    return column <= _param(column, value)


def after_position(
    spec: SortSpec, columns: object, position: Sequence[SqlValue]
) -> ColumnElement[bool]:
    """The predicate selecting rows strictly after ``position`` in ``spec``'s order."""
    if len(position) != len(spec.keys):
        raise ValueError("position does not match the sort spec")
    cols: list[ColumnElement[object]] = [columns[key.name] for key in spec.keys]  # type: ignore[index]
    terms: list[ColumnElement[bool]] = []
    for i, key in enumerate(spec.keys):
        prefix = [_same(cols[j], position[j]) for j in range(i)]
        terms.append(and_(*prefix, _later(key, cols[i], position[i])))
    return and_(_bound(spec.keys[0], cols[0], position[0]), or_(*terms))
