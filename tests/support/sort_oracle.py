"""The independent sort oracle the property tests compare against.

It never calls :func:`cells.order.key_function`: it compares two rows key by key with
explicit rules (NULL lowest, strings by code point, ``False < True``, datetimes
chronologically, ``desc`` reverses, ``uuid asc`` last) through ``functools.cmp_to_key``.
Column kinds are stated here, not read from the schema, so the oracle stays independent of
the code under test.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from cells.order import Direction, SqlValue

OracleRow = Mapping[str, SqlValue]

KIND_OF: dict[str, str] = {
    "uuid": "str",
    "project_id": "str",
    "user_id": "str",
    "display_name": "str",
    "hostname": "str",
    "host": "str",
    "vm_state": "str",
    "task_state": "str",
    "power_state": "int",
    "progress": "int",
    "launch_index": "int",
    "deleted": "int",
    "locked": "bool",
    "auto_disk_config": "bool",
    "launched_at": "datetime",
    "created_at": "datetime",
    "updated_at": "datetime",
}


def sign(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def compare_values(kind: str, a: SqlValue, b: SqlValue) -> int:
    """-1/0/1 for two values of one column, ascending, NULL lowest."""
    if a is None or b is None:
        return (a is not None) - (b is not None)
    if kind == "str":
        assert isinstance(a, str)
        assert isinstance(b, str)
        return sign([ord(ch) for ch in a], [ord(ch) for ch in b])
    if kind == "bool":
        return sign(1 if a else 0, 1 if b else 0)
    if kind == "datetime":
        assert isinstance(a, dt.datetime)
        assert isinstance(b, dt.datetime)
        return sign(a - b, dt.timedelta(0))
    return sign(a, b)


def oracle_cmp(
    pairs: Sequence[tuple[str, Direction]], *, uuid_last: bool = True
) -> Callable[[OracleRow, OracleRow], int]:
    """The comparison ``pairs`` mean, with ``uuid asc`` as the final tiebreaker (unless
    ``uuid_last`` is false: then rows tying on every pair compare equal)."""
    keys = [*pairs, ("uuid", Direction.ASC)] if uuid_last else list(pairs)

    def cmp(a: OracleRow, b: OracleRow) -> int:
        for name, direction in keys:
            c = compare_values(KIND_OF[name], a[name], b[name])
            if direction is Direction.DESC:
                c = -c
            if c:
                return c
        return 0

    return cmp


R = TypeVar("R", bound=OracleRow)


def oracle_sorted(rows: Sequence[R], pairs: Sequence[tuple[str, Direction]]) -> list[R]:
    """``rows`` sorted as ``pairs`` (then ``uuid asc``) say."""
    return sorted(rows, key=functools.cmp_to_key(oracle_cmp(pairs)))
