"""In-process request coalescing: concurrent calls with one key share one execution.

The shared work runs in its own task, so a caller that goes away (client disconnect,
cancellation) does not cancel it for the others; every caller gets the same result or the
same exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """``await flight.do(key, fn)`` runs ``fn`` once per key among concurrent callers."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[T]] = {}
        self.coalesced = 0

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        """The result of ``fn()``, shared with concurrent callers of the same ``key``."""
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(self._run(key, fn))
            self._running[key] = task
        else:
            self.coalesced += 1
        return await asyncio.shield(task)

    async def _run(self, key: str, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        finally:
            self._running.pop(key, None)
