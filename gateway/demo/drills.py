"""Outage drills: make a cell look down, hung or slow without touching its database.

The demo's console uses them so a newcomer can watch a partial listing and its recovery on
the embedded SQLite cells, which have no server to stop. A drill acts where a real outage
is seen, at the driver, so everything above it (deadlines, the liveness probe, fault
classification, circuit breakers) runs unchanged:

=====  =================================================================================
down   every statement fails as a refused connection does (``ConnectionRefusedError``)
hang   every statement waits until the drill ends or the caller's deadline cancels it
slow   every statement waits ``slow_s`` first, then runs
=====  =================================================================================

A drill hooks SQLAlchemy's ``before_cursor_execute`` event, which runs inside the
connection's greenlet: the wait is an ``await`` on the event loop, never a blocking sleep,
and the cell's deadline cancels it as it would cancel a query. Statements sent on the raw
asyncpg connection (the PostgreSQL fast path) bypass the event: drills are for the demo.
"""

from __future__ import annotations

import asyncio
import errno
from typing import Literal, get_args

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

__all__ = ["DRILLS", "Drill", "Drills"]

Drill = Literal["none", "down", "hang", "slow"]
DRILLS: tuple[Drill, ...] = get_args(Drill)


class Drills:
    """The drill in force per cell label; cells not installed cannot be drilled."""

    def __init__(self, slow_s: float) -> None:
        self.slow_s = slow_s
        self._drills: dict[str, Drill] = {}
        self._hang_ended: dict[str, asyncio.Event] = {}
        # Bumped by every change, so a page cached before a drill is not served after it
        # (:class:`~gateway.demo.pagecache.DrilledStore` keys pages by it).
        self.generation = 0

    def install(self, label: str, engine: AsyncEngine) -> None:
        """Let ``label``'s statements on ``engine`` be drilled (no drill in force yet)."""
        self._drills[label] = "none"

        def before_execute(conn: Connection, *_: object) -> None:
            self._apply(label)

        event.listen(engine.sync_engine, "before_cursor_execute", before_execute)

    def set(self, label: str, drill: Drill) -> None:
        """Start ``drill`` on ``label`` (``"none"`` ends it); ``KeyError`` if not installed."""
        if label not in self._drills:
            raise KeyError(label)
        if self._drills[label] == "hang" and drill != "hang":
            self._hang_ended.pop(label).set()  # release the statements it holds
        elif drill == "hang" and self._drills[label] != "hang":
            self._hang_ended[label] = asyncio.Event()
        self._drills[label] = drill
        self.generation += 1

    def get(self, label: str) -> Drill:
        """The drill in force on ``label``."""
        return self._drills[label]

    def labels(self) -> list[str]:
        """The cells that can be drilled, in installation order."""
        return list(self._drills)

    def _apply(self, label: str) -> None:
        match self._drills[label]:
            case "none":
                return
            case "down":
                raise ConnectionRefusedError(
                    errno.ECONNREFUSED, f"cell {label} is down (an outage drill)"
                )
            case "slow":
                await_only(asyncio.sleep(self.slow_s))
            case "hang":
                await_only(self._hang_ended[label].wait())
