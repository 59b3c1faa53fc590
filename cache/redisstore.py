"""The Redis store (single node, Sentinel's primary, or Redis Cluster) behind short
timeouts, error-as-miss and a breaker (:mod:`cache.store` says why it is given one), and
:func:`create_store`, which picks it or the in-process store."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from redis.asyncio import Redis, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from cache.memory import MemoryStore
from cache.redisurl import PlainRedis, SentinelRedis, parse_redis_url
from cache.store import CallBreaker, CallResult, Store, StoreHooks, StoreOp, StoreStats

__all__ = ["RedisStore", "create_store"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class _NoHooks:
    def call(self, op: StoreOp, result: CallResult) -> None:
        pass


class RedisStore:
    """Redis (single node, Sentinel's primary or cluster) behind timeouts, error-as-miss and
    ``breaker``. With ``sentinel``, the client is its primary's: a failover costs the calls
    that meet the old primary (errors, so misses, maybe opening the breaker), and the next
    connection asks the Sentinels where the primary is now."""

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        op_timeout_s: float,
        breaker: CallBreaker,
        jitter: float = 0.1,
        init_timeout_s: float = 1.0,
        hooks: StoreHooks | None = None,
        sentinel: Sentinel | None = None,
        fallback: MemoryStore | None = None,
    ) -> None:
        self.client = client
        # Written only while Redis does not answer, read only then; emptied by the first
        # write Redis takes again (from then on Redis holds the state).
        self.fallback = fallback
        self._fallback_held = False
        self.sentinel = sentinel
        self.hooks: StoreHooks = hooks or _NoHooks()
        self.op_timeout_s = op_timeout_s
        # A cluster client maps all 16384 slots on its first command (~75 ms of CPU even
        # locally): under the per-call budget that first call would always fail.
        self.init_timeout_s = init_timeout_s
        self._uninitialised_cluster = isinstance(client, RedisCluster)
        self.breaker = breaker
        self.jitter = jitter
        self.stats = StoreStats()

    @property
    def open(self) -> bool:
        """Whether the breaker currently skips Redis."""
        return self.breaker.skipping

    def _ttl_ms(self, ttl_s: float) -> int:
        # Jitter spreads the expiry of keys written together (a burst of walks).
        return max(1, int(ttl_s * 1000 * (1 + random.uniform(0, self.jitter))))

    async def _call(self, op: StoreOp, call: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        if not self.breaker.allow():  # after the cool-down, this call is the probe
            self.stats.skipped += 1
            self.hooks.call(op, "skipped")
            return False, None
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
            self.breaker.record_failure(timed_out=False)  # see REDIS_FAILURES_TO_OPEN
            if self.breaker.skipping:
                cooldown_s = self.breaker.current_cooldown_s
                log.warning("redis breaker open for %.1f s after %r", cooldown_s, exc)
            return False, None
        self.hooks.call(op, "ok")
        self.breaker.record_success()
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
        if self.fallback is None or not self._fallback_held:
            return None
        value = await self.fallback.get(key, slide_s)
        if value is not None:
            self.stats.fallback_hits += 1
        return value

    async def _beside(self, call: Callable[[], Awaitable[T]]) -> tuple[bool, T | None]:
        """A call beside the request path (what replicas share, ``gateway.sharedbreakers``):
        skipped while the breaker is open, under the same timeout, but never moving the
        breaker nor counted in :attr:`stats` or the hooks — those describe the requests."""
        if self.open or self._uninitialised_cluster:
            return False, None
        try:
            async with asyncio.timeout(self.op_timeout_s):
                return True, await call()
        except Exception:  # timeouts and every redis error: not this time
            return False, None

    async def read_shared(self, keys: list[str]) -> list[bytes | None] | None:
        """The values of ``keys`` (``None`` where absent) in one ``MGET``, or ``None`` when
        Redis did not answer (:meth:`_beside`). On a cluster the keys share a hash tag."""
        ok, values = await self._beside(lambda: self.client.mget(keys))
        if not ok or not isinstance(values, list):
            return None
        return [v if isinstance(v, bytes) else None for v in values]

    async def write_shared(self, key: str, value: bytes, ttl_s: float) -> None:
        """Store ``value`` for ``ttl_s`` seconds, best effort (:meth:`_beside`)."""
        await self._beside(lambda: self.client.set(key, value, px=max(1, int(ttl_s * 1000))))

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        ok, _ = await self._call("set", lambda: self.client.set(key, value, px=self._ttl_ms(ttl_s)))
        if ok:
            self.stats.writes += 1
            if self._fallback_held and self.fallback is not None:
                self._fallback_held = False
                await self.fallback.close()
        elif self.fallback is not None:
            self._fallback_held = True
            await self.fallback.set(key, value, ttl_s)

    async def close(self) -> None:
        if self.fallback is not None:
            await self.fallback.close()
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
    breaker: CallBreaker,
    max_memory_entries: int,
    max_memory_bytes: int = 64 * 2**20,
    hooks: StoreHooks | None = None,
    fallback_max_bytes: int = 8 * 2**20,
) -> Store:
    """A :class:`RedisStore` for ``redis_url`` (a Sentinel URL, :mod:`cache.redisurl`:
    its primary; cluster mode if asked) behind ``breaker``, telling ``hooks`` what Redis
    does, with an in-process copy of at most ``fallback_max_bytes`` (0: none) read while
    Redis does not answer; else memory (``breaker`` unused)."""
    if not redis_url:
        return MemoryStore(max_entries=max_memory_entries, max_bytes=max_memory_bytes)
    # Its own byte bound: a copy as large as the memory store's (64 MiB) raised a chaos
    # run's gateway RSS 1.4x over its warm-up in the first Redis outage (two workers).
    memory = (
        MemoryStore(max_entries=max_memory_entries, max_bytes=fallback_max_bytes)
        if fallback_max_bytes > 0
        else None
    )
    target = parse_redis_url(redis_url)
    if isinstance(target, SentinelRedis):
        if cluster:
            raise ValueError("redis_cluster cannot be used with a Sentinel URL")
        log.info("redis: %r", target)
        primary, sentinel = _sentinel_client(target, op_timeout_s, connect_timeout_s)
        return RedisStore(
            primary,
            op_timeout_s=op_timeout_s,
            breaker=breaker,
            hooks=hooks,
            sentinel=sentinel,
            fallback=memory,
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
    return RedisStore(
        client, op_timeout_s=op_timeout_s, breaker=breaker, hooks=hooks, fallback=memory
    )
