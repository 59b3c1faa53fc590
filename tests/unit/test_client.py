"""cells.client.CellClient on an in-memory executor (no I/O): typed outcomes, the breaker
(opening, half-open), the deadline (timed out vs slow, by the probe), connections of
cancelled or failed calls discarded, and CellsError as the only errors raised."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Hashable, Mapping

import pytest

from cells.apidb import ApiDatabase
from cells.breaker import Breaker, BreakerState
from cells.client import CellClient
from cells.details import Details
from cells.errors import ApiDatabaseUnavailable, CellsError, InvalidQuery
from cells.fanout import (
    CellDetails,
    CellFailed,
    CellRows,
    CellServer,
    CellSkipped,
    CellSlow,
    CellTimedOut,
)
from cells.filters import InstanceFilters
from cells.order import Direction, Row, SortSpec, SqlValue
from cells.plan import QueryPlan
from cells.registry import Cell
from tests.support.executors import PROBE, MemoryExecutor, hang

UUID = "0b5cfa43-2c51-4d4f-9a57-1d5c7e6f0a01"
DEADLINE_S = 0.2  # the probe then gets its floor (0.25 s): a hung call costs ~0.45 s
SPEC = SortSpec.build([("created_at", Direction.DESC)])
PLAN = QueryPlan(SPEC, InstanceFilters(), ("uuid", "display_name", "created_at"))


class Clock:
    """A monotonic clock moved by hand (the breaker's cool-down)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _client(
    executor: MemoryExecutor, clock: Clock | None = None, ping_interval_s: float = 0.0
) -> CellClient:
    breaker = Breaker(failure_threshold=2, cooldown_s=5.0, clock=clock or Clock())
    cell = Cell(1, "uuid-1", "cell1", "memory://")
    return CellClient(cell, executor, DEADLINE_S, breaker, ping_interval_s=ping_interval_s)


def _rows(n: int) -> list[Row]:
    return [{"uuid": f"u{i}", "display_name": f"vm{i}", "created_at": None} for i in range(n)]


def answering(by_key: Mapping[Hashable | None, list[Row]], probe: bool = True) -> MemoryExecutor:
    """An executor whose statements answer ``by_key`` (by prepare key, first element)."""

    async def answer(key: Hashable | None, values: Mapping[str, object]) -> list[Row]:
        if key == PROBE:
            return [{"anon_1": 1}] if probe else await hang()
        kind = key[0] if isinstance(key, tuple) and isinstance(key[0], str) else "keyset"
        return by_key.get(kind, [])

    return MemoryExecutor(answer)


def failing(error: BaseException, probe: bool = True) -> MemoryExecutor:
    """Every statement but the probe raises ``error``."""

    async def answer(key: Hashable | None, values: Mapping[str, object]) -> list[Row]:
        if key == PROBE:
            return [{"anon_1": 1}] if probe else await hang()
        raise error

    return MemoryExecutor(answer)


def hanging(probe: bool) -> MemoryExecutor:
    """Every statement but the probe hangs; the probe answers when ``probe``."""

    async def answer(key: Hashable | None, values: Mapping[str, object]) -> list[Row]:
        if key == PROBE and probe:
            return [{"anon_1": 1}]
        return await hang()

    return MemoryExecutor(answer)


async def _keyset(client: CellClient, n: int = 3) -> object:
    session = client.session()
    try:
        return await client.keyset(session, PLAN, None, n)
    finally:
        await session.close()


# --- outcomes ---------------------------------------------------------------------------


async def test_keyset_rows_and_one_compile_per_shape() -> None:
    executor = answering({"keyset": _rows(2)})
    client = _client(executor)
    session = client.session()
    first = await client.keyset(session, PLAN, None, 3)
    again = await client.keyset(session, PLAN, None, 3)
    await session.close()
    assert isinstance(first, CellRows)
    assert first.rows == _rows(2)
    assert first.exhausted  # fewer than asked
    assert again == CellRows(_rows(2), True, again.elapsed_ms)
    assert len(executor.conns) == 1  # one connection for the request's batches
    assert executor.conns[0].state == "released"
    assert len([key for key in executor.builds if key is not None]) == 1  # compiled once
    assert session.queries == 2
    assert session.rows_fetched == 4


