"""Read-ahead: refill a walk's frontier for its likely next page, off that page's path.

After a page is answered, the cells it drained (and those left with fewer rows than the
next page is expected to take from them) are asked for their next batch in the background;
the next page then merges what is buffered and queries no cell unless an estimate missed.

Bounds (what keeps rows read ÷ rows returned near 1):

- a cell is read ahead only when its buffer may not cover its part of the next page (its
  share of ``limit + 1`` plus a slack; a drained cell always), and then up to its part of
  ``pages`` pages plus a slack, never past ``keep`` buffered rows (the frontier's bound);
- an exhausted cell is never asked;
- one batch per cell, all concurrent: at most ``pages · (limit + 1)`` plus the slacks.

Every row read ahead that a later page returns is a row that page would have read itself;
a walk that stops wastes at most what its last frontier holds. Failures only cost the head
start: a cell that does not answer keeps its cursor as it was, and the next page asks it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from cells.fanout import CellRows, run_all
from cells.listing import first_batch_size, share_batch_size
from cells.order import SortSpec
from cells.sources import Source
from cells.walk import CellCursor, Frontier

__all__ = ["read_ahead", "read_ahead_sizes"]


def read_ahead_sizes(
    frontier: Frontier,
    shares: Mapping[int, float] | None,
    limit: int,
    keep: int,
    pages: int = 2,
) -> dict[int, int]:
    """Per cell id, how many rows to read ahead for the next pages of ``limit`` rows (cells
    that need none are absent). ``shares``: each cell's expected part of a page (``None``:
    equal).

    A cell is asked only when its buffer may not cover its part of the next page (fewer
    rows than :func:`~cells.listing.share_batch_size`, the slack included; a drained cell
    always), and then for its part of ``pages`` pages plus a slack: one statement then
    serves about ``pages`` pages. Never past ``keep`` buffered rows."""
    k = len(frontier)
    out: dict[int, int] = {}
    for cell_id, cursor in frontier.items():
        if cursor.exhausted:
            continue
        share = 1 / max(1, k) if shares is None else max(0.0, min(1.0, shares.get(cell_id, 0.0)))
        have = len(cursor.rows)
        low = first_batch_size(limit, k) if shares is None else share_batch_size(limit, share)
        if have >= low:
            continue
        expected = pages * (limit + 1) * share
        want = max(low, math.ceil(expected + 2 * math.sqrt(expected)))
        n = min(want, max(1, keep)) - have
        if n > 0:
            out[cell_id] = n
    return out


async def read_ahead(
    sources: Mapping[int, Source],
    spec: SortSpec,
    frontier: Frontier,
    sizes: Mapping[int, int],
) -> dict[int, CellCursor]:
    """``frontier`` with ``sizes[cell]`` more rows fetched for each cell in ``sizes`` (from
    ``sources``, per cell id), concurrently. A cell that does not answer is left as it was."""

    async def one(cell_id: int, n: int) -> tuple[int, CellCursor]:
        cursor = frontier[cell_id]
        outcome = await sources[cell_id].fetch(cursor.position, n)
        if not isinstance(outcome, CellRows):
            return cell_id, cursor
        rows = outcome.rows
        position = spec.position_of(rows[-1]) if rows else cursor.position
        return cell_id, CellCursor(position, outcome.exhausted, [*cursor.rows, *rows])

    refilled = await run_all([one(c, n) for c, n in sizes.items() if c in frontier])
    return {**frontier, **dict(refilled)}
