"""Pagination state: stores (Redis, Sentinel, Redis Cluster, in-process), key layout, and
request coalescing. Values are opaque bytes; imports nothing else of ours."""

from cache.keys import breaker_key, frontier_key, page_key
from cache.memory import MemoryStore
from cache.redisstore import RedisStore, create_store
from cache.redisurl import PlainRedis, RedisTarget, SentinelRedis, parse_redis_url
from cache.singleflight import SingleFlight
from cache.store import (
    REDIS_FAILURES_TO_OPEN,
    CallBreaker,
    CallResult,
    Store,
    StoreHooks,
    StoreOp,
    StoreStats,
)

__all__ = [
    "REDIS_FAILURES_TO_OPEN",
    "CallBreaker",
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
    "breaker_key",
    "create_store",
    "frontier_key",
    "page_key",
    "parse_redis_url",
]
