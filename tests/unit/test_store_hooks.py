"""cache.store: the Redis store tells its hooks of every call, and moves the breaker it is
given (the cells' type) as the calls go."""

from __future__ import annotations

import asyncio
from typing import cast

from redis.asyncio import Redis

from cache import CallResult, RedisStore, StoreOp
from cells.breaker import Breaker, BreakerState


class _Client:
    """A Redis client whose ``get`` fails while ``down`` (no I/O)."""

    def __init__(self) -> None:
        self.down = True
        self.gate: asyncio.Event | None = None  # when set, calls wait for it

    async def get(self, key: str) -> bytes | None:
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ConnectionError("refused")
        return b"value"


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Hooks:
    """The store's hooks, and the states its breaker moved to (as the gateway wires it)."""

    def __init__(self, failures_to_open: int, cooldown_s: float = 5.0) -> None:
        self.calls: list[tuple[StoreOp, CallResult]] = []
        self.phases: list[BreakerState] = []
        self.clock = _Clock()
        self.breaker = Breaker(failures_to_open, cooldown_s, self.clock)
        self.breaker.on_event = lambda: self.phases.append(self.breaker.state)

    def call(self, op: StoreOp, result: CallResult) -> None:
        self.calls.append((op, result))


async def test_errors_open_a_probe_half_opens_a_success_closes() -> None:
    client, hooks = _Client(), _Hooks(failures_to_open=2, cooldown_s=60)
    store = RedisStore(cast(Redis, client), op_timeout_s=1, breaker=hooks.breaker, hooks=hooks)
    for _ in range(3):
        assert await store.get("k") is None
    assert hooks.calls == [("get", "error"), ("get", "error"), ("get", "skipped")]
    assert hooks.phases == ["open"]

    hooks.clock.now += 60  # the cool-down is over
    client.down = False
    assert await store.get("k") == b"value"
    assert hooks.calls[-1] == ("get", "ok")
    assert hooks.phases == ["open", "half-open", "closed"]


async def test_a_failed_probe_opens_again() -> None:
    client, hooks = _Client(), _Hooks(failures_to_open=1)
    store = RedisStore(cast(Redis, client), op_timeout_s=1, breaker=hooks.breaker, hooks=hooks)
    await store.get("k")
    hooks.clock.now += 5  # the cool-down is over
    await store.get("k")
    assert hooks.calls == [("get", "error"), ("get", "error")]
    assert hooks.phases == ["open", "half-open", "open"]


async def test_after_the_cool_down_one_call_probes_and_the_others_skip() -> None:
    # One breaker type (cells.Breaker): its single half-open probe holds for Redis too, so
    # a Redis still dead costs one timeout per cool-down even under concurrent requests.
    client, hooks = _Client(), _Hooks(failures_to_open=1)
    store = RedisStore(cast(Redis, client), op_timeout_s=1, breaker=hooks.breaker, hooks=hooks)
    await store.get("k")
    hooks.clock.now += 5
    client.down = False
    client.gate = gate = asyncio.Event()
    probe = asyncio.ensure_future(store.get("k"))
    await asyncio.sleep(0)
    assert await store.get("k") is None  # skipped while the probe is in flight
    gate.set()
    assert await probe == b"value"
    assert hooks.calls[1:] == [("get", "skipped"), ("get", "ok")]
    assert hooks.phases == ["open", "half-open", "closed"]
