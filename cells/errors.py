"""Every error a call into :mod:`cells` raises on purpose, in one tree.

::

    CellsError
    ├── InvalidQuery            the database rejected the client's own query   → 400
    ├── CellMisconfigured       a cell's schema or grants do not match        → the cell is
    │                                                                       unavailable, loudly
    ├── MarkerNotFound          no visible instance has the marker's uuid      → 400
    ├── MarkerUnavailable       the marker's cell cannot answer               → 503
    ├── ApiDatabaseUnavailable  the API database failed or missed its deadline → 503
    └── UnsupportedDatabase     a database URL with no async driver here       (start-up)

A cell that is down, hung or slow is not an error: the calls of a
:class:`~cells.client.CellClient` return it as an outcome (:mod:`cells.fanout`). Whose
fault a driver error is, and so which of these it becomes, is decided once by
:func:`cells.faults.blame`. Each class also derives from the builtin it used to be, so
code written against those keeps working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cells.registry import Cell

__all__ = [
    "ApiDatabaseUnavailable",
    "CellMisconfigured",
    "CellsError",
    "InvalidQuery",
    "MarkerNotFound",
    "MarkerUnavailable",
    "UnsupportedDatabase",
]


class CellsError(Exception):
    """Base of every error :mod:`cells` raises on purpose."""


class InvalidQuery(CellsError, ValueError):
    """The database rejected the client's own query (a 400 for that request only)."""


class CellMisconfigured(CellsError, RuntimeError):
    """A cell's schema or permissions do not match what cellgate reads.

    Raised by a :class:`~cells.session.CellSession`; a :class:`~cells.client.CellClient`
    turns it into an outcome (:class:`~cells.fanout.CellFailed` with its ``schema_fault``):
    the cell is left out of the answer, as an unreachable one is, without its breaker.
    ``reason`` is one of :data:`~cells.faults.SCHEMA_REASONS`.
    """

    def __init__(self, cell: str, message: str, reason: str = "schema") -> None:
        super().__init__(f"cell {cell}: {message}")
        self.cell = cell
        self.message = message
        self.reason = reason


class MarkerNotFound(CellsError, LookupError):
    """No visible instance has this uuid."""

    def __init__(self, marker: str) -> None:
        super().__init__(marker)
        self.marker = marker


class MarkerUnavailable(CellsError, RuntimeError):
    """The marker's cell could not be read."""

    def __init__(self, marker: str, cell: Cell) -> None:
        super().__init__(marker, cell.label)
        self.marker = marker
        self.cell = cell


class ApiDatabaseUnavailable(CellsError, RuntimeError):
    """The API database failed, or did not answer within its deadline."""


class UnsupportedDatabase(CellsError, ValueError):
    """A database URL whose scheme has no async driver here."""
