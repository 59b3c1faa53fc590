"""Pagination state: stores (Redis, Redis Cluster, in-process), frontier encoding, and
request coalescing. Imports nothing else of ours."""

from cache.frontier import (
    CellFrontier,
    Frontier,
    decode_frontier,
    encode_frontier,
    fingerprint,
    frontier_key,
    page_key,
)
from cache.singleflight import SingleFlight
from cache.store import MemoryStore, RedisStore, Store, StoreStats, create_store

__all__ = [
    "CellFrontier",
    "Frontier",
    "MemoryStore",
    "RedisStore",
    "SingleFlight",
    "Store",
    "StoreStats",
    "create_store",
    "decode_frontier",
    "encode_frontier",
    "fingerprint",
    "frontier_key",
    "page_key",
]
