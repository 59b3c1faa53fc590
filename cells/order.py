"""Sort specifications and the one total order shared by SQL and Python.

NULL rule: **NULL sorts as the lowest value** of every key, so it comes first in ``asc`` and
last in ``desc``. Strings compare by code point (the queries say ``COLLATE "C"`` on
PostgreSQL, ``CAST(col AS BINARY)`` on MariaDB/MySQL, :mod:`cells.sqltypes`), booleans as
``False < True``, datetimes chronologically.

:func:`key_function` turns a row into a plain tuple that Python compares natively (no
``__lt__`` chains): descending values are *negated* (numbers, datetimes) or byte-inverted
(strings), and nullable keys contribute a ``(flag, value)`` pair whose flag places NULLs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from sqlalchemy import Boolean, DateTime, Integer, String, Table

from cells.schema import instances

__all__ = [
    "Direction",
    "KeyKind",
    "Row",
    "SortKey",
    "SortSpec",
    "SqlValue",
    "key_function",
]

SqlValue = str | int | bool | dt.datetime | None
Row = Mapping[str, SqlValue]
KeyKind = Literal["str", "int", "bool", "datetime"]

_EPOCH = dt.datetime(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)
# Inverting every byte of a UTF-8 string reverses byte order, which is code point order.
_INVERT = bytes(range(255, -1, -1))
# UTF-8 never contains 0x00 here (PostgreSQL text forbids NUL), so no inverted byte is 0xff:
# the terminator makes a prefix sort *after* its extensions, as descending order requires.
_DESC_TERMINATOR = b"\xff"


class Direction(StrEnum):
    """A sort direction, spelled as in Nova's ``sort_dir``."""

    ASC = "asc"
    DESC = "desc"


@dataclass(frozen=True, slots=True)
class SortKey:
    """One column of a sort order."""

    name: str
    direction: Direction
    nullable: bool
    kind: KeyKind


@dataclass(frozen=True, slots=True)
class SortSpec:
    """A full sort order; :meth:`build` guarantees it ends with the unique ``uuid``."""

    keys: tuple[SortKey, ...]

    @classmethod
    def build(cls, pairs: Sequence[tuple[str, Direction]], table: Table = instances) -> SortSpec:
        """Resolve ``(column, direction)`` pairs against ``table`` and append ``uuid asc``.

        Duplicate columns keep their first occurrence (a repeat cannot change the order).
        Raises ``KeyError`` for a column the table does not have.
        """
        seen: set[str] = set()
        keys: list[SortKey] = []
        for name, direction in [*pairs, ("uuid", Direction.ASC)]:
            if name in seen:
                continue
            seen.add(name)
            column = table.c[name]
            # A column Nova always fills (``info["sort_not_null"]``) sorts as NOT NULL.
            nullable = bool(column.nullable) and not column.info.get("sort_not_null", False)
            keys.append(SortKey(name, direction, nullable, _kind_of(column.type)))
        return cls(tuple(keys))

    @property
    def names(self) -> tuple[str, ...]:
        """The column names, in order."""
        return tuple(key.name for key in self.keys)

    def position_of(self, row: Row) -> tuple[SqlValue, ...]:
        """The raw sort values of ``row``: a keyset position for the SQL predicate."""
        return tuple(row[key.name] for key in self.keys)


def _kind_of(sql_type: object) -> KeyKind:
    match sql_type:
        case Boolean():
            return "bool"
        case Integer():
            return "int"
        case DateTime():
            return "datetime"
        case String():
            return "str"
    # with_variant() wraps the base type; its impl carries the generic class.
    impl = getattr(sql_type, "impl", None)
    if impl is not None and impl is not sql_type:
        return _kind_of(impl)
    raise TypeError(f"unsortable column type {sql_type!r}")


def _micros(value: dt.datetime) -> int:
    return (value - _EPOCH) // _MICROSECOND


def _descending(kind: KeyKind) -> Callable[[SqlValue], object]:
    match kind:
        case "int":
            return lambda v: -v  # type: ignore[operator]  # non-NULL ints only (the kind, and NULLs, decided by the caller)
        case "bool":
            return lambda v: not v
        case "datetime":
            return lambda v: -_micros(v)  # type: ignore[arg-type]  # non-NULL datetimes only (as above)
        case "str":
            return lambda v: v.encode().translate(_INVERT) + _DESC_TERMINATOR  # type: ignore[union-attr]  # non-NULL strs only (as above)


def _identity(value: SqlValue) -> object:
    return value


def key_function(spec: SortSpec) -> Callable[[Row], tuple[object, ...]]:
    """Compile ``spec`` into a function from a row to its comparable key tuple.

    For nullable keys the pair is ``(0, None)`` / ``(1, value)`` ascending and
    ``(1, None)`` / ``(0, value)`` descending; the ``None`` placeholder is only ever
    compared with another ``None`` (flags differ otherwise), which tuples do by equality.
    """
    plan = [
        (
            key.name,
            key.nullable,
            _identity if key.direction is Direction.ASC else _descending(key.kind),
            0 if key.direction is Direction.ASC else 1,
        )
        for key in spec.keys
    ]
    if len(plan) == 2 and not plan[0][1] and not plan[1][1] and plan[1][2] is _identity:
        # The usual order (one NOT NULL key, then uuid ascending: the default
        # ``created_at desc``) without the loop: the merge keys every row a cell returns.
        (first, _, transform, _), (second, *_) = plan
        return lambda row: (transform(row[first]), row[second])

    def key_of(row: Row) -> tuple[object, ...]:
        out: list[object] = []
        for name, nullable, transform, null_flag in plan:
            value = row[name]
            if not nullable:
                out.append(transform(value))
            elif value is None:
                out.append(null_flag)
                out.append(None)
            else:
                out.append(1 - null_flag)
                out.append(transform(value))
        return tuple(out)

    return key_of
