"""The soak's figures: locust's CSVs (totals, failures, the per-second history) into
per-minute requests/s and p50/p99, and the gateway's RSS samples into its growth (pure
functions on text and samples; ``cgbench.soak`` runs the soak and writes them).
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass

__all__ = [
    "HistoryPoint",
    "MinuteStats",
    "RssGrowth",
    "RssSample",
    "SoakResult",
    "Totals",
    "parse_failures",
    "parse_history",
    "parse_totals",
    "per_minute",
    "rss_growth",
]

SHORT_TAIL_S = 10  # a last partial minute shorter than this joins the one before


@dataclass(frozen=True)
class RssSample:
    t_s: float
    rss_kib: int


@dataclass(frozen=True)
class RssGrowth:
    """The gateway's resident memory over the soak; ``warm`` is the first sample after the
    warm-up (caches and pools filled), the fairer baseline for a leak."""

    start_kib: int
    warm_kib: int
    end_kib: int
    peak_kib: int
    growth_pct: float  # start → end
    growth_after_warmup_pct: float  # warm → end


@dataclass(frozen=True)
class HistoryPoint:
    """One row of locust's stats history for all requests (``Aggregated``)."""

    t_s: int
    users: int
    requests: int  # cumulative
    failures: int  # cumulative
    rps: float  # locust's current rate (its own few-second window)
    p50_ms: float  # over locust's ~10 s window; NaN before it has one
    p99_ms: float


@dataclass(frozen=True)
class MinuteStats:
    minute: int  # from 0
    seconds: int
    requests: int
    failures: int
    rps: float
    p50_ms: float
    p99_ms: float
    p99_worst_ms: float


@dataclass(frozen=True)
class Totals:
    """Locust's final figures over the whole run, overall and by request name."""

    requests: int
    failures: int
    rps: float
    p50_ms: float
    p99_ms: float
    by_name: dict[str, int]


@dataclass(frozen=True)
class SoakResult:
    url: str
    users: int
    seconds: int
    totals: Totals
    failure_reasons: dict[str, int]
    rss: RssGrowth
    minutes: list[MinuteStats]
    history: list[HistoryPoint]
    rss_samples: list[RssSample]
    locust_exit: int | None


def _ms(raw: str) -> float:
    return math.nan if raw in ("", "N/A") else float(raw)


def parse_history(text: str) -> list[HistoryPoint]:
    """The ``Aggregated`` rows of ``*_stats_history.csv``, time from the first row.

    Locust writes 0 percentiles before its window has a start; those readings become NaN.
    """
    rows = [r for r in csv.DictReader(text.splitlines()) if r["Name"] == "Aggregated"]
    if not rows:
        return []
    t0 = int(rows[0]["Timestamp"])
    points = []
    for r in rows:
        p50, p99 = _ms(r["50%"]), _ms(r["99%"])
        if p99 == 0:
            p50 = p99 = math.nan
        points.append(
            HistoryPoint(
                t_s=int(r["Timestamp"]) - t0,
                users=int(r["User Count"]),
                requests=int(r["Total Request Count"]),
                failures=int(r["Total Failure Count"]),
                rps=float(r["Requests/s"]),
                p50_ms=p50,
                p99_ms=p99,
            )
        )
    return points


def parse_counts(text: str, prefix: str = "") -> list[tuple[int, int]]:
    """From ``*_stats_history.csv``: (unix time, cumulative requests) summed over the
    request names starting with ``prefix`` (every name but ``Aggregated`` when empty), one
    point per timestamp; a name not yet seen at a timestamp counts its last value."""
    last: dict[str, int] = {}
    points: dict[int, int] = {}
    for r in csv.DictReader(text.splitlines()):
        name = r["Name"]
        if name == "Aggregated" or not name.startswith(prefix):
            continue
        last[name] = int(r["Total Request Count"])
        points[int(r["Timestamp"])] = sum(last.values())
    return sorted(points.items())


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def per_minute(points: list[HistoryPoint]) -> list[MinuteStats]:
    """Per-minute requests, failures, requests/s and p50/p99 from the history."""
    if not points:
        return []
    span = points[-1].t_s
    n = max(1, span // 60 + (1 if span % 60 >= SHORT_TAIL_S else 0))
    buckets: list[list[HistoryPoint]] = [[] for _ in range(n)]
    for p in points:
        buckets[min(p.t_s // 60, n - 1)].append(p)
    minutes = []
    prev = HistoryPoint(0, 0, 0, 0, 0.0, math.nan, math.nan)
    for i, bucket in enumerate(buckets):
        if not bucket:
            continue
        last = bucket[-1]
        seconds = last.t_s - prev.t_s
        requests = last.requests - prev.requests
        p50s = [p.p50_ms for p in bucket if not math.isnan(p.p50_ms)]
        p99s = [p.p99_ms for p in bucket if not math.isnan(p.p99_ms)]
        minutes.append(
            MinuteStats(
                minute=i,
                seconds=seconds,
                requests=requests,
                failures=last.failures - prev.failures,
                rps=requests / seconds if seconds > 0 else math.nan,
                p50_ms=_median(p50s),
                p99_ms=_median(p99s),
                p99_worst_ms=max(p99s, default=math.nan),
            )
        )
        prev = last
    return minutes


def parse_totals(text: str) -> Totals:
    """Locust's ``*_stats.csv``: the ``Aggregated`` row, and requests by name."""
    rows = list(csv.DictReader(text.splitlines()))
    agg = next(r for r in rows if r["Name"] == "Aggregated")
    return Totals(
        requests=int(agg["Request Count"]),
        failures=int(agg["Failure Count"]),
        rps=float(agg["Requests/s"]),
        p50_ms=_ms(agg["50%"]),
        p99_ms=_ms(agg["99%"]),
        by_name={r["Name"]: int(r["Request Count"]) for r in rows if r["Name"] != "Aggregated"},
    )


def parse_failures(text: str) -> dict[str, int]:
    """Locust's ``*_failures.csv``: occurrences by ``name: error``."""
    return {
        f"{r['Name']}: {r['Error']}": int(r["Occurrences"])
        for r in csv.DictReader(text.splitlines())
    }


def rss_growth(samples: list[RssSample], warmup_s: float) -> RssGrowth:
    """Start, warm, end and peak RSS of the samples, and the growth between them."""
    if not samples:
        raise ValueError("no RSS samples")
    start, end = samples[0].rss_kib, samples[-1].rss_kib
    warm = next((s.rss_kib for s in samples if s.t_s >= warmup_s), end)

    def pct(a: int, b: int) -> float:
        return 100.0 * (b - a) / a if a > 0 else math.nan

    return RssGrowth(
        start_kib=start,
        warm_kib=warm,
        end_kib=end,
        peak_kib=max(s.rss_kib for s in samples),
        growth_pct=pct(start, end),
        growth_after_warmup_pct=pct(warm, end),
    )
