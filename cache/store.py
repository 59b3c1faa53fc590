"""Key-value stores for pagination state: Redis (single, Sentinel's primary, or Redis
Cluster) and in-process.

Both satisfy :class:`Store`. Redis is an accelerator, never a dependency of correctness:
every call runs under a short timeout, any error counts as a miss (or a dropped write), and
a small breaker stops calling a Redis that keeps failing for ``cooldown_s`` so a dead or
black-holed server costs at most one timeout per cool-down, not one per request.

What Redis did reaches metrics through :class:`StoreHooks`, so this package needs no
metrics library.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeVar

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from cache.redisurl import PlainRedis, SentinelRedis, parse_redis_url

__all__ = [
    "BreakerPhase",
    "CallResult",
    "MemoryStore",
    "RedisStore",
    "Store",
    "StoreHooks",
    "StoreOp",
    "StoreStats",
    "create_store",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(slots=True)
class StoreStats:
    """What the store did (for metrics and tests)."""

    hits: int = 0
    misses: int = 0
    errors: int = 0
    skipped: int = 0  # calls not made because the breaker was open
    writes: int = 0


StoreOp = Literal["get", "set"]
CallResult = Literal["ok", "error", "skipped"]  # skipped: the breaker was open
BreakerPhase = Literal["closed", "half-open", "open"]


class StoreHooks(Protocol):
    """Told of every Redis call and every change of the breaker (for metrics). Called
    inline on the request path: must be cheap and must not raise."""

    def call(self, op: StoreOp, result: CallResult) -> None:
        """One call ended (``skipped``: not made, the breaker was open)."""
        ...

    def breaker(self, phase: BreakerPhase) -> None:
        """The breaker moved to ``phase`` (``half-open``: a probe after the cool-down)."""
        ...


class _NoHooks:
    def call(self, op: StoreOp, result: CallResult) -> None:
        pass

    def breaker(self, phase: BreakerPhase) -> None:
        pass


class Store(Protocol):
    """A byte store with per-key TTL. ``get`` with a ``slide_s`` slides the TTL of what it
    finds (frontiers: a walk in progress stays cached); without, the expiry stays absolute
    from the write (the page cache: a polled page must still go stale)."""

    stats: StoreStats

    async def get(self, key: str, slide_s: float | None = None) -> bytes | None:
        """The value (its TTL reset to ``slide_s`` when given), or ``None``."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store ``value`` for ``ttl_s`` seconds (best effort)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


@dataclass(slots=True)
class MemoryStore:
    """A bounded in-process store (embedded demo, no Redis configured): at most
    ``max_entries`` values of at most ``max_bytes`` in all, the least recently used going
    first; expired values are dropped when read, and when they reach the old end of the
    recency order.

    The byte bound is what holds memory: pages are ~100-200 KB each, and with only a count
    bound 10,000 cached pages (every walk page has its own key) grew a soak's gateway past
    400 MiB in a minute, expired pages staying until their key was read again.
    """

    max_entries: int = 10_000
    max_bytes: int = 64 * 2**20
    stats: StoreStats = field(default_factory=StoreStats)
    _data: OrderedDict[str, tuple[float, bytes]] = field(default_factory=OrderedDict)
    _bytes: int = 0

    @property
    def size_bytes(self) -> int:
        """The bytes of the values held."""
        return self._bytes

    def _drop(self, key: str) -> None:
        self._bytes -= len(self._data.pop(key)[1])

    async def get(self, key: str, slide_s: float | None = None) -> bytes | None:
        entry = self._data.get(key)
        now = time.monotonic()
        if entry is None or entry[0] < now:
            if entry is not None:
                self._drop(key)
            self.stats.misses += 1
            return None
        if slide_s is not None:
            self._data[key] = (now + slide_s, entry[1])
        self._data.move_to_end(key)
        self.stats.hits += 1
        return entry[1]

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        now = time.monotonic()
        if key in self._data:
            self._drop(key)
        self._data[key] = (now + ttl_s, value)
        self._bytes += len(value)
        self.stats.writes += 1
        while self._data:
            oldest, (expires, _) = next(iter(self._data.items()))
            over = len(self._data) > self.max_entries or self._bytes > self.max_bytes
            if not over and expires >= now:
                break
            self._drop(oldest)

    async def close(self) -> None:
        self._data.clear()
        self._bytes = 0


