"""A walk's state between its pages, in one place beside the merge (:mod:`cells.merge`).

A *walk* is one listing paged through with markers. Between two of its pages the gateway
keeps:

- its **fingerprint** (:func:`walk_fingerprint`): what makes two pages part of the same
  walk, the key its frontiers and learned shares are kept under;
- its **frontier** (:class:`CellCursor` per cell) and the frontier's bytes
  (:func:`encode_frontier`/:func:`decode_frontier`): where each cell's keyset cursor stands
  and the rows it fetched that the page did not return (bounded); the next page queries
  only cells whose buffers drained;
- the **learned shares** (:class:`HeadShares`): what part of a page each cell supplied last
  time, which sizes the first batches of a page not resumed from a frontier;
- the **marker resolution** (:func:`resolve_marker`): a marker with no cached frontier,
  turned into its keyset position through ``instance_mappings`` and its cell.

Frontier values are orjson: rows as one column header plus value lists, with datetimes
(which JSON cannot type) restored by column from a list of datetime columns, and when the
rows were fetched. Anything malformed, from another format version, for another column
set, or fetched too long ago decodes to ``None`` — a miss, never an error.

Why a frontier ages out although its key lives on: its buffered rows and its cells'
exhausted flags are what the cells held when it was fetched, and it is keyed by the walk
and the marker alone, so *any* client following that marker resumes from it (another
user's walk, minutes later). Trusted for ever, a frontier hides every instance created
since inside its buffered range from every later walk through that marker — for as long
as the sliding TTL keeps a popular page's frontier alive (found by ``scripts/chaos
--writes``: walks missing instances created minutes before they started, in cells that
were up).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import orjson
from cachetools import LRUCache

from cells.errors import MarkerNotFound, MarkerUnavailable
from cells.fanout import CellFailed, CellRows, CellSkipped, CellSlow, CellTimedOut
from cells.filters import InstanceFilters
from cells.order import Row, SortSpec, SqlValue

if TYPE_CHECKING:
    from cells.apidb import ApiDatabase
    from cells.client import CellClient

__all__ = [
    "CellCursor",
    "Frontier",
    "HeadShares",
    "decode_frontier",
    "encode_frontier",
    "fingerprint",
    "resolve_marker",
    "walk_fingerprint",
]


# -- the fingerprint -------------------------------------------------------------------


def fingerprint(parts: Mapping[str, object]) -> str:
    """A stable hash of ``parts`` (orjson-serialisable; keys sorted)."""
    blob = orjson.dumps(parts, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def _filter_parts(filters: InstanceFilters) -> dict[str, object]:
    parts: dict[str, object] = {}
    for f in dataclasses.fields(filters):
        value = getattr(filters, f.name)
        if isinstance(value, frozenset):
            value = sorted(value, key=repr)
        elif isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        parts[f.name] = value
    return parts


def walk_fingerprint(
    filters: InstanceFilters, spec: SortSpec, cell_ids: Collection[int], columns: Sequence[str]
) -> str:
    """What makes two pages part of the same walk: scope and filters (``project_id`` is
    the scope), order, cell set and column set. Never shared across projects."""
    return fingerprint(
        {
            "filters": _filter_parts(filters),
            "sort": [[k.name, k.direction.value] for k in spec.keys],
            "cells": sorted(cell_ids),
            "columns": list(columns),
        }
    )


# -- the frontier and its bytes --------------------------------------------------------

_FORMAT = 2  # 2: "t", when the rows were fetched
Value = SqlValue | float


@dataclass(frozen=True, slots=True)
class CellCursor:
    """One cell's cursor: its position (the last row fetched), whether it is exhausted,
    and the rows it fetched that the page did not return."""

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
    frontier: Frontier,
    columns: Sequence[str],
    datetime_columns: Collection[str],
    fetched_at: float,
) -> bytes:
    """Serialise ``frontier``; every buffered row has exactly ``columns`` (in that order,
    the order its query selected them), ``datetime_columns`` name the datetime ones, and
    ``fetched_at`` (epoch seconds) is when its oldest rows were read."""
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
    body = {"f": _FORMAT, "c": expected, "d": dt_slots, "t": fetched_at, "cells": cells}
    return orjson.dumps(body)


def decode_frontier(
    blob: bytes, columns: Sequence[str], fetched_since: float = -math.inf
) -> dict[int, CellCursor] | None:
    """The frontier in ``blob``, or ``None`` if it is not one for ``columns`` or its rows
    were fetched before ``fetched_since`` (epoch seconds)."""
    try:
        body = orjson.loads(blob)
        if body["f"] != _FORMAT or body["c"] != list(columns):
            return None
        if not float(body["t"]) >= fetched_since:
            return None
        datetime_columns: list[int] = body["d"]
        cells: dict[int, CellCursor] = {}
        for cell_id, exhausted, position, position_dts, table in body["cells"]:
            rows = [
                dict(zip(columns, _restore(values, datetime_columns), strict=True))
                for values in table
            ]
            restored = tuple(_restore(position, position_dts)) if position is not None else None
            cells[int(cell_id)] = CellCursor(restored, bool(exhausted), rows)  # type: ignore[arg-type]  # decoded JSON: _restore gives back SqlValues, untyped
        return cells
    except (ValueError, LookupError, TypeError):  # LookupError: KeyError, IndexError
        return None


# -- the learned shares ----------------------------------------------------------------


@dataclass(slots=True)
class HeadShares:
    """What part of a walk's first page each cell supplied last time, per walk (an LRU).

    The instances-per-cell counts say how the *whole* listing divides between cells, but
    its head may not: newest-first, the cell the scheduler fills now holds most of the
    first page (measured: one cell with 50% of the rows gave 77% of an admin's first
    100). A first batch sized by the counts then misses and the page waits for a second,
    sequential query. The next first page of the same walk sizes each cell's batch by a
    blend of what it supplied last time and the counts (:meth:`blend`); a wrong estimate
    only costs that refill, never a row. Pages after a marker with no cached frontier
    learn under their own key (the walk's fingerprint plus ``@``): deep in a listing the
    cells mix as they do there, not as at its head (measured: the page at row 470,469 of
    8 cells read 219 rows in 10 queries with count-based batches).
    """

    LEARNED: ClassVar[float] = 0.75  # weight of the last first page vs the counts

    max_entries: int = 4096
    # cachetools' LRUCache (one event loop uses it: cachetools' caches are not thread-safe).
    _entries: LRUCache[str, dict[int, float]] = field(init=False)

    def __post_init__(self) -> None:
        self._entries = LRUCache(self.max_entries)

    def blend(
        self, walk: str, counted: dict[int, float] | None, cells: list[int]
    ) -> dict[int, float] | None:
        """Each cell's expected share of a first page of ``walk`` (``None``: equal)."""
        learned = self._entries.get(walk)  # the most recently used now
        if learned is None:
            return counted
        even = 1 / max(1, len(cells))
        prior = counted or {}
        w = self.LEARNED
        return {c: w * learned.get(c, 0.0) + (1 - w) * prior.get(c, even) for c in cells}

    def learn(self, walk: str, supplied: dict[int, int]) -> None:
        """Remember each cell's part of a complete first page of ``walk``."""
        total = sum(supplied.values())
        if total == 0:
            return
        self._entries[walk] = {cell: n / total for cell, n in supplied.items()}


# -- the marker resolution -------------------------------------------------------------


async def resolve_marker(
    api: ApiDatabase,
    clients: Mapping[int, CellClient],
    spec: SortSpec,
    marker: str,
    project_id: str | None,
) -> tuple[SqlValue, ...]:
    """The keyset position of ``marker``; ``project_id`` is the caller's scope or ``None``.

    Nova's rule: the marker is found through ``instance_mappings`` and then read from its
    cell *including soft-deleted rows*; unknown, purged or malformed markers — and, for a
    non-admin, another project's — are :class:`~cells.errors.MarkerNotFound` (a 400
    upstream). A marker whose cell cannot answer is
    :class:`~cells.errors.MarkerUnavailable` (a 503 upstream, where Nova gives a 500).
    """
    mapping = await api.mapping(marker)
    if mapping is None or mapping.cell_id is None:
        raise MarkerNotFound(marker)
    if project_id is not None and mapping.project_id != project_id:
        raise MarkerNotFound(marker)
    client = clients.get(mapping.cell_id)
    if client is None:
        raise MarkerNotFound(marker)
    outcome = await client.marker_row(spec.names, marker)
    match outcome:
        case CellRows(rows=[row]):
            if project_id is not None and row["project_id"] != project_id:
                raise MarkerNotFound(marker)
            return spec.position_of(row)
        case CellRows():
            raise MarkerNotFound(marker)
        case CellFailed() | CellTimedOut() | CellSlow() | CellSkipped():
            # The cell is down; the mapping still knows (created_at, uuid), which is enough
            # for orders the mappings can honour (the 2.69 stub order).
            if set(spec.names) <= {"created_at", "uuid"} and mapping.created_at is not None:
                values: dict[str, SqlValue] = {"created_at": mapping.created_at, "uuid": marker}
                return tuple(values[name] for name in spec.names)
            raise MarkerUnavailable(marker, client.cell)
    raise AssertionError("unreachable")  # pragma: no cover