async def test_marker_row_found_and_missing() -> None:
    row = {"project_id": "p", "created_at": None}
    found = await _client(answering({"marker": [row]})).marker_row(("created_at",), UUID)
    missing = await _client(answering({})).marker_row(("created_at",), UUID)
    assert isinstance(found, CellRows)
    assert found.rows == [row]
    assert isinstance(missing, CellRows)
    assert missing.rows == []


def _side(uuid: str) -> list[Row]:
    base: dict[str, SqlValue] = {"uuid": uuid, "id": None, "b": None, "number": None, "when": None}
    return [
        {**base, "kind": "metadata", "id": 2, "a": "role", "b": "db"},
        {**base, "kind": "metadata", "id": 1, "a": "env", "b": "prod"},
        {**base, "kind": "tags", "a": "blue"},
    ]


async def test_details_are_collected_per_uuid() -> None:
    executor = answering({"details": _side(UUID)})
    outcome = await _client(executor).details([UUID, "other"], (2, 26))
    assert isinstance(outcome, CellDetails)
    assert outcome.details[UUID] == Details(
        metadata=(("env", "prod"), ("role", "db")), tags=("blue",)
    )
    assert outcome.details["other"] == Details()
    assert executor.ran() == [("details", True, False, True)]


async def test_no_uuids_no_connection() -> None:
    executor = answering({})
    assert await _client(executor).details([], (2, 1)) == CellDetails({}, 0.0)
    assert executor.conns == []


async def test_server_reads_row_and_details_on_one_connection() -> None:
    row = {"uuid": UUID, "display_name": "vm"}
    executor = answering({"server": [row], "details": _side(UUID)})
    outcome = await _client(executor).server(UUID, "p", (2, 1))
    assert isinstance(outcome, CellServer)
    assert outcome.row == row
    assert outcome.details.metadata == (("env", "prod"), ("role", "db"))
    assert executor.ran() == [("server", True), ("details", False, False, False)]
    assert len(executor.conns) == 1
    assert executor.conns[0].ran[0][1] == {"uuid": UUID, "project_id": "p"}


async def test_server_not_in_cell() -> None:
    outcome = await _client(answering({})).server(UUID, None, (2, 1))
    assert outcome == CellServer(None, Details(), outcome.elapsed_ms)


# --- the breaker ------------------------------------------------------------------------


async def test_cell_errors_open_the_breaker_then_calls_skip_without_connecting() -> None:
    executor = MemoryExecutor(refuse=True)
    client = _client(executor)
    for _ in range(2):
        outcome = await _keyset(client)
        assert isinstance(outcome, CellFailed)
        assert "ConnectionRefusedError" in outcome.error
    assert client.breaker_state is BreakerState.OPEN
    assert client.skipping
    executor.refuse = False
    assert isinstance(await _keyset(client), CellSkipped)
    assert isinstance(await client.marker_row(("created_at",), UUID), CellSkipped)
    assert isinstance(await client.details([UUID], (2, 1)), CellSkipped)
    assert isinstance(await client.server(UUID, None, (2, 1)), CellSkipped)
    assert isinstance(await client.probe(), CellSkipped)
    assert executor.conns == []  # nothing reached the cell


async def test_half_open_lets_one_call_through_and_its_answer_decides() -> None:
    clock = Clock()
    executor = MemoryExecutor(refuse=True)
    client = _client(executor, clock)
    for _ in range(2):
        await _keyset(client)
    assert client.breaker_state is BreakerState.OPEN
    clock.now += 5.0  # the cool-down has passed: one call may try
    assert not client.skipping
    assert isinstance(await _keyset(client), CellFailed)  # the trial failed: open again
    assert client.breaker_state is BreakerState.OPEN
    assert isinstance(await _keyset(client), CellSkipped)
    clock.now += 5.0
    executor.refuse = False
    trial = asyncio.ensure_future(_keyset(client))
    await asyncio.sleep(0)
    assert client.breaker_state is BreakerState.HALF_OPEN
    assert isinstance(await _keyset(client), CellSkipped)  # only one trial per cool-down
    assert isinstance(await trial, CellRows)
    assert client.breaker_state is BreakerState.CLOSED


def _pinging(executor: MemoryExecutor, clock: Clock) -> CellClient:
    return _client(executor, clock, ping_interval_s=0.01)


