"""The asyncpg executor checks connections out of SQLAlchemy's pool as the pool's proxy
(:meth:`cells.rawsql.AsyncpgExecutor.connect`), on the real PostgreSQL: the same pool
reuses them, an error at connect is classified as SQLAlchemy's ``Connection`` had it, and a
discarded or distrusted connection is never handed out again."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError

from cells.faults import DATABASE_ERRORS, Blame, blame
from cells.rawsql import AsyncpgExecutor, Pooled, RawSql
from cells.registry import EngineOptions, open_executor

pytestmark = pytest.mark.integration

PID = RawSql("SELECT pg_backend_pid()", (), {})


def _executor(url: str) -> AsyncpgExecutor:
    executor = open_executor(url, EngineOptions(pool_size=2, max_overflow=0))
    assert isinstance(executor, AsyncpgExecutor)
    return executor


async def _pid(executor: AsyncpgExecutor, conn: object) -> int:
    (row,) = await executor.fetch(conn, PID, {})
    return int(str(row["pg_backend_pid"]))


async def test_a_released_connection_is_handed_out_again(postgres: str) -> None:
    executor = _executor(f"{postgres}/postgres")
    try:
        conn = await executor.connect()
        assert isinstance(conn, Pooled)
        first = await _pid(executor, conn)
        await executor.release(conn)
        again = await executor.connect()
        assert await _pid(executor, again) == first  # the pool's connection, reused
        await executor.discard(again)
        fresh = await executor.connect()
        second = await _pid(executor, fresh)
        assert second != first  # a discarded one is gone
        await executor.release(fresh)
        executor.distrust_idle()  # idle ones from before now are dropped at checkout
        after = await executor.connect()
        assert await _pid(executor, after) not in (first, second)
        await executor.release(after)
    finally:
        await executor.dispose()


async def test_an_error_at_connect_is_wrapped_as_the_pool_would(postgres: str) -> None:
    executor = _executor(f"{postgres}/cellgate_no_such_database")
    try:
        with pytest.raises(DATABASE_ERRORS) as raised:
            await executor.connect()
    finally:
        await executor.dispose()
    assert isinstance(raised.value, DBAPIError)
    fault = blame(raised.value)
    assert fault.blame is Blame.CELL
    assert "cellgate_no_such_database" in fault.message
