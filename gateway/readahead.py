"""The read-aheads in flight in this process (see :mod:`cells.readahead` for what one reads).

A read-ahead starts after a page of a walk that has already asked for a second page (a
listing looked at once, the common case, never pays for one), reads the next page's rows
into the frontier the page saved, and saves the refilled frontier under the same key, so a
next page in any worker finds it. A next page that arrives in this process while its
read-ahead still runs awaits it instead of reading the frontier it would replace (which
would read the same rows twice).

A finished read-ahead's frontier is also kept in this process until its page asks for it
(at most ``max_ready_rows`` buffered rows over all, oldest out first), so a next page here
neither reads nor decodes the saved one — for ``fresh_s`` after the read-ahead started, as
a saved frontier is trusted (``frontier_fresh_s``; :mod:`cells.walk` says why).

A page asked again (a retry, a client polling it, many clients on one bookmarked deep
page) saves the same frontier key for its next page: the read-ahead already in flight or
done for that key is kept, not cancelled and started again. Cancelling one mid-statement
costs more than it saves: the cell's connection is lost with the cancelled statement, so
the next request pays a new connection (a cold deep page asked over and over went from
1.1x to 1.6-2.0x page 1's time that way).

Bounds: at most ``max_in_flight`` read-aheads; starting one more cancels the oldest. Each
runs within ``deadline_s``; shutdown cancels them all.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from cells import CellCursor

__all__ = ["ReadAheads"]

log = logging.getLogger(__name__)

Refilled = dict[int, CellCursor] | None
Outcome = Callable[[str], None]


@dataclass(slots=True)
class ReadAheads:
    """Read-aheads in flight, per frontier key (an LRU with a bound)."""

    max_in_flight: int = 64
    deadline_s: float = 5.0
    outcome: Outcome = lambda result: None
    max_ready_rows: int = 4000  # buffered rows kept in finished read-aheads, over all
    fresh_s: float = math.inf  # how long after it started a finished one is claimed
    _tasks: OrderedDict[str, asyncio.Task[Refilled]] = field(default_factory=OrderedDict)
    # Finished read-aheads not yet claimed (an LRU bounded by their rows), with when each
    # started (monotonic): a next page in this process takes its frontier without reading
    # and decoding the saved one.
    _ready: OrderedDict[str, tuple[float, dict[int, CellCursor]]] = field(
        default_factory=OrderedDict
    )
    _ready_rows: int = 0

    def start(self, key: str, run: Callable[[], Awaitable[Refilled]]) -> None:
        """Read ahead for the page at ``key`` (``run`` refills and saves its frontier),
        unless a read-ahead for it is in flight or done and unclaimed (``kept``)."""
        if self.max_in_flight <= 0:
            return
        if key in self._tasks:
            self._tasks.move_to_end(key)  # asked for again: the last to be evicted
            self.outcome("kept")
            return
        if key in self._ready and self._fresh(self._ready[key][0]):
            self._ready.move_to_end(key)
            self.outcome("kept")
            return
        self._take_ready(key)  # too old to be claimed: read again
        while len(self._tasks) >= self.max_in_flight:
            _, oldest = self._tasks.popitem(last=False)
            oldest.cancel()
        task = asyncio.ensure_future(self._bounded(run))
        self._tasks[key] = task
        self.outcome("started")
        started = time.monotonic()
        task.add_done_callback(lambda t: self._done(key, t, started))

    async def claim(self, key: str) -> Refilled:
        """For the page at ``key``: the frontier of its read-ahead in flight, once done;
        ``None`` when none is in flight, or it failed or was cancelled (the page then reads
        the saved frontier: a read-ahead saves its own before it is done)."""
        ready = self._take_ready(key)
        if ready is not None:
            return ready
        task = self._tasks.get(key)
        if task is None:
            return None
        self.outcome("awaited")
        try:
            # Shielded: a client that goes away must not cancel what the next one awaits.
            refilled = await asyncio.shield(task)
            self._take_ready(key)  # taken here: not kept for a second claim
            return refilled
        except asyncio.CancelledError:
            if not task.cancelled():
                raise  # this request was cancelled, not the read-ahead
            return None
        except Exception:
            return None

    def _fresh(self, started: float) -> bool:
        return time.monotonic() - started <= self.fresh_s

    def _take_ready(self, key: str) -> dict[int, CellCursor] | None:
        """``key``'s finished frontier, out of the kept ones; ``None`` if none or stale."""
        ready = self._ready.pop(key, None)
        if ready is None:
            return None
        started, frontier = ready
        self._ready_rows -= _rows(frontier)
        return frontier if self._fresh(started) else None

    def _keep_ready(self, key: str, refilled: dict[int, CellCursor], started: float) -> None:
        self._take_ready(key)
        rows = _rows(refilled)
        if rows > self.max_ready_rows:
            return
        self._ready[key] = (started, refilled)
        self._ready_rows += rows
        while self._ready_rows > self.max_ready_rows:
            _, (_, oldest) = self._ready.popitem(last=False)
            self._ready_rows -= _rows(oldest)

    def in_flight(self) -> int:
        return len(self._tasks)

    async def close(self) -> None:
        """Cancel every read-ahead (shutdown: the engines are disposed next)."""
        tasks = list(self._tasks.values())
        self._ready.clear()
        self._ready_rows = 0
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _bounded(self, run: Callable[[], Awaitable[Refilled]]) -> Refilled:
        async with asyncio.timeout(self.deadline_s):
            return await run()

    def _done(self, key: str, task: asyncio.Task[Refilled], started: float) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        if task.cancelled():
            self.outcome("cancelled")
        elif task.exception() is not None:
            self.outcome("failed")
            log.debug("read-ahead failed: %r", task.exception())
        else:
            self.outcome("saved")
            refilled = task.result()
            if refilled is not None:
                self._keep_ready(key, refilled, started)


def _rows(frontier: dict[int, CellCursor]) -> int:
    return sum(len(cursor.rows) for cursor in frontier.values())
