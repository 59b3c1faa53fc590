"""The merge frontier of a page, encoded for the store, and the keys it lives under.

A frontier records, per cell, where its keyset cursor stands (``position``), whether it is
exhausted, and the rows it fetched that the page did not return (bounded). The next page
resumes from it and queries only cells whose buffers drained.

Values are orjson: rows as one column header plus value lists, with datetimes (which JSON
cannot type) restored by column from a list of datetime columns. Anything malformed, from
another format version, or for another column set decodes to ``None`` — a miss, never an
error.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import orjson

__all__ = [
    "CellFrontier",
    "Frontier",
    "decode_frontier",
    "encode_frontier",
    "fingerprint",
    "frontier_key",
    "page_key",
]

_FORMAT = 1
Value = str | int | bool | float | dt.datetime | None


@dataclass(frozen=True, slots=True)
class CellFrontier:
    """One cell's cursor after a page."""

    cell_id: int
    exhausted: bool
    position: tuple[Value, ...] | None
    rows: Sequence[Mapping[str, Value]]


@dataclass(frozen=True, slots=True)
class Frontier:
    """All cells' cursors after the page that ended at some marker."""

    cells: list[CellFrontier]


def fingerprint(parts: Mapping[str, object]) -> str:
    """A stable hash of what makes two listings the same walk (scope, filters, order,
    cells, view). ``parts`` must be orjson-serialisable; keys are sorted."""
    blob = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def frontier_key(prefix: str, fp: str, marker: str) -> str:
    """``<prefix>:v1:page:{<fp>}:<marker>``; the hash tag keeps a walk on one cluster slot."""
    return f"{prefix}:v1:page:{{{fp}}}:{marker}"


def page_key(prefix: str, fp: str) -> str:
    """The short-lived rendered-page cache key of one exact request (``fp``)."""
    return f"{prefix}:v1:body:{{{fp}}}"


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
    for cell in frontier.cells:
        rows = cell.rows
        if rows and list(rows[0]) == expected:
            table = [list(row.values()) for row in rows]  # C-speed: already in column order
        else:
            table = [[row[c] for c in columns] for row in rows]
        position = list(cell.position) if cell.position is not None else None
        slots = _datetime_slots(position or [])
        cells.append([cell.cell_id, cell.exhausted, position, slots, table])
    dt_slots = [i for i, c in enumerate(columns) if c in datetime_columns]
    return orjson.dumps({"f": _FORMAT, "c": expected, "d": dt_slots, "cells": cells})


def decode_frontier(blob: bytes, columns: Sequence[str]) -> Frontier | None:
    """The frontier in ``blob``, or ``None`` if it is not one for ``columns``."""
    try:
        body = orjson.loads(blob)
        if body["f"] != _FORMAT or body["c"] != list(columns):
            return None
        datetime_columns: list[int] = body["d"]
        cells = []
        for cell_id, exhausted, position, position_dts, table in body["cells"]:
            rows = [
                dict(zip(columns, _restore(values, datetime_columns), strict=True))
                for values in table
            ]
            restored = tuple(_restore(position, position_dts)) if position is not None else None
            cells.append(CellFrontier(int(cell_id), bool(exhausted), restored, rows))
        return Frontier(cells)
    except (ValueError, LookupError, TypeError):  # LookupError: KeyError, IndexError
        return None
