"""One request's keyset query for the ``instances`` table, built once and compiled once
per NULL pattern of the position.

:meth:`QueryPlan.select` gives the SQLAlchemy statement (any backend); :meth:`QueryPlan.raw`
gives asyncpg SQL text and positional arguments. The position's values travel as named
binds (``k0..kn``) and the page size as ``lim``, so only *which* values are NULL changes the
SQL text: it is compiled on first use for each such pattern and then only re-bound.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import BindParameter, ColumnElement, Select, and_, bindparam, select, union_all
from sqlalchemy.engine import Dialect

from cells.filters import InstanceFilters, where_clauses
from cells.keyset import Param, after_position, order_by, position_binds
from cells.order import Direction, SortSpec, SqlValue
from cells.schema import instances

__all__ = ["Position", "QueryPlan", "Statement"]

Position = tuple[SqlValue, ...] | None
Statement = Callable[[Position, int], Select[tuple[object, ...]]]


class QueryPlan:
    """One request's keyset query, built once and compiled once per NULL pattern.

    :meth:`select` gives the SQLAlchemy statement (any backend); :meth:`raw` gives the
    asyncpg SQL text and arguments, compiled on first use for each pattern of NULLs in the
    position (the only thing that changes the SQL text) and then only re-bound.
    """

    def __init__(
        self, spec: SortSpec, filters: InstanceFilters, columns: tuple[str, ...] | None
    ) -> None:
        c = instances.c
        self.spec = spec
        self.columns = [c[name] for name in columns] if columns else list(c)
        self.conditions = where_clauses(filters)
        self.ordering = order_by(spec, c)
        self._compiled: dict[tuple[bool, ...] | None, tuple[str, list[str], dict[str, object]]]
        self._compiled = {}

    def select(
        self, position: Position, n: int, *, named: bool = False
    ) -> Select[tuple[object, ...]]:
        """The statement for ``n`` rows after ``position`` (named binds for compiling)."""
        c = instances.c
        limit: int | BindParameter[int] = bindparam("lim", value=n) if named else n
        if position is None:
            return self._branch(None, limit)
        binds = position_binds(self.spec, c, position) if named else None
        split = self._split(position, binds)
        if split is None:
            return self._branch(after_position(self.spec, c, position, binds), limit)
        near, far = (self._branch(part, limit).subquery(name) for name, part in split)
        page = union_all(select(near), select(far)).subquery("page")
        return select(*page.c).order_by(*order_by(self.spec, page.c)).limit(limit)

    def _branch(
        self, after: ColumnElement[bool] | None, limit: int | BindParameter[int]
    ) -> Select[tuple[object, ...]]:
        conditions = [*self.conditions, *([after] if after is not None else [])]
        statement = select(*self.columns).where(*conditions).order_by(*self.ordering)
        return statement.limit(limit)

    def _split(
        self, position: tuple[SqlValue, ...], binds: list[Param] | None
    ) -> tuple[tuple[str, ColumnElement[bool]], tuple[str, ColumnElement[bool]]] | None:
        """The rows after ``position`` as two index ranges, when they straddle the NULLs of
        a nullable first key: after a NULL ascending (the rest of the NULLs, then every
        value) or after a value descending (smaller values, then the NULLs).

        As one predicate that is ``k IS NULL OR ...``, which no B-tree range serves: even
        with an index in exactly the listing order PostgreSQL then reads and sorts the
        whole key. As two branches each is a range of that index (``near``: the
        position's side, bounded; ``far``: the other side of the NULLs, from its start)
        with its own ``LIMIT``, and the outer query merges at most ``2 n`` rows.
        """
        first = self.spec.keys[0]
        column = instances.c[first.name]
        if not first.nullable:
            return None
        rest = SortSpec(self.spec.keys[1:])
        if first.direction is Direction.ASC and position[0] is None:
            after_rest = after_position(
                rest, instances.c, position[1:], binds[1:] if binds is not None else None
            )
            return ("near", and_(column.is_(None), after_rest)), ("far", column.is_not(None))
        if first.direction is Direction.DESC and position[0] is not None:
            # Inside the non-NULL range the key behaves as NOT NULL: a plain, sargable bound.
            valued = SortSpec((replace(first, nullable=False), *rest.keys))
            after_valued = after_position(valued, instances.c, position, binds)
            return ("near", and_(column.is_not(None), after_valued)), ("far", column.is_(None))
        return None

    def raw(self, position: Position, n: int, dialect: Dialect) -> tuple[str, list[object]]:
        """asyncpg SQL and positional arguments for ``n`` rows after ``position``."""
        pattern = None if position is None else tuple(v is None for v in position)
        entry = self._compiled.get(pattern)
        if entry is None:
            compiled = self.select(position, n, named=True).compile(
                dialect=dialect, compile_kwargs={"render_postcompile": True}
            )
            entry = (str(compiled), list(compiled.positiontup or ()), dict(compiled.params))
            self._compiled[pattern] = entry
        sql, names, base = entry
        values = dict(base)
        values["lim"] = n
        for i, value in enumerate(position or ()):
            values[f"k{i}"] = value
        return sql, [values[name] for name in names]