class RedisStore:
    """Redis (single node, Sentinel's primary or cluster) behind timeouts, error-as-miss and
    a breaker. With ``sentinel``, the client is its primary's: a failover costs the calls
    that meet the old primary (errors, so misses, maybe opening the breaker), and the next
    connection asks the Sentinels where the primary is now."""

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        op_timeout_s: float,
        failures_to_open: int = 3,
        cooldown_s: float = 5.0,
        jitter: float = 0.1,
        init_timeout_s: float = 1.0,
        hooks: StoreHooks | None = None,
        sentinel: Sentinel | None = None,
    ) -> None:
        self.client = client
        self.sentinel = sentinel
        self.hooks: StoreHooks = hooks or _NoHooks()
        self.op_timeout_s = op_timeout_s
        # A cluster client maps all 16384 slots on its first command (~75 ms of CPU even
        # locally): under the per-call budget that first call would always fail.
        self.init_timeout_s = init_timeout_s
        self._uninitialised_cluster = isinstance(client, RedisCluster)
        self.failures_to_open = failures_to_open
        self.cooldown_s = cooldown_s
        self.jitter = jitter
        self.stats = StoreStats()
        self._failures = 0
        self._open_until = 0.0
        self._phase: BreakerPhase = "closed"

    @property
    def open(self) -> bool:
        """Whether the breaker currently skips Redis."""
        return time.monotonic() < self._open_until

    def _ttl_ms(self, ttl_s: float) -> int:
        # Jitter spreads the expiry of keys written together (a burst of walks).
        return max(1, int(ttl_s * 1000 * (1 + random.uniform(0, self.jitter))))

    def _move(self, phase: BreakerPhase) -> None:
        if phase != self._phase:
            self._phase = phase
            self.hooks.breaker(phase)

    async def _call(self, op: StoreOp, call: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        if self.open:
            self.stats.skipped += 1
            self.hooks.call(op, "skipped")
            return False, None
        if self._failures >= self.failures_to_open:
            self._move("half-open")  # the cool-down is over: this call is the probe
        try:
            if self._uninitialised_cluster:
                async with asyncio.timeout(self.init_timeout_s):
                    await self.client.initialize()
                self._uninitialised_cluster = False
            async with asyncio.timeout(self.op_timeout_s):
                value = await call()
        except Exception as exc:  # timeouts and every redis error are a miss
            self.stats.errors += 1
            self.hooks.call(op, "error")
            self._failures += 1
            if self._failures >= self.failures_to_open:
                self._open_until = time.monotonic() + self.cooldown_s
                self._move("open")
                log.warning("redis breaker open for %.1f s after %r", self.cooldown_s, exc)
            return False, None
        self._failures = 0
        self.hooks.call(op, "ok")
        self._move("closed")
        return True, value

    async def get(self, key: str, slide_s: float | None = None) -> bytes | None:
        if slide_s is None:
            ok, value = await self._call("get", lambda: self.client.get(key))
        else:
            ok, value = await self._call(
                "get", lambda: self.client.getex(key, px=self._ttl_ms(slide_s))
            )
        if ok and isinstance(value, bytes):
            self.stats.hits += 1
            return value
        if ok:
            self.stats.misses += 1
        return None

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        ok, _ = await self._call("set", lambda: self.client.set(key, value, px=self._ttl_ms(ttl_s)))
        if ok:
            self.stats.writes += 1

    async def close(self) -> None:
        await self.client.aclose()
        if self.sentinel is not None:
            await self.sentinel.aclose()


def _sentinel_client(
    target: SentinelRedis, op_timeout_s: float, connect_timeout_s: float
) -> tuple[Redis, Sentinel]:
    """The client of ``target``'s primary, and the Sentinel it asks (both to close)."""
    sentinel_kwargs: dict[str, object] = {
        "socket_timeout": op_timeout_s,
        "socket_connect_timeout": connect_timeout_s,
        "retry": Retry(NoBackoff(), 0),
        "ssl": target.ssl,
        "username": target.sentinel_username,
        "password": target.sentinel_password,
    }
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)
    client = sentinel.master_for(
        target.service,
        username=target.username,
        password=target.password,
        db=target.db,
        ssl=target.ssl,
        socket_timeout=op_timeout_s,
        socket_connect_timeout=connect_timeout_s,
        retry=Retry(NoBackoff(), 0),
    )
    return client, sentinel


def create_store(
    redis_url: str | None,
    *,
    cluster: bool,
    op_timeout_s: float,
    connect_timeout_s: float,
    cooldown_s: float,
    max_memory_entries: int,
    max_memory_bytes: int = 64 * 2**20,
    hooks: StoreHooks | None = None,
) -> Store:
    """A :class:`RedisStore` for ``redis_url`` (a Sentinel URL, :mod:`cache.redisurl`:
    its primary; cluster mode if asked), telling ``hooks`` what Redis does; else memory."""
    if not redis_url:
        return MemoryStore(max_entries=max_memory_entries, max_bytes=max_memory_bytes)
    target = parse_redis_url(redis_url)
    if isinstance(target, SentinelRedis):
        if cluster:
            raise ValueError("redis_cluster cannot be used with a Sentinel URL")
        log.info("redis: %r", target)
        primary, sentinel = _sentinel_client(target, op_timeout_s, connect_timeout_s)
        return RedisStore(
            primary,
            op_timeout_s=op_timeout_s,
            cooldown_s=cooldown_s,
            hooks=hooks,
            sentinel=sentinel,
        )
    assert isinstance(target, PlainRedis)
    client: Redis | RedisCluster
    if cluster:
        client = RedisCluster.from_url(
            redis_url,
            socket_timeout=op_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
    else:
        client = Redis.from_url(
            redis_url,
            socket_timeout=op_timeout_s,
            socket_connect_timeout=connect_timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
    return RedisStore(client, op_timeout_s=op_timeout_s, cooldown_s=cooldown_s, hooks=hooks)
