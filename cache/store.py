"""What a key-value store for pagination state is: :class:`Store`, its :class:`StoreStats`,
the hooks a Redis store tells of its calls and the breaker it runs behind. The stores:
:class:`~cache.memory.MemoryStore` (in-process) and :class:`~cache.redisstore.RedisStore`
(Redis: single, Sentinel's primary, or Redis Cluster); :func:`~cache.redisstore.create_store`
picks one.

Redis is an accelerator, never a dependency of correctness: every call runs under a short
timeout, any error counts as a miss (or a dropped write), and a breaker stops calling a
Redis that keeps failing (:data:`REDIS_FAILURES_TO_OPEN` in a row) for its cool-down, so a
dead or black-holed server costs at most one timeout per cool-down, not one per request.
While Redis does not answer, what the process would have written there goes to a bounded
in-process store, and reads Redis cannot answer look there: a walk that stays on one
process keeps resuming from its frontiers through a Redis outage.

The breaker is the cells' (``cells.Breaker``): one breaker type in the tree. This package
imports nothing of ours, and ``cells/`` never imports it, so the store does not build its
breaker: it is given one, typed here by what the store asks of it (:class:`CallBreaker`),
and the gateway's lifespan builds it and watches its state (``cells.BreakerState``, the one
vocabulary, exported to metrics with the cells' breakers). A shared third package for one
class would have been a new top-level room; injecting keeps every import arrow as it was.

What Redis did reaches metrics through :class:`StoreHooks`, so this package needs no
metrics library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "REDIS_FAILURES_TO_OPEN",
    "CallBreaker",
    "CallResult",
    "Store",
    "StoreHooks",
    "StoreOp",
    "StoreStats",
]


@dataclass(slots=True)
class StoreStats:
    """What the store did (for metrics and tests)."""

    hits: int = 0
    misses: int = 0
    errors: int = 0
    skipped: int = 0  # calls not made because the breaker was open
    writes: int = 0
    fallback_hits: int = 0  # Redis did not answer; this process's own copy did


StoreOp = Literal["get", "set"]
CallResult = Literal["ok", "error", "skipped"]  # skipped: the breaker was open

REDIS_FAILURES_TO_OPEN = 3
"""Failed Redis calls in a row that open its breaker. Each failure counts alike, timeouts
included (a cell's breaker opens at once on a timeout: that cost a cell's deadline; a
Redis timeout costs tens of milliseconds)."""


class CallBreaker(Protocol):
    """What the Redis store asks of its breaker: ``cells.Breaker`` (closed → open after
    failures → one half-open probe per cool-down), built and watched by the gateway."""

    @property
    def skipping(self) -> bool:
        """Whether calls are being skipped right now (grants no probe)."""
        ...

    @property
    def current_cooldown_s(self) -> float:
        """How long the current opening skips calls."""
        ...

    def allow(self) -> bool:
        """Whether a call may go now (after the cool-down: the one probe)."""
        ...

    def record_success(self) -> None:
        """A call succeeded."""
        ...

    def record_failure(self, *, timed_out: bool) -> None:
        """A call failed (``timed_out``: ran into its timeout)."""
        ...


class StoreHooks(Protocol):
    """Told of every Redis call (for metrics). Called inline on the request path: must be
    cheap and must not raise. The breaker's moves are told by the breaker itself."""

    def call(self, op: StoreOp, result: CallResult) -> None:
        """One call ended (``skipped``: not made, the breaker was open)."""
        ...


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
