"""A streaming k-way heap merge that never does I/O itself.

:class:`Merge` holds one buffer per cell (rows already fetched, in that cell's order) and a
heap with each non-empty buffer's head. :meth:`Merge.take` pops rows in global order and
stops *before* it could emit a wrong row: when a cell that is not exhausted has drained its
buffer, its next row (still in the database) might be the smallest, so the caller must
:meth:`~Merge.feed` that cell first. The driver (:mod:`cells.listing`) does the fetching.

Rows are compared only by precomputed key tuples (see :func:`cells.order.key_function`);
the cell index breaks exact ties so rows themselves are never compared.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from cells.order import Row

__all__ = ["CellBuffer", "Keyed", "Merge", "Taken"]

Keyed = tuple[tuple[object, ...], Row]


@dataclass(slots=True)
class CellBuffer:
    """Rows fetched from one cell but not yet emitted, and whether the cell has more."""

    rows: deque[Keyed] = field(default_factory=deque)
    exhausted: bool = False


@dataclass(frozen=True, slots=True)
class Taken:
    """The result of :meth:`Merge.take`: rows in order and, if it stopped early, which
    cell must be refilled before anything else may be taken."""

    rows: list[Keyed]
    refill: int | None


class Merge:
    """The merge state over ``k`` cells, identified by their index ``0..k-1``."""

    def __init__(self, k: int) -> None:
        self.buffers = [CellBuffer() for _ in range(k)]
        self._heap: list[tuple[tuple[object, ...], int]] = []
        self._pending = set(range(k))  # cells never fed: nothing may be emitted yet

    def add_cell(self) -> int:
        """Add an input (it must be fed before anything more is taken); its index."""
        self.buffers.append(CellBuffer())
        index = len(self.buffers) - 1
        self._pending.add(index)
        return index

    def feed(self, cell: int, rows: Iterable[Keyed], *, exhausted: bool) -> None:
        """Append ``rows`` (in the cell's order, after what it already gave) to ``cell``."""
        buffer = self.buffers[cell]
        was_empty = not buffer.rows
        buffer.rows.extend(rows)
        buffer.exhausted = exhausted
        self._pending.discard(cell)
        if was_empty and buffer.rows:
            heapq.heappush(self._heap, (buffer.rows[0][0], cell))

    def drop(self, cell: int) -> None:
        """Forget ``cell`` (it failed): its buffered rows go and it counts as exhausted."""
        buffer = self.buffers[cell]
        if buffer.rows:
            self._heap = [entry for entry in self._heap if entry[1] != cell]
            heapq.heapify(self._heap)
            buffer.rows.clear()
        buffer.exhausted = True
        self._pending.discard(cell)

    def starved(self) -> list[int]:
        """Cells that must be fed before the next row can be decided."""
        return [
            i
            for i, b in enumerate(self.buffers)
            if i in self._pending or (not b.rows and not b.exhausted)
        ]

    def take(self, n: int) -> Taken:
        """Pop up to ``n`` rows in global order; stop early if a live cell drains."""
        starved = self.starved()
        if starved:
            return Taken([], starved[0])
        out: list[Keyed] = []
        heap, buffers = self._heap, self.buffers
        while len(out) < n and heap:
            _, cell = heap[0]
            buffer = buffers[cell]
            out.append(buffer.rows.popleft())
            if buffer.rows:
                heapq.heapreplace(heap, (buffer.rows[0][0], cell))
            else:
                heapq.heappop(heap)
                if not buffer.exhausted:
                    return Taken(out, cell)
        return Taken(out, None)

    @property
    def buffered(self) -> bool:
        """Whether any fetched row is still waiting to be taken."""
        return bool(self._heap)

    @property
    def has_more(self) -> bool:
        """Whether any row remains (buffered, or possibly in a cell not yet exhausted)."""
        return bool(self._heap) or bool(self.starved())