async def _until(check: Callable[[], bool], timeout_s: float = 2.0) -> None:
    """Poll ``check`` (state the background pinger moves) until it holds."""
    async with asyncio.timeout(timeout_s):
        while not check():  # noqa: ASYNC110 - nothing to wait on: the pinger sets no event
            await asyncio.sleep(0.005)


async def test_pings_end_the_cooldown_once_the_cell_answers() -> None:
    # The clock never moves: only a ping can end this cool-down.
    clock = Clock()
    executor = MemoryExecutor(refuse=True)
    client = _pinging(executor, clock)
    for _ in range(2):
        await _keyset(client)
    assert client.breaker_state is BreakerState.OPEN
    opened = client._breaker.opened_at
    clock.now += 4.0
    await _until(lambda: client._breaker.opened_at > opened)  # a refused ping: deferred
    assert client.skipping
    assert client.pings_answered == 0
    assert isinstance(await _keyset(client), CellSkipped)
    executor.refuse = False  # the cell is back
    await _until(lambda: not client.skipping)
    assert client.pings_answered == 1
    assert client.breaker_state is BreakerState.OPEN  # a ping never closes it...
    assert isinstance(await _keyset(client), CellRows)  # ...the next call probes and does
    assert client.breaker_state is BreakerState.CLOSED


async def test_a_cell_that_answers_pings_but_fails_its_probe_waits_out_cool_downs() -> None:
    clock = Clock()
    client = _pinging(failing(ConnectionResetError(104, "reset")), clock)
    for _ in range(2):
        await _keyset(client)
    await _until(lambda: not client.skipping)  # SELECT 1 answers
    assert isinstance(await _keyset(client), CellFailed)  # the probe does not
    assert client.breaker_state is BreakerState.OPEN
    await asyncio.sleep(0.1)  # ten ping intervals: none ends this cool-down
    assert client.skipping
    assert client.pings_answered == 1
    clock.now += 5.0  # the cool-down does
    assert not client.skipping


async def test_no_pings_without_an_interval_and_none_after_dispose() -> None:
    clock = Clock()
    quiet = _client(MemoryExecutor(refuse=True), clock)
    for _ in range(2):
        await _keyset(quiet)
    await asyncio.sleep(0.05)
    assert quiet.skipping
    assert quiet._pinger is None
    executor = MemoryExecutor(refuse=True)
    pinging = _pinging(executor, clock)
    for _ in range(2):
        await _keyset(pinging)
    pinger = pinging._pinger
    assert pinger is not None
    assert not pinger.done()
    await pinging.dispose()
    await asyncio.sleep(0)
    assert pinger.cancelled()


async def test_detail_and_show_failures_reach_the_breaker() -> None:
    error = ConnectionResetError(104, "Connection reset by peer")
    details = _client(failing(error))
    for _ in range(2):
        assert isinstance(await details.details([UUID], (2, 1)), CellFailed)
    assert details.breaker_state is BreakerState.OPEN

    async def answer(key: Hashable | None, values: Mapping[str, object]) -> list[Row]:
        if key == ("server", False):
            return [{"uuid": UUID}]
        raise error  # the row came, its side data did not

    show = _client(MemoryExecutor(answer))
    for _ in range(2):
        assert isinstance(await show.server(UUID, None, (2, 1)), CellFailed)
    assert show.breaker_state is BreakerState.OPEN


async def test_probe_never_moves_the_breaker_but_warm_counts_a_failure() -> None:
    executor = MemoryExecutor(refuse=True)
    client = _client(executor)
    assert isinstance(await client.probe(), CellFailed)
    assert client.breaker_state is BreakerState.CLOSED
    assert not await client.warm()
    assert client._breaker.failures == 1
    executor.refuse = False
    assert await client.warm()


# --- the deadline -----------------------------------------------------------------------


async def test_a_hang_with_a_live_probe_is_slow_and_keeps_the_breaker_closed() -> None:
    executor = hanging(probe=True)
    client = _client(executor)
    outcome = await _keyset(client)
    assert isinstance(outcome, CellSlow)
    assert outcome.timeout_s == DEADLINE_S
    assert client.breaker_state is BreakerState.CLOSED
    call, probe = executor.conns
    assert call.state == "discarded"  # mid-query at the deadline: never back to the pool
    assert call.stopped  # the at-deadline action ran
    assert probe.ran == [(PROBE, {})]
    assert probe.state == "released"


