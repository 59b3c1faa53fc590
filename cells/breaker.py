"""The circuit breaker: one per cell, so a dead cell costs its deadline once, not every
request; and the same type in front of Redis and of the gateway's other services.

::

    closed ──(failures ≥ threshold, or any timeout)──▶ open
    open ──(cool-down elapsed: one caller gets the probe)──▶ half-open
    half-open ──success──▶ closed        half-open ──failure──▶ open

A timeout opens the breaker at once: it already cost a full deadline, and paying another
on the next request is exactly what the breaker exists to avoid. While open, callers skip
the cell without waiting; the cell is reported unavailable.

Replicas share what they learn (``gateway.sharedbreakers``). What this breaker finds out by
itself is an :data:`BreakerEvent` (counted in :attr:`Breaker.events`, the latest in
:attr:`Breaker.last_event`, ``on_event`` told at once), which the gateway publishes; what a
peer found reaches this breaker as:

- ``open`` (a peer's call or probe failed): :meth:`Breaker.trip` — open now, or already
  open, start the cool-down again, without paying the cell's deadline;
- ``probe`` (a peer is probing the cell): :meth:`Breaker.defer` — an open breaker starts its
  cool-down again, so that one probe at a time speaks for every replica;
- ``close`` (a peer's probe succeeded): :meth:`Breaker.hasten` — an open breaker's
  cool-down ends now: its next call is its own probe.

Each breaker still probes on its own: a peer never closes it. A breaker whose probe is in
flight ignores peers (its own probe decides). With ``spread``, each opening draws its
cool-down from ``[cooldown_s, cooldown_s × (1 + spread)]``, so the replicas that learnt of
one failure do not all probe at the same moment.

The breaker in front of Redis is one of these too: ``cache/`` imports nothing of ours, so
its store takes any object with this breaker's call-side methods
(:class:`cache.store.CallBreaker`, a Protocol) and the gateway's lifespan builds the
:class:`Breaker` it is given (and reports its state to metrics through ``on_event``).
:class:`BreakerState` is the one vocabulary of breaker states, cells' and Redis' alike.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

__all__ = ["Breaker", "BreakerEvent", "BreakerState"]

BreakerEvent = Literal["open", "probe", "close"]
"""What a breaker found out by itself: it opened (a failed call or probe), it granted a
probe, or a probe succeeded and it closed."""


class BreakerState(StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(slots=True)
class Breaker:
    """One cell's breaker; ``clock`` and ``draw`` (uniform in [0, 1)) are injectable for
    tests. ``opens`` counts the openings this process found out by itself (a failed call
    or probe), never those a peer told it of; ``events`` counts every
    :data:`BreakerEvent`."""

    failure_threshold: int = 2
    cooldown_s: float = 5.0
    clock: Callable[[], float] = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    spread: float = 0.0
    draw: Callable[[], float] = random.random
    opens: int = 0
    events: int = 0
    last_event: BreakerEvent | None = None
    on_event: Callable[[], None] | None = None  # told of each event (cheap, never raises)
    current_cooldown_s: float = 0.0  # this opening's cool-down (cooldown_s, maybe spread)

    def __post_init__(self) -> None:
        self.current_cooldown_s = self.cooldown_s

    def _now(self) -> float:
        return self.clock()

    def _event(self, event: BreakerEvent) -> None:
        self.events += 1
        self.last_event = event
        if self.on_event is not None:
            self.on_event()

    def _open(self, now: float) -> None:
        self.state = BreakerState.OPEN
        self.opened_at = now
        self.current_cooldown_s = self.cooldown_s * (1 + self.spread * self.draw())

    @property
    def skipping(self) -> bool:
        """Whether calls are being skipped right now (read-only: grants no probe)."""
        return (
            self.state is not BreakerState.CLOSED
            and self._now() - self.opened_at < self.current_cooldown_s
        )

    def allow(self) -> bool:
        """Whether a call may go to the cell now (grants the single half-open probe)."""
        match self.state:
            case BreakerState.CLOSED:
                return True
            case BreakerState.OPEN | BreakerState.HALF_OPEN:
                # One probe per cool-down: a probe whose caller vanished without reporting
                # (a cancelled request) does not wedge the breaker half-open forever.
                now = self._now()
                if now - self.opened_at >= self.current_cooldown_s:
                    self.state = BreakerState.HALF_OPEN
                    self.opened_at = now
                    self._event("probe")
                    return True
                return False

    def record_success(self) -> None:
        """A call succeeded: close."""
        was = self.state
        self.state = BreakerState.CLOSED
        self.failures = 0
        if was is not BreakerState.CLOSED:
            self._event("close")

    def record_failure(self, *, timed_out: bool) -> None:
        """A call failed (or timed out): count it, maybe open."""
        self.failures += 1
        if (
            timed_out
            or self.state is BreakerState.HALF_OPEN
            or self.failures >= self.failure_threshold
        ):
            opening = self.state is not BreakerState.OPEN
            self._open(self._now())
            if opening:
                self.opens += 1
                self._event("open")

    def trip(self) -> bool:
        """A peer found the cell failing: open now (already open: start the cool-down
        again), without counting it in :attr:`opens`. Ignored while this breaker's own
        probe is in flight (half-open, within a cool-down); returns whether the breaker
        moved."""
        now = self._now()
        if self.state is BreakerState.HALF_OPEN and now - self.opened_at < self.current_cooldown_s:
            return False
        self._open(now)
        return True

    def defer(self) -> bool:
        """A peer is probing the cell: an open breaker starts its cool-down again (no
        probe of its own meanwhile); whether it moved."""
        if self.state is not BreakerState.OPEN:
            return False
        self.opened_at = self._now()
        return True

    def hasten(self) -> bool:
        """A peer's probe succeeded: an open breaker's cool-down ends now, so its next call
        is its own probe; whether it moved."""
        if self.state is not BreakerState.OPEN:
            return False
        self.opened_at = self._now() - self.current_cooldown_s
        return True
