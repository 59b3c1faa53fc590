"""Which dropped requests a chaos run charges to a killed worker (cgbench.chaosfigures)."""

from __future__ import annotations

from cgbench.chaosfigures import dropped_at_kills
from cgbench.chaosplan import INSTANT_S


def test_a_request_in_flight_at_the_kill_is_the_kills() -> None:
    # Seen in CI: two pages started at 10.26 s, waited on a stopped cell for 2 s and were
    # dropped when the worker died at 12.3 s; their start alone lies outside the window.
    assert dropped_at_kills([(10.26, 12.33), (10.29, 12.33)], [12.3]) == 2


def test_drops_far_from_any_kill_are_not() -> None:
    kill = 20.0
    spans = [(5.0, 6.0), (kill - 3.0, kill - 1.5), (kill + INSTANT_S + 0.5, kill + INSTANT_S + 1)]
    assert dropped_at_kills(spans, [kill]) == 0


def test_the_window_runs_from_just_before_to_instant_s_after() -> None:
    kill = 20.0
    spans = [(kill - 1.0, kill - 1.0), (kill, kill), (kill + INSTANT_S, kill + INSTANT_S)]
    assert dropped_at_kills(spans, [kill]) == 3
    assert dropped_at_kills(spans, []) == 0
