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


def test_opens_counts_only_the_openings_found_here() -> None:
    breaker, clock = make(threshold=2, cooldown=5.0)
    breaker.record_failure(timed_out=False)
    assert breaker.opens == 0
    breaker.record_failure(timed_out=False)
    assert breaker.opens == 1
    breaker.record_failure(timed_out=True)  # a late failure while open: no new opening
    assert breaker.opens == 1
    clock.now += 5.0
    assert breaker.allow()
    breaker.record_failure(timed_out=True)  # the probe failed: a new opening
    assert breaker.opens == 2
    clock.now += 5.0
    assert breaker.allow()
    breaker.record_success()
    assert breaker.trip()  # a peer's opening is not counted as ours
    assert breaker.opens == 2


def test_a_peer_trip_opens_a_closed_breaker_for_a_cooldown_then_it_probes_itself() -> None:
    breaker, clock = make(threshold=2, cooldown=5.0)
    assert breaker.trip()
    assert breaker.state is BreakerState.OPEN
    assert breaker.skipping
    assert not breaker.allow()
    clock.now += 4.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()  # its own probe
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED


def test_a_peer_trip_restarts_an_open_breakers_cooldown() -> None:
    breaker, clock = make(cooldown=5.0)
    breaker.record_failure(timed_out=True)
    clock.now += 4.0
    assert breaker.trip()
    clock.now += 4.0  # 8 s after opening, 4 s after the peer's news
    assert not breaker.allow()
    clock.now += 1.0
    assert breaker.allow()


def test_a_peer_trip_leaves_a_probe_in_flight_to_decide() -> None:
    breaker, clock = make(cooldown=5.0)
    breaker.record_failure(timed_out=True)
    clock.now += 5.0
    assert breaker.allow()  # our probe is in flight
    assert not breaker.trip()
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    # A probe abandoned for a whole cool-down no longer holds a peer's news off.
    assert breaker.trip()
    clock.now += 5.0
    assert breaker.allow()
    clock.now += 5.0
    assert breaker.trip()
    assert breaker.state is BreakerState.OPEN


def test_spread_draws_each_openings_cooldown() -> None:
    draws = iter([0.0, 1.0, 0.5])
    clock = Clock()
    breaker = Breaker(2, 4.0, clock, spread=0.5, draw=lambda: next(draws))
    breaker.record_failure(timed_out=True)
    assert breaker.current_cooldown_s == 4.0
    clock.now += 4.0
    assert breaker.allow()
    breaker.record_failure(timed_out=True)
    assert breaker.current_cooldown_s == 6.0
    clock.now += 5.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()
    breaker.record_success()
    assert breaker.trip()
    assert breaker.current_cooldown_s == 5.0


def test_events_are_what_the_breaker_found_out_itself() -> None:
    told: list[str | None] = []
    breaker, clock = make(threshold=1, cooldown=5.0)
    breaker.on_event = lambda: told.append(breaker.last_event)
    breaker.record_success()  # closed and stays closed: nothing new
    breaker.record_failure(timed_out=False)
    clock.now += 5.0
    assert breaker.allow()
    breaker.record_success()
    assert told == ["open", "probe", "close"]
    assert breaker.events == 3
    breaker.trip()
    breaker.defer()
    breaker.hasten()  # a peer's news is never an event of ours
    assert breaker.events == 3


def test_defer_holds_an_open_breakers_probe_off() -> None:
    breaker, clock = make(cooldown=5.0)
    assert not breaker.defer()  # closed: a peer probing is no evidence of failure
    assert breaker.state is BreakerState.CLOSED
    breaker.record_failure(timed_out=True)
    clock.now += 4.0
    assert breaker.defer()
    clock.now += 4.0
    assert not breaker.allow()
    clock.now += 1.0
    assert breaker.allow()
    assert not breaker.defer()  # our own probe is in flight


def test_hasten_makes_the_next_call_a_probe_never_closes() -> None:
    breaker, clock = make(cooldown=5.0)
    assert not breaker.hasten()
    breaker.record_failure(timed_out=True)
    clock.now += 1.0
    assert breaker.hasten()
    assert breaker.state is BreakerState.OPEN
    assert breaker.allow()  # the probe, at once
    assert breaker.state is BreakerState.HALF_OPEN
