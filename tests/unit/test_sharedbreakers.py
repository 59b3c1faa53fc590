"""gateway.sharedbreakers: processes sharing what their breakers find out through one store
(a MemoryStore standing for the Redis they share; no I/O). A breaker opened in one process
opens in the others on their next tick without their paying the deadline; a peer's probe
holds the others' probes off; a peer's success makes the others probe on their own (never
closes them); a store that does not answer leaves each process on its own."""

from __future__ import annotations

import asyncio

from cache import MemoryStore, breaker_key
from cells.breaker import Breaker, BreakerState
from cells.client import CellClient
from cells.fanout import CellSkipped, CellTimedOut
from cells.order import Row
from cells.registry import Cell
from gateway.sharedbreakers import SharedBreakers, ShareDirection
from tests.support.executors import MemoryExecutor, hang

CELL = Cell(1, "uuid-1", "cell1", "memory://")
OTHER = Cell(2, "uuid-2", "cell2", "memory://")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _hung(key: object, values: object) -> list[Row]:
    return await hang()  # the probe too: a frozen server


def _client(cell: Cell, clock: Clock, executor: MemoryExecutor | None = None) -> CellClient:
    breaker = Breaker(failure_threshold=2, cooldown_s=5.0, clock=clock)
    return CellClient(cell, executor or MemoryExecutor(), 0.05, breaker)


class Peer:
    """One process: its clients and its side of the sharing."""

    def __init__(self, store: MemoryStore, name: str, clock: Clock, hung: bool = False) -> None:
        executor = MemoryExecutor(_hung) if hung else None
        self.clients = [_client(CELL, clock, executor), _client(OTHER, clock)]
        self.events: list[tuple[str, ShareDirection]] = []
        self.sharing = SharedBreakers(
            store,
            self.clients,
            "test",
            0.01,
            on_share=lambda label, direction: self.events.append((label, direction)),
            process_id=name,
        )


async def test_an_opening_reaches_the_peers_and_only_openings_do() -> None:
    store, clock = MemoryStore(), Clock()
    a, b = Peer(store, "a", clock, hung=True), Peer(store, "b", clock)
    await a.sharing.tick()
    await b.sharing.tick()
    assert b.clients[0].breaker_state is BreakerState.CLOSED  # nothing to share yet

    assert isinstance(await a.clients[0].marker_row(("uuid",), "x"), CellTimedOut)
    assert a.clients[0].breaker_opens == 1
    await a.sharing.tick()
    assert a.events == [("cell1", "sent")]
    assert await store.get(breaker_key("test", "uuid-1")) == b"a:1:open"
    await b.sharing.tick()
    assert b.events == [("cell1", "received")]
    assert b.clients[0].breaker_state is BreakerState.OPEN
    assert b.clients[1].breaker_state is BreakerState.CLOSED  # the other cell untouched
    assert b.clients[0].breaker_opens == 0  # not published again by b
    # b's first call skips the cell: no deadline paid.
    assert isinstance(await b.clients[0].marker_row(("uuid",), "x"), CellSkipped)
    await b.sharing.tick()
    await a.sharing.tick()
    assert b.events == [("cell1", "received")]  # the same news once
    assert a.events == [("cell1", "sent")]  # a ignores its own key
    assert a.clients[0].breaker_state is BreakerState.OPEN


async def test_each_probes_on_its_own_and_a_peers_success_only_hastens_it() -> None:
    store, clock = MemoryStore(), Clock()
    a, b = Peer(store, "a", clock, hung=True), Peer(store, "b", clock)
    await a.clients[0].marker_row(("uuid",), "x")
    await a.sharing.tick()
    await b.sharing.tick()
    clock.now += 5.0
    # b's own probe (a healthy executor here): it closes b's breaker, not a's.
    assert not isinstance(await b.clients[0].marker_row(("uuid",), "x"), CellSkipped)
    assert b.clients[0].breaker_state is BreakerState.CLOSED
    assert await store.get(breaker_key("test", "uuid-1")) is not None
    await b.sharing.tick()
    assert await store.get(breaker_key("test", "uuid-1")) == b"b:2:close"
    clock.now -= 4.0  # as if a's cool-down had 4 s to go when b's news came
    a.clients[0]._breaker.opened_at = clock.now
    await a.sharing.tick()
    assert a.clients[0].breaker_state is BreakerState.OPEN  # a peer never closes it
    assert ("cell1", "received") in a.events
    # ... but a's next call is its own probe (hung here: a pays its deadline and reopens).
    assert isinstance(await a.clients[0].marker_row(("uuid",), "x"), CellTimedOut)
    assert b.clients[0].breaker_state is BreakerState.CLOSED  # a's old key is not news


