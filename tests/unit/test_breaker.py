"""The per-cell circuit breaker, on an injected clock."""

from __future__ import annotations

from dataclasses import dataclass

from cells.breaker import Breaker, BreakerState


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def make(threshold: int = 2, cooldown: float = 5.0) -> tuple[Breaker, Clock]:
    clock = Clock()
    return Breaker(threshold, cooldown, clock), clock


def test_errors_open_after_the_threshold() -> None:
    breaker, _ = make(threshold=2)
    breaker.record_failure(timed_out=False)
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()
    breaker.record_failure(timed_out=False)
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allow()


def test_one_timeout_opens_at_once() -> None:
    breaker, _ = make(threshold=5)
    breaker.record_failure(timed_out=True)
    assert breaker.state is BreakerState.OPEN


def test_success_resets_the_count() -> None:
    breaker, _ = make(threshold=2)
    breaker.record_failure(timed_out=False)
    breaker.record_success()
    breaker.record_failure(timed_out=False)
    assert breaker.state is BreakerState.CLOSED


def test_half_open_grants_one_probe_then_closes_on_success() -> None:
    breaker, clock = make(cooldown=5.0)
    breaker.record_failure(timed_out=True)
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.2
    assert breaker.allow()
    assert breaker.state is BreakerState.HALF_OPEN
    assert not breaker.allow()  # only one probe
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.allow()


def test_failed_probe_reopens_for_a_full_cooldown() -> None:
    breaker, clock = make(threshold=3, cooldown=5.0)
    breaker.record_failure(timed_out=True)
    clock.now += 5.0
    assert breaker.allow()
    breaker.record_failure(timed_out=False)
    assert breaker.state is BreakerState.OPEN
    clock.now += 4.0
    assert not breaker.allow()


def test_a_probe_that_never_reports_does_not_wedge_the_breaker() -> None:
    breaker, clock = make(cooldown=5.0)
    breaker.record_failure(timed_out=True)
    clock.now += 5.0
    assert breaker.allow()  # the probe's caller vanishes without reporting
    clock.now += 5.0
    assert breaker.allow()