async def test_a_hang_without_a_probe_answer_times_out_and_opens_the_breaker() -> None:
    executor = hanging(probe=False)
    client = _client(executor)
    outcome = await client.details([UUID], (2, 1))
    assert isinstance(outcome, CellTimedOut)
    assert client.breaker_state is BreakerState.OPEN  # one confirmed hang is enough
    assert all(conn.state == "discarded" for conn in executor.conns)


async def test_show_reads_its_side_data_within_what_is_left_of_the_deadline() -> None:
    async def answer(key: Hashable | None, values: Mapping[str, object]) -> list[Row]:
        if key == PROBE:
            return await hang()
        if key == ("server", False):
            await asyncio.sleep(DEADLINE_S * 0.6)
            return [{"uuid": UUID}]
        return await hang()

    loop = asyncio.get_running_loop()
    started = loop.time()
    outcome = await _client(MemoryExecutor(answer)).server(UUID, None, (2, 1))
    assert isinstance(outcome, CellTimedOut)
    assert outcome.timeout_s == DEADLINE_S  # the cell's deadline, not what was left of it
    # One deadline for both reads (plus the probe's floor), not one each.
    assert loop.time() - started < DEADLINE_S + 0.3
    assert outcome.elapsed_ms >= DEADLINE_S * 1000 * 0.9


async def test_a_cancelled_call_discards_its_connection() -> None:
    executor = hanging(probe=True)
    client = _client(executor)
    session = client.session()
    call = asyncio.ensure_future(client.keyset(session, PLAN, None, 3))
    await asyncio.sleep(0.01)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await session.close()
    (conn,) = executor.conns
    assert conn.state == "discarded"  # never released to the pool
    assert client.breaker_state is BreakerState.CLOSED  # a cancellation says nothing


# --- errors -----------------------------------------------------------------------------


async def test_a_client_fault_raises_and_spares_the_breaker() -> None:
    executor = failing(
        sqlite3.OperationalError("Expression tree is too large (maximum depth 1000)")
    )
    client = _client(executor)
    for call in _calls(client):
        with pytest.raises(InvalidQuery):
            await call()
    assert client.breaker_state is BreakerState.CLOSED
    assert client._breaker.failures == 0
    assert all(conn.state == "discarded" for conn in executor.conns)
    assert executor.distrusted == 0  # the pool's connections are fine


async def test_a_lost_connection_distrusts_the_pools_idle_ones() -> None:
    # A restarted server's idle pooled connections are dead too: the next calls must not
    # each find that out (tests/integration/test_pool_after_restart.py, on a real server).
    executor = MemoryExecutor(refuse=True)
    outcome = await _keyset(_client(executor))
    assert isinstance(outcome, CellFailed)
    assert executor.distrusted == 1


def _calls(client: CellClient) -> list[Callable[[], Awaitable[object]]]:
    return [
        lambda: _keyset(client),
        lambda: client.marker_row(("created_at",), UUID),
        lambda: client.details([UUID], (2, 1)),
        lambda: client.server(UUID, None, (2, 1)),
    ]


async def test_a_schema_fault_is_an_unavailable_cell_that_spares_the_breaker() -> None:
    executor = failing(sqlite3.OperationalError("no such column: instances.locked_by"))
    client = _client(executor)
    for call in _calls(client):
        outcome = await call()
        assert isinstance(outcome, CellFailed), outcome
        assert outcome.schema_fault == "missing_column"
        assert "locked_by" in outcome.error
    assert client.schema_fault == "missing_column: no such column: instances.locked_by"
    assert client.breaker_state is BreakerState.CLOSED
    assert client._breaker.failures == 0
    assert all(conn.state == "discarded" for conn in executor.conns)


@pytest.mark.parametrize(
    "executor",
    [
        MemoryExecutor(refuse=True),
        failing(sqlite3.OperationalError("no such table: instance_mappings")),
        hanging(probe=False),
    ],
    ids=["refused", "schema", "hung"],
)
async def test_api_database_failures_are_one_error(executor: MemoryExecutor) -> None:
    api = ApiDatabase(executor, timeout_s=DEADLINE_S)
    with pytest.raises(ApiDatabaseUnavailable) as raised:
        await api.mapping(UUID)
    assert isinstance(raised.value, CellsError)
    assert all(conn.state == "discarded" for conn in executor.conns)


async def test_dispose_closes_the_pool() -> None:
    executor = answering({})
    await _client(executor).dispose()
    assert executor.disposed
