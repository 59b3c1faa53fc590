"""Pagination state: stores (Redis, Sentinel, Redis Cluster, in-process), key layout, and
request coalescing. Values are opaque bytes; imports nothing else of ours."""

from cache.keys import fingerprint, frontier_key, page_key
from cache.redisurl import PlainRedis, RedisTarget, SentinelRedis, parse_redis_url
from cache.singleflight import SingleFlight
from cache.store import (
    BreakerPhase,
    CallResult,
    MemoryStore,
    RedisStore,
    Store,
    StoreHooks,
    StoreOp,
    StoreStats,
    create_store,
)

__all__ = [
    "BreakerPhase",
    "CallResult",
    "MemoryStore",
    "PlainRedis",
    "RedisStore",
    "RedisTarget",
    "SentinelRedis",
    "SingleFlight",
    "Store",
    "StoreHooks",
    "StoreOp",
    "StoreStats",
    "create_store",
    "fingerprint",
    "frontier_key",
    "page_key",
    "parse_redis_url",
]
