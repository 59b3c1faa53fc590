"""The chaos run's figures, each against the goal issue #22 sets (pure: computed from what
the run recorded).

Where a figure cannot be measured from one run (no quiet second after a fault, no second
of a fault without another one), it is None and the report says so.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from cgbench.chaoscheck import WalkCheck
from cgbench.chaoschurn import Tally
from cgbench.chaosfaults import Applied
from cgbench.chaosmon import MonSample
from cgbench.chaosplan import CELL_KINDS, INSTANT_S, FaultKind
from cgbench.chaoswalk import Probe, WalkRecord

__all__ = ["Figures", "Rate", "WriteFigures", "add_write_figures", "dropped_at_kills", "figures"]

REDIS_KINDS = frozenset({FaultKind.REDIS_RESTART, FaultKind.REDIS_FREEZE})
SETTLE_S = 10.0  # after a fault: not yet "healthy" for the throughput baseline


@dataclass(frozen=True)
class Rate:
    """A cumulative count of answers at time t (the gateway's 200s, from ``/metrics``)."""

    t_s: float
    requests: int


@dataclass(frozen=True)
class WriteFigures:
    """A run with writes (``--writes``): what the writer did, and what the walks showed of
    it, over every walk checked (clean or not; see :mod:`cgbench.chaoschurn`)."""

    rate_per_s: float
    tally: Tally
    walks_checked: int
    stable_rows_missing_unnamed: int  # goal 0
    duplicates: int  # goal 0, in any walk
    unknown_rows: int  # goal 0: never live in the run, or outside the walk's scope
    out_of_order: int  # goal 0
    stale_rows_listed: int  # deleted before the walk began, still listed
    show_404s: int  # locust's shows of servers it saw listed, deleted since


@dataclass
class Figures:
    answers_by_status: dict[str, int]  # the gateway's own count of /v2.1 answers
    status_500: int
    other_bad_statuses: dict[str, int]  # neither 200 nor 503
    client_503_without_retry_after: int
    client_connection_errors: int  # walkers and probe, outside a killed worker's window
    client_connection_errors_at_kill: int
    locust_failures: dict[str, int]
    locust_connection_errors: int
    worker_kills: int
    pages: int
    partial_pages: int
    unnamed_gaps: int  # rows missing from a page that did not name their cell
    stub_missing: int
    stub_unnamed: int
    stub_extra: int
    walks: int
    walks_abandoned: int
    clean_walks: int  # no partial page, no retry
    clean_walk_duplicates: int
    clean_walk_gaps: int  # rows missing, out of order or foreign in clean walks
    retried_walks: int  # crossed a 503 or a dropped connection, retried from the marker
    retried_walk_gaps: int
    recovery_s: dict[str, list[float]]  # kind → fault end to the first complete listing
    healthy_rps: float | None
    rps_ratio: dict[str, float | None]  # kind → rate while it lasted (after it bit) / healthy
    rss_baseline_kib: int
    rss_peak_kib: int
    rss_ratio: float
    connections_after: dict[str, int]
    connection_limit: int
    oracle_stable: bool  # with writes: every change in the cells is one the writer made
    # Share of locust's requests that were resumed walk pages (2+): "healthy" and per fault
    # kind, over the same seconds as rps_ratio; the request mix the rates were measured on.
    resumed_share: dict[str, float | None] = field(default_factory=dict)
    # The peak RSS of a run of the same length and settings without faults (--rss-baseline).
    rss_no_fault_peak_kib: int | None = None
    notes: list[str] = field(default_factory=list)
    writes: WriteFigures | None = None


def _rate(rates: Sequence[Rate], start: float, end: float) -> tuple[float, float] | None:
    """(requests, seconds) between ``start`` and ``end`` from the cumulative counts."""
    inside = [r for r in rates if start <= r.t_s <= end]
    if len(inside) < 2 or inside[-1].t_s - inside[0].t_s < 1:
        return None
    return inside[-1].requests - inside[0].requests, inside[-1].t_s - inside[0].t_s


def _quiet_seconds(applied: Sequence[Applied], t0: float, t1: float) -> list[tuple[float, float]]:
    """The one-second spans of [t0, t1) with no fault and none in the last SETTLE_S."""
    spans = []
    for s in range(math.ceil(t0), math.floor(t1)):
        if not any(a.fault.start_s - 1 <= s < a.fault.end_s + SETTLE_S for a in applied):
            spans.append((float(s), float(s + 1)))
    return spans


def _merged(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    out: list[tuple[float, float]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _sum_rate(rates: Sequence[Rate], spans: Sequence[tuple[float, float]]) -> float | None:
    got = [x for a, b in _merged(spans) if (x := _rate(rates, a, b)) is not None]
    if not got:
        return None
    return sum(n for n, _ in got) / sum(s for _, s in got)


def _alone(a: Applied, applied: Sequence[Applied], bite_s: float) -> list[tuple[float, float]]:
    """Seconds of ``a`` after it bit (``bite_s`` in) with no other fault active."""
    others = [o for o in applied if o is not a]
    spans = []
    for s in range(math.ceil(a.fault.start_s + bite_s), math.floor(a.fault.end_s) - 1):
        if not any(o.fault.start_s - 1 <= s < o.fault.end_s + 2 for o in others):
            spans.append((float(s), float(s + 1)))
    return spans


def _recovery(applied: Sequence[Applied], probes: Sequence[Probe]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for a in applied:
        end = a.fault.start_s if a.fault.instant else a.fault.end_s
        if any(o is not a and o.fault.active(end) for o in applied):
            continue  # another fault still holds: not this one's recovery
        first = next((p.t_s for p in probes if p.t_s >= end and p.complete), None)
        if first is not None:
            out.setdefault(a.fault.kind.value, []).append(round(first - end, 2))
    return out


def figures(
    *,
    applied: Sequence[Applied],
    walks: Sequence[tuple[WalkRecord, WalkCheck | None]],
    probes: Sequence[Probe],
    mon: Sequence[MonSample],
    rates: Sequence[Rate],
    locust_failures: dict[str, int],
    warmup_s: float,
    duration_s: float,
    breaker_bite_s: float,
    connections_after: dict[str, int],
    connection_limit: int,
    oracle_stable: bool,
    locust_all: Sequence[Rate] = (),
    locust_resumed: Sequence[Rate] = (),
) -> Figures:
    scraped = [m.statuses for m in mon if m.statuses is not None]
    by_status = Counter(
        {k: int(v - scraped[0].get(k, 0.0)) for k, v in (scraped[-1] if scraped else {}).items()}
    )
    kills = [a.fault.start_s for a in applied if a.fault.kind is FaultKind.WORKER_KILL]
    samples = [s for w, _ in walks for s in w.samples]
    dropped = [(s.t_s, s.t_s + s.ms / 1000) for s in samples if s.status == 0]
    dropped += [(p.t_s, p.t_s) for p in probes if p.status == 0]
    at_kill = dropped_at_kills(dropped, kills)
    locust_conn = sum(
        n for reason, n in locust_failures.items()
        if "status" not in reason and "cells unavailable" not in reason
    )  # fmt: skip
    checked = [(w, c) for w, c in walks if c is not None]
    clean = [
        c for w, c in checked if not c.partial_pages and all(s.status == 200 for s in w.samples)
    ]
    retried = [c for w, c in checked if any(s.status != 200 for s in w.samples)]
    quiet = _quiet_seconds(applied, warmup_s / 2, duration_s)
    healthy = _sum_rate(rates, quiet)
    ratios: dict[str, float | None] = {}
    mix = {"healthy": _share(locust_resumed, locust_all, quiet)}
    for kind in sorted({a.fault.kind for a in applied}, key=str):
        bite = breaker_bite_s if kind in CELL_KINDS else 1.0
        spans = [s for a in applied if a.fault.kind is kind for s in _alone(a, applied, bite)]
        rate = _sum_rate(rates, spans)
        ratios[kind.value] = round(rate / healthy, 3) if rate and healthy else None
        mix[kind.value] = _share(locust_resumed, locust_all, spans)
    warm = [m.rss_kib for m in mon if warmup_s / 2 <= m.t_s <= warmup_s]
    base = int(statistics.median(warm)) if warm else (mon[0].rss_kib if mon else 0)
    peak = max((m.rss_kib for m in mon if m.t_s > warmup_s), default=base)
    return Figures(
        answers_by_status=dict(sorted(by_status.items())),
        status_500=by_status.get("500", 0),
        other_bad_statuses={k: v for k, v in by_status.items() if k not in ("200", "503") and v},
        client_503_without_retry_after=sum(
            1 for s in samples if s.status == 503 and not s.retry_after
        )
        + locust_failures.get("status 503 (without Retry-After)", 0),
        client_connection_errors=len(dropped) - at_kill,
        client_connection_errors_at_kill=at_kill,
        locust_failures=dict(sorted(locust_failures.items())),
        locust_connection_errors=locust_conn,
        worker_kills=len(kills),
        pages=sum(len(w.pages) for w, _ in walks),
        partial_pages=sum(c.partial_pages for _, c in checked),
        unnamed_gaps=sum(c.gaps for _, c in checked),
        stub_missing=sum(c.stub_missing for _, c in checked),
        stub_unnamed=sum(c.stub_unnamed for _, c in checked),
        stub_extra=sum(c.stub_extra for _, c in checked),
        walks=len(walks),
        walks_abandoned=sum(1 for w, _ in walks if w.abandoned),
        clean_walks=len(clean),
        clean_walk_duplicates=sum(c.duplicates for c in clean),
        clean_walk_gaps=sum(c.gaps + c.unknown + c.out_of_order for c in clean),
        retried_walks=len(retried),
        retried_walk_gaps=sum(c.gaps + c.duplicates + c.out_of_order for c in retried),
        recovery_s=_recovery(applied, probes),
        healthy_rps=round(healthy, 1) if healthy else None,
        rps_ratio=ratios,
        rss_baseline_kib=base,
        rss_peak_kib=peak,
        rss_ratio=round(peak / base, 3) if base else math.nan,
        connections_after=connections_after,
        connection_limit=connection_limit,
        oracle_stable=oracle_stable,
        resumed_share=mix,
    )


def _share(
    part: Sequence[Rate], whole: Sequence[Rate], spans: Sequence[tuple[float, float]]
) -> float | None:
    """``part``'s rate ÷ ``whole``'s over ``spans`` (cumulative counts of the same clock)."""
    num, den = _sum_rate(part, spans), _sum_rate(whole, spans)
    return round(num / den, 3) if num is not None and den else None


def add_write_figures(
    figs: Figures,
    rate_per_s: float,
    tally: Tally,
    checks: Sequence[WalkCheck],
    locust_failures: dict[str, int],
) -> None:
    """Set ``figs.writes``; locust's 404s to ``show by id`` are no longer bad answers: it
    shows servers it saw listed, and a server soft-deleted since is a 404 in Nova too."""
    shows = sum(
        n for reason, n in locust_failures.items()
        if reason.startswith("show by id") and "status 404" in reason
    )  # fmt: skip
    left = figs.other_bad_statuses.get("404", 0) - shows
    figs.other_bad_statuses = {
        k: v for k, v in {**figs.other_bad_statuses, "404": left}.items() if v
    }
    figs.writes = WriteFigures(
        rate_per_s=rate_per_s,
        tally=tally,
        walks_checked=len(checks),
        stable_rows_missing_unnamed=sum(c.gaps for c in checks),
        duplicates=sum(c.duplicates for c in checks),
        unknown_rows=sum(c.unknown for c in checks),
        out_of_order=sum(c.out_of_order for c in checks),
        stale_rows_listed=sum(c.stale for c in checks),
        show_404s=shows,
    )


def dropped_at_kills(spans: list[tuple[float, float]], kills: list[float]) -> int:
    """How many dropped requests (``(start_s, end_s)``) were a killed worker's: in flight at
    some time from 1 s before a kill to :data:`INSTANT_S` after it. A request may have
    started well before the kill (a walker's page waiting out a stopped cell's connect
    timeout) and still be the kill's."""
    return sum(
        1 for start, end in spans if any(start <= k + INSTANT_S and end >= k - 1 for k in kills)
    )
