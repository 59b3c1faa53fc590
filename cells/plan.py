"""One request's keyset query for the ``instances`` table, built once and compiled once
per NULL pattern of the position.

:meth:`QueryPlan.select` gives the SQLAlchemy statement (any backend); :meth:`QueryPlan.raw`
gives asyncpg SQL text and positional arguments. The position's values travel as named
binds (``k0..kn``) and the page size as ``lim``, so only *which* values are NULL changes the
SQL text: it is compiled on first use for each such pattern and then only re-bound.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Select, bindparam, select
from sqlalchemy.engine import Dialect

from cells.filters import InstanceFilters, where_clauses
from cells.keyset import after_position, order_by, position_binds
from cells.order import SortSpec, SqlValue
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
        conditions = list(self.conditions)
        if position is not None:
            binds = position_binds(self.spec, c, position) if named else None
            conditions.append(after_position(self.spec, c, position, binds))
        statement = select(*self.columns).where(*conditions).order_by(*self.ordering)
        return statement.limit(bindparam("lim", value=n) if named else n)

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
