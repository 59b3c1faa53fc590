"""One request's keyset query for the ``instances`` table, prepared once per query shape.

:meth:`QueryPlan.select` gives the SQLAlchemy statement; :meth:`QueryPlan.bind` gives it
prepared by a cell's executor (:mod:`cells.executor`) with the values of its binds. The
position's values travel as named binds (``k0..kn``) and the page size as ``lim``, so only
*which* values are NULL changes the SQL text for one order, filter set and column list.
The executor keeps the prepared form under exactly those (filter *values* included, so a
hit re-binds only the position and the page size): the next page of a walk, the next first
page of the same scope and the other cells of one request skip building and compiling the
statement, which was about a tenth of a summary page's CPU (``scripts/scalebench``,
py-spy).

**A first batch without values is planned once per connection.** The cells run with
``plan_cache_mode = force_custom_plan`` (Nova's indexes need the project and the position
seen: ``cells.registry``), so every keyset statement is planned again at every call. For
an admin's first batch on one of 8 cells of 1,000,000 instances that was 41 µs of planning
against 28 µs of execution (``pg_stat_statements`` with ``track_planning``), 196–230 µs per
call as the client saw it, 129–130 µs with a generic plan. A statement with no parameter
at all is planned once and its plan kept, whatever the mode (PostgreSQL's plan cache has
nothing to re-plan for). So where nothing of the statement comes from the request but its
size — no position, and no filter value but the visibility flags (an admin's default
listing: ``all_tenants`` with no filter) — an executor that offers ``prepare_once``
(asyncpg's) gets it with the values written into the SQL, its size rounded up to one of a
few values (:func:`plan_once_size`) so that first batches sized from learned shares, which
move by a row or two as instances come and go, do not each make a new statement. The plan
still sees the real size and the real filters, as a custom plan does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields, replace
from functools import cached_property
from typing import Any

from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    Select,
    UnaryExpression,
    and_,
    bindparam,
    or_,
    select,
    union_all,
)

from cells.executor import Executor
from cells.filters import InstanceFilters, where_clauses
from cells.keyset import Param, after_position, order_by, position_binds
from cells.order import Direction, SortSpec, SqlValue
from cells.schema import instances

__all__ = ["Position", "QueryPlan", "Statement", "plan_once_size"]

Position = tuple[SqlValue, ...] | None
Statement = Callable[[Position, int], Select[tuple[object, ...]]]

# The filters that carry no value from the request but booleans (written into the SQL of a
# statement planned once); any other field set makes the statement take binds.
_FLAGS = frozenset({"deleted", "include_soft_deleted", "soft_deleted", "locked"})
_NO_FILTER = InstanceFilters()
# Sizes up to this are kept exact; above, rounded up to an eighth of their power of two.
_EXACT_UP_TO = 16


def plan_once_size(n: int) -> int:
    """``n`` rounded up to at most 1/8 more (exact up to 16): 8 sizes per doubling, so a
    first batch sized from learned shares lands on a statement the cell has planned."""
    if n <= _EXACT_UP_TO:
        return n
    step = 1 << (n.bit_length() - 4)
    return -(-n // step) * step


def _value_free(filters: InstanceFilters) -> bool:
    """Whether ``filters`` set nothing but the boolean visibility flags."""
    return all(
        getattr(filters, f.name) == getattr(_NO_FILTER, f.name)
        for f in fields(filters)
        if f.name not in _FLAGS
    )


class QueryPlan:
    """One request's keyset query, built once and prepared once per NULL pattern.

    :meth:`select` gives the SQLAlchemy statement; :meth:`bind` gives it prepared by an
    executor (on first use for each pattern of NULLs in the position, the only thing that
    changes the SQL text; then only re-bound) and the values of its binds.
    """

    def __init__(
        self, spec: SortSpec, filters: InstanceFilters, columns: tuple[str, ...] | None
    ) -> None:
        self.spec = spec
        self.filters = filters
        self.column_names = columns
        # Built on first use only: a plan whose SQL is cached never builds its clauses.
        self._key = (spec, filters, columns)
        self._value_free = _value_free(filters)

    @cached_property
    def columns(self) -> list[Column[Any]]:
        c = instances.c
        return [c[name] for name in self.column_names] if self.column_names else list(c)

    @cached_property
    def conditions(self) -> list[ColumnElement[bool]]:
        return where_clauses(self.filters)

    @cached_property
    def ordering(self) -> list[UnaryExpression[object]]:
        return order_by(self.spec, instances.c)

    def select(
        self, position: Position, n: int, *, named: bool = False, bounded: bool = False
    ) -> Select[tuple[object, ...]]:
        """The statement for ``n`` rows after ``position`` (named binds for compiling;
        ``bounded``: see :meth:`_first_key_bound`)."""
        c = instances.c
        limit: int | BindParameter[int] = bindparam("lim", value=n) if named else n
        if position is None:
            return self._branch(None, limit, bounded)
        binds = position_binds(self.spec, c, position) if named else None
        split = self._split(position, binds)
        if split is None:
            return self._branch(after_position(self.spec, c, position, binds), limit)
        near, far = (self._branch(part, limit).subquery(name) for name, part in split)
        page = union_all(select(near), select(far)).subquery("page")
        return select(*page.c).order_by(*order_by(self.spec, page.c)).limit(limit)

    def _branch(
        self,
        after: ColumnElement[bool] | None,
        limit: int | BindParameter[int],
        bounded: bool = False,
    ) -> Select[tuple[object, ...]]:
        conditions = [*self.conditions, *([after] if after is not None else [])]
        if bounded:
            conditions += self._first_key_bound(conditions, limit)
        statement = select(*self.columns).where(*conditions).order_by(*self.ordering)
        return statement.limit(limit)

    def _first_key_bound(
        self, conditions: list[ColumnElement[bool]], limit: int | BindParameter[int]
    ) -> list[ColumnElement[bool]]:
        """For MySQL-family cells (no incremental sort): the page's rows all lie within the
        first ``limit + 1`` rows' values of the first key, a bound that makes the index on
        that key a short range instead of a sort of every row after the position.

        MySQL sorts ``ORDER BY created_at DESC, CAST(uuid AS BINARY)`` by reading every
        row the range gives and sorting them all (PostgreSQL sorts each group of equal
        ``created_at`` as the index hands them over). The ``(limit + 1)``-th value of the
        first key alone, in its own order, is read from the index by a subquery; the rows
        of the page all come at or before it. ``OR (...) IS NULL``: fewer rows than that
        are left, no bound. Only for a first key that is not a string (its index order is
        the listing's) and not nullable, followed by other keys. MariaDB evaluates the
        subquery while optimizing (``expensive_subquery_limit``, set per session by
        :mod:`cells.mysql`), so the bound becomes an index range.

        First pages only. After a position, MariaDB 10.11 reads the subquery through
        Nova's ``(deleted, created_at)`` index as a ``ref`` on ``deleted`` from its newest
        end (it does not seek to the position when the filters need the row, as
        ``vm_state``'s does), so the bound would cost as many rows as the position's depth:
        no better than the sort of every row after the position it replaces.
        """
        first = self.spec.keys[0]
        if len(self.spec.keys) < 2 or first.nullable or first.kind == "str":
            return []
        column = instances.c[first.name]
        nth = (
            select(column)
            .where(*conditions)
            .order_by(*order_by(SortSpec(self.spec.keys[:1]), instances.c))
            .limit(1)
            .offset(limit)
            .correlate(None)
            .scalar_subquery()
        )
        if first.direction is Direction.DESC:
            return [or_(column >= nth, nth.is_(None))]
        # A NULL the column should not hold (``sort_not_null``) sorts first ascending on
        # MySQL: keep it (one range with the bound, NULL being the index's lowest value).
        return [or_(column <= nth, column.is_(None), nth.is_(None))]

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

    def bind(
        self, executor: Executor, position: Position, n: int
    ) -> tuple[object, dict[str, object], int]:
        """``executor``'s prepared statement for ``n`` rows after ``position``, the values
        of its binds, and how many rows it asks for: ``n``, or more for a statement planned
        once (see the module docstring)."""
        prepare_once = getattr(executor, "prepare_once", None)
        if position is None and self._value_free and prepare_once is not None:
            size = plan_once_size(n)
            prepared = prepare_once((self._key, size), lambda: self.select(None, size))
            return prepared, {}, size
        pattern = None if position is None else tuple(v is None for v in position)
        bounded = bool(getattr(executor, "bounds_first_key", False))
        prepared = executor.prepare(
            (self._key, pattern), lambda: self.select(position, n, named=True, bounded=bounded)
        )
        values: dict[str, object] = {f"k{i}": value for i, value in enumerate(position or ())}
        values["lim"] = n
        return prepared, values, n
