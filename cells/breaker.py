"""A circuit breaker per cell, so a dead cell costs its deadline once, not every request.

::

    closed ──(failures ≥ threshold, or any timeout)──▶ open
    open ──(cool-down elapsed: one caller gets the probe)──▶ half-open
    half-open ──success──▶ closed        half-open ──failure──▶ open

A timeout opens the breaker at once: it already cost a full deadline, and paying another
on the next request is exactly what the breaker exists to avoid. While open, callers skip
the cell without waiting; the cell is reported unavailable.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Breaker", "BreakerState"]


class BreakerState(StrEnum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(slots=True)
class Breaker:
    """One cell's breaker; ``clock`` is injectable for tests."""

    failure_threshold: int = 2
    cooldown_s: float = 5.0
    clock: object = time.monotonic
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0

    def _now(self) -> float:
        now: float = self.clock()  # type: ignore[operator]
        return now

    @property
    def skipping(self) -> bool:
        """Whether calls are being skipped right now (read-only: grants no probe)."""
        return (
            self.state is not BreakerState.CLOSED and self._now() - self.opened_at < self.cooldown_s
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
                if now - self.opened_at >= self.cooldown_s:
                    self.state = BreakerState.HALF_OPEN
                    self.opened_at = now
                    return True
                return False

    def record_success(self) -> None:
        """A call succeeded: close."""
        self.state = BreakerState.CLOSED
        self.failures = 0

    def record_failure(self, *, timed_out: bool) -> None:
        """A call failed (or timed out): count it, maybe open."""
        self.failures += 1
        if (
            timed_out
            or self.state is BreakerState.HALF_OPEN
            or self.failures >= self.failure_threshold
        ):
            self.state = BreakerState.OPEN
            self.opened_at = self._now()