async def test_a_peers_probe_holds_the_others_probes_off() -> None:
    store, clock = MemoryStore(), Clock()
    a, b = Peer(store, "a", clock, hung=True), Peer(store, "b", clock, hung=True)
    await a.clients[0].marker_row(("uuid",), "x")
    await a.sharing.tick()
    await b.sharing.tick()
    assert b.clients[0].breaker_state is BreakerState.OPEN
    clock.now += 5.0
    probe = asyncio.create_task(a.clients[0].marker_row(("uuid",), "x"))  # a probes
    await asyncio.sleep(0)
    await a.sharing.publish()
    assert (await store.get(breaker_key("test", "uuid-1")) or b"").endswith(b":probe")
    await b.sharing.tick()
    # b's cool-down started again: it skips instead of probing alongside a.
    assert isinstance(await b.clients[0].marker_row(("uuid",), "x"), CellSkipped)
    assert isinstance(await probe, CellTimedOut)


async def test_a_failed_probe_restarts_the_peers_cooldown() -> None:
    store, clock = MemoryStore(), Clock()
    a, b = Peer(store, "a", clock, hung=True), Peer(store, "b", clock)
    await a.clients[0].marker_row(("uuid",), "x")
    await a.sharing.tick()
    await b.sharing.tick()
    clock.now += 5.0
    assert isinstance(await a.clients[0].marker_row(("uuid",), "x"), CellTimedOut)  # probe
    assert a.clients[0].breaker_opens == 2
    await a.sharing.tick()
    assert await store.get(breaker_key("test", "uuid-1")) == b"a:3:open"
    await b.sharing.tick()
    assert b.events == [("cell1", "received"), ("cell1", "received")]
    # b's cool-down started again: no probe of its own yet.
    assert isinstance(await b.clients[0].marker_row(("uuid",), "x"), CellSkipped)


class Silent:
    """A store that never answers (Redis down, or its breaker open)."""

    def __init__(self) -> None:
        self.sets = 0

    async def read_shared(self, keys: list[str]) -> list[bytes | None] | None:
        return None

    async def write_shared(self, key: str, value: bytes, ttl_s: float) -> None:
        self.sets += 1


async def test_without_an_answering_store_each_process_stays_on_its_own() -> None:
    store, clock = Silent(), Clock()
    a = Peer(MemoryStore(), "a", clock, hung=True)
    a.sharing.store = store
    await a.clients[0].marker_row(("uuid",), "x")
    await a.sharing.tick()
    assert store.sets == 1
    assert a.clients[0].breaker_state is BreakerState.OPEN
    assert a.clients[1].breaker_state is BreakerState.CLOSED


async def test_run_keeps_ticking_after_an_error() -> None:
    third = asyncio.Event()

    class Broken(Silent):
        async def read_shared(self, keys: list[str]) -> list[bytes | None] | None:
            self.sets += 1
            if self.sets == 3:
                third.set()
            raise RuntimeError("boom")

    store = Broken()
    peer = Peer(MemoryStore(), "a", Clock())
    peer.sharing.store = store
    task = asyncio.create_task(peer.sharing.run())
    await asyncio.wait_for(third.wait(), 10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_what_start_up_found_is_shared_too() -> None:
    store, clock = MemoryStore(), Clock()
    hung = MemoryExecutor(_hung)
    starting = [_client(CELL, clock, hung), _client(OTHER, clock)]
    assert not await starting[0].warm()  # the cell did not answer at start-up
    sharing = SharedBreakers(store, starting, "test", 0.01, process_id="a")
    b = Peer(store, "b", clock)
    await sharing.tick()
    await b.sharing.tick()
    assert b.clients[0].breaker_state is BreakerState.OPEN
