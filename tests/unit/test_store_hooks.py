"""cache.store: the Redis store tells its hooks of every call and every breaker move."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from cache import BreakerPhase, CallResult, RedisStore, StoreOp


class _Client:
    """A Redis client whose ``get`` fails while ``down`` (no I/O)."""

    def __init__(self) -> None:
        self.down = True

    async def get(self, key: str) -> bytes | None:
        if self.down:
            raise ConnectionError("refused")
        return b"value"


class _Hooks:
    def __init__(self) -> None:
        self.calls: list[tuple[StoreOp, CallResult]] = []
        self.phases: list[BreakerPhase] = []

    def call(self, op: StoreOp, result: CallResult) -> None:
        self.calls.append((op, result))

    def breaker(self, phase: BreakerPhase) -> None:
        self.phases.append(phase)


async def test_errors_open_a_probe_half_opens_a_success_closes() -> None:
    client, hooks = _Client(), _Hooks()
    store = RedisStore(
        cast(Redis, client), op_timeout_s=1, failures_to_open=2, cooldown_s=60, hooks=hooks
    )
    for _ in range(3):
        assert await store.get("k") is None
    assert hooks.calls == [("get", "error"), ("get", "error"), ("get", "skipped")]
    assert hooks.phases == ["open"]

    store._open_until = 0.0  # the cool-down is over
    client.down = False
    assert await store.get("k") == b"value"
    assert hooks.calls[-1] == ("get", "ok")
    assert hooks.phases == ["open", "half-open", "closed"]


async def test_a_failed_probe_opens_again() -> None:
    client, hooks = _Client(), _Hooks()
    store = RedisStore(cast(Redis, client), op_timeout_s=1, failures_to_open=1, hooks=hooks)
    await store.get("k")
    store._open_until = 0.0
    await store.get("k")
    assert hooks.calls == [("get", "error"), ("get", "error")]
    assert hooks.phases == ["open", "half-open", "open"]
