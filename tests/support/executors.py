"""Executors for tests: an in-memory one with scripted answers (no I/O), and the asyncpg
one on an engine that never connects (to compile statements only)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cells.executor import Query
from cells.order import Row
from cells.rawsql import AsyncpgExecutor

__all__ = ["PROBE", "Answer", "MemoryConn", "MemoryExecutor", "asyncpg_executor", "hang"]

PROBE: Hashable = ("probe",)
"""The key the liveness probe's ``SELECT 1`` is prepared under."""

Answer = Callable[[Hashable | None, Mapping[str, object]], Awaitable[list[Row]]]
"""What a statement (by its prepare key) answers, given its bind values."""


def asyncpg_executor() -> AsyncpgExecutor:
    """The asyncpg executor on an engine that is never connected (compiling only)."""
    return AsyncpgExecutor(create_async_engine("postgresql+asyncpg://nobody@127.0.0.1/none"))


async def hang() -> list[Row]:
    """Never answer (until cancelled)."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def _nothing(key: Hashable | None, values: Mapping[str, object]) -> list[Row]:
    return [{"anon_1": 1}] if key == PROBE else []


_ids = itertools.count(1)


@dataclass
class MemoryConn:
    """A pretend pooled connection and what happened to it."""

    id: int = field(default_factory=lambda: next(_ids))
    state: Literal["open", "released", "discarded"] = "open"
    stopped: bool = False  # the at-deadline action ran
    ran: list[tuple[Hashable | None, dict[str, object]]] = field(default_factory=list)


class MemoryExecutor:
    """An :class:`~cells.executor.Executor` whose statements answer from ``answer``."""

    binds_arrays = False

    def __init__(self, answer: Answer = _nothing, *, refuse: bool = False) -> None:
        self.answer = answer
        self.refuse = refuse  # connect() fails as a refused connection does
        self.conns: list[MemoryConn] = []
        self.builds: list[Hashable | None] = []
        self.disposed = False
        self.distrusted = 0  # distrust_idle() calls
        self._cache: dict[Hashable, Query] = {}
        self._keys: dict[int, Hashable | None] = {}

    @property
    def engine(self) -> AsyncEngine:
        raise NotImplementedError("an in-memory executor has no engine")

    def prepare(self, key: Hashable | None, build: Callable[[], Query]) -> object:
        if key is not None and key in self._cache:
            return self._cache[key]
        statement = build()
        self.builds.append(key)
        self._keys[id(statement)] = key
        if key is not None:
            self._cache[key] = statement
        return statement

    async def connect(self) -> object:
        await asyncio.sleep(0)
        if self.refuse:
            raise ConnectionRefusedError(111, "Connection refused")
        conn = MemoryConn()
        self.conns.append(conn)
        return conn

    async def fetch(
        self, conn: object, prepared: object, values: Mapping[str, object]
    ) -> list[Row]:
        assert isinstance(conn, MemoryConn)
        assert conn.state == "open", "a statement on a connection given back"
        key = self._keys[id(prepared)]
        conn.ran.append((key, dict(values)))
        return await self.answer(key, values)

    def at_deadline(
        self, conn: object, deadline: float, timeout_s: float
    ) -> asyncio.TimerHandle | None:
        assert isinstance(conn, MemoryConn)

        def stop() -> None:
            conn.stopped = True

        return asyncio.get_running_loop().call_at(deadline, stop)

    async def release(self, conn: object) -> None:
        assert isinstance(conn, MemoryConn)
        assert conn.state == "open"
        conn.state = "released"

    async def discard(self, conn: object) -> None:
        assert isinstance(conn, MemoryConn)
        conn.state = "discarded"

    async def dispose(self) -> None:
        self.disposed = True

    def distrust_idle(self) -> None:
        self.distrusted += 1

    def ran(self) -> list[Hashable | None]:
        """The keys of every statement run, in order, on every connection."""
        return [key for conn in self.conns for key, _ in conn.ran]
