"""The merge frontier of a page: per cell, where its keyset cursor stands, and its bytes.

A :class:`CellCursor` records where one cell's cursor stands (``position``: the last row
fetched), whether the cell is exhausted, and the rows it fetched that the page did not
return (bounded). The lister returns a :data:`Frontier` after a page and resumes from one;
the next page then queries only cells whose buffers drained. It is the one frontier type:
:func:`encode_frontier`/:func:`decode_frontier` turn it into the bytes the store keeps.

Values are orjson: rows as one column header plus value lists, with datetimes (which JSON
cannot type) restored by column from a list of datetime columns. Anything malformed, from
another format version, or for another column set decodes to ``None`` — a miss, never an
error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import orjson

from cells.order import Row, SqlValue

__all__ = ["CellCursor", "Frontier", "decode_frontier", "encode_frontier"]

_FORMAT = 1
Value = SqlValue | float


@dataclass(frozen=True, slots=True)
class CellCursor:
    """One cell's cursor: its position, whether it is exhausted, its unreturned rows."""

    position: tuple[SqlValue, ...] | None
    exhausted: bool
    rows: list[Row]


# Per cell id, every asked cell's cursor after a page.
Frontier = Mapping[int, CellCursor]


def _restore(values: list[Value], datetime_slots: Sequence[int]) -> list[Value]:
    for i in datetime_slots:
        raw = values[i]
        if isinstance(raw, str):
            values[i] = dt.datetime.fromisoformat(raw)
    return values


def _datetime_slots(values: Sequence[Value]) -> list[int]:
    return [i for i, v in enumerate(values) if isinstance(v, dt.datetime)]


def encode_frontier(
    frontier: Frontier, columns: Sequence[str], datetime_columns: Collection[str]
) -> bytes:
    """Serialise ``frontier``; every buffered row has exactly ``columns`` (in that order,
    the order its query selected them), and ``datetime_columns`` name the datetime ones."""
    expected = list(columns)
    cells = []
    for cell_id, cell in frontier.items():
        rows = cell.rows
        if rows and list(rows[0]) == expected:
            table = [list(row.values()) for row in rows]  # C-speed: already in column order
        else:
            table = [[row[c] for c in columns] for row in rows]
        position = list(cell.position) if cell.position is not None else None
        slots = _datetime_slots(position or [])
        cells.append([cell_id, cell.exhausted, position, slots, table])
    dt_slots = [i for i, c in enumerate(columns) if c in datetime_columns]
    return orjson.dumps({"f": _FORMAT, "c": expected, "d": dt_slots, "cells": cells})


def decode_frontier(blob: bytes, columns: Sequence[str]) -> dict[int, CellCursor] | None:
    """The frontier in ``blob``, or ``None`` if it is not one for ``columns``."""
    try:
        body = orjson.loads(blob)
        if body["f"] != _FORMAT or body["c"] != list(columns):
            return None
        datetime_columns: list[int] = body["d"]
        cells: dict[int, CellCursor] = {}
        for cell_id, exhausted, position, position_dts, table in body["cells"]:
            rows = [
                dict(zip(columns, _restore(values, datetime_columns), strict=True))
                for values in table
            ]
            restored = tuple(_restore(position, position_dts)) if position is not None else None
            cells[int(cell_id)] = CellCursor(restored, bool(exhausted), rows)  # type: ignore[arg-type]
        return cells
    except (ValueError, LookupError, TypeError):  # LookupError: KeyError, IndexError
        return None
