"""Which dropped requests a chaos run charges to a killed worker, and the request mix its
throughput figures were measured on (cgbench.chaosfigures)."""

from __future__ import annotations

from collections.abc import Callable

from cgbench.chaosfaults import Applied
from cgbench.chaosfigures import Rate, dropped_at_kills, figures
from cgbench.chaosplan import INSTANT_S, Fault, FaultKind


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


def test_the_request_mix_is_measured_over_the_rates_seconds() -> None:
    # One cell stopped from 100 s to 140 s; locust resumed walk pages at a third of its
    # requests before and after, and at none while the cell was down (the walks that ended
    # at a partial page): the figure must show the shift, per fault kind.
    fault = Applied(Fault(FaultKind.CELL_STOP, ("cell1",), 100.0, 140.0), 100.0, 140.0)
    seconds = range(0, 200)

    def cumulative(per_second: Callable[[int], int]) -> list[Rate]:
        total, out = 0, []
        for t in seconds:
            out.append(Rate(float(t), total))
            total += per_second(t)
        return out

    down = range(100, 140)
    every = cumulative(lambda t: 30)
    resumed = cumulative(lambda t: 0 if t in down else 10)
    figs = figures(
        applied=[fault], walks=[], probes=[], mon=[], rates=every, locust_failures={},
        warmup_s=20.0, duration_s=200.0, breaker_bite_s=5.0, connections_after={},
        connection_limit=10, oracle_stable=True, locust_all=every, locust_resumed=resumed,
    )  # fmt: skip
    assert figs.resumed_share == {"healthy": 0.333, "cell-stop": 0.0}
    assert figs.rps_ratio == {"cell-stop": 1.0}
