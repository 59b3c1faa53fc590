"""An in-memory :class:`cells.sources.Source` for unit tests of the lister.

It answers "``n`` rows after ``position``" from a Python list with the independent sort
oracle (:mod:`sort_oracle`), never with :func:`cells.order.key_function`, and can be told
to misbehave on a given call: fail, time out, be slow, be skipped by its breaker, raise a
client or configuration error, or hang until cancelled.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from cells.fanout import (
    CellFailed,
    CellOutcome,
    CellRows,
    CellSkipped,
    CellSlow,
    CellTimedOut,
)
from cells.faults import CellMisconfigured, InvalidQuery
from cells.order import Direction, Row, SqlValue
from cells.registry import Cell
from tests.support.sort_oracle import oracle_cmp

Trouble = Literal["error", "timeout", "slow", "skipped", "invalid", "config", "hang"]


def cell(i: int) -> Cell:
    """A cell with id ``i`` named ``cell<i>``."""
    return Cell(i, f"uuid-{i}", f"cell{i}", "memory://")


@dataclass
class MemorySource:
    """Rows of one cell, sorted by the oracle, with scripted trouble per call number."""

    cell: Cell
    rows: Sequence[Row]
    pairs: Sequence[tuple[str, Direction]]
    trouble: dict[int, Trouble] = field(default_factory=dict)  # call index (from 0) → what
    queries: int = 0
    rows_fetched: int = 0
    asked: list[int] = field(default_factory=list)  # n of every call
    cancelled: bool = False
    closed_after_cancel: bool = False
    closed: bool = False

    def __post_init__(self) -> None:
        self._cmp = oracle_cmp(self.pairs)
        self.rows = sorted(self.rows, key=functools.cmp_to_key(self._cmp))

    def _after(self, position: tuple[SqlValue, ...] | None) -> list[Row]:
        if position is None:
            return list(self.rows)
        names = [name for name, _ in self.pairs]
        names += [] if "uuid" in names else ["uuid"]
        probe = dict(zip(names, position, strict=True))
        return [row for row in self.rows if self._cmp(row, probe) > 0]

    async def fetch(self, position: tuple[SqlValue, ...] | None, n: int) -> CellOutcome:
        call = self.queries
        self.queries += 1
        self.asked.append(n)
        await asyncio.sleep(0)  # a real call always yields to the loop
        match self.trouble.get(call):
            case None:
                batch = self._after(position)[:n]
                self.rows_fetched += len(batch)
                return CellRows(batch, len(batch) < n, 1.0)
            case "error":
                return CellFailed("ConnectionRefusedError: refused", 1.0)
            case "timeout":
                return CellTimedOut(1.0, 1000.0)
            case "slow":
                return CellSlow(1.0, 1000.0)
            case "skipped":
                return CellSkipped()
            case "invalid":
                raise InvalidQuery("invalid regular expression")
            case "config":
                raise CellMisconfigured(self.cell.label, 'column "flavor" does not exist')
            case "hang":
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    self.cancelled = True
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        self.closed = True
        self.closed_after_cancel = self.cancelled
