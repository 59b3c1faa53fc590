"""Pagination state: stores (Redis, Redis Cluster, in-process), key layout, and request
coalescing. Values are opaque bytes; imports nothing else of ours."""

from cache.keys import fingerprint, frontier_key, page_key
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
    "RedisStore",
    "SingleFlight",
    "Store",
    "StoreHooks",
    "StoreOp",
    "StoreStats",
    "create_store",
    "fingerprint",
    "frontier_key",
    "page_key",
]
