"""What a chaos run keeps (:class:`ChaosRun`, dumped to ``chaos.json``), the zero-count
figures it fails on (:func:`violations`) and its markdown report (``docs/bench/chaos.md``)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cgbench.chaoscheck import WalkCheck
from cgbench.chaosfaults import Applied
from cgbench.chaosfigures import Figures
from cgbench.chaosmon import MonSample
from cgbench.chaosplan import describe
from cgbench.chaoswalk import Probe, Sample, WalkRecord
from cgbench.chaoswrites import Write
from cgbench.soakstats import SoakResult

__all__ = ["ChaosRun", "WalkSummary", "summarize", "violations", "write_report"]


@dataclass(frozen=True)
class WalkSummary:
    """One walk without its rows (``chaos.json`` stays small)."""

    walker: int
    scope: str
    view: str
    version: str
    limit: int
    started_s: float
    ended_s: float
    pages: int
    statuses: dict[int, int]
    abandoned: str | None
    check: WalkCheck | None


def summarize(w: WalkRecord, check: WalkCheck | None) -> WalkSummary:
    return WalkSummary(
        w.walker, w.scope.label, w.view or "/servers", w.version, w.limit, w.started_s,
        w.ended_s, len(w.pages), dict(Counter(s.status for s in w.samples)), w.abandoned, check,
    )  # fmt: skip


@dataclass(frozen=True)
class ChaosRun:
    seed: int
    seconds: int
    warmup_s: float
    cells: int
    instances: int
    live_rows: int
    users: int
    workers: int
    walkers: int
    settings: dict[str, str]
    applied: list[Applied]
    walks: list[WalkSummary]
    samples: list[Sample]  # every walker request
    probes: list[Probe]
    mon: list[MonSample]
    history_offset_s: float  # locust's history time + this = the run's time
    soak: SoakResult
    writes_per_s: float = 0.0  # --writes: 0, none
    writes: list[Write] = field(default_factory=list)  # every write attempted
    follow_partial: bool = False  # locust went on past partial pages (runs from 2026-12-07)


def violations(f: Figures) -> list[str]:
    """The zero-count figures that are not zero (what the pytest version asserts)."""
    checks = {
        "500 answers": f.status_500,
        "answers neither 200 nor 503": sum(f.other_bad_statuses.values()),
        "503 without Retry-After": f.client_503_without_retry_after,
        "rows missing from a page that did not name their cell": f.unnamed_gaps,
        "2.69 rows of a named cell neither listed nor stubbed": f.stub_missing,
        "2.69 stubs of a cell the page did not name": f.stub_unnamed,
        "duplicates in clean walks": f.clean_walk_duplicates,
        "gaps in clean walks": f.clean_walk_gaps,
        "gaps in walks retried from their marker": f.retried_walk_gaps,
        "abandoned walks": f.walks_abandoned,
    }
    if f.writes is not None:
        checks |= {
            "duplicates in any walk (writes)": f.writes.duplicates,
            "rows listed that were never live (writes)": f.writes.unknown_rows,
            "rows out of order in any walk (writes)": f.writes.out_of_order,
        }
    out = [f"{name}: {n}" for name, n in checks.items() if n]
    if not f.oracle_stable:
        out.append("the cells changed during the run (the oracle is not stable)")
    return out


def _goal(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**missed**")


def _rows(f: Figures, cooldown_s: float) -> list[tuple[str, str, str, str]]:
    rec_goal = cooldown_s + 1
    worst = {k: max(v) for k, v in f.recovery_s.items()}
    rows = [
        ("500s", str(f.status_500), "0", _goal(f.status_500 == 0)),
        ("answers neither 200 nor 503", str(f.other_bad_statuses or 0), "0",
         _goal(not f.other_bad_statuses)),
        ("503 without Retry-After (walkers, locust)", str(f.client_503_without_retry_after), "0",
         _goal(f.client_503_without_retry_after == 0)),
        ("connection errors (walkers, probe) outside a worker kill",
         str(f.client_connection_errors), "0", _goal(f.client_connection_errors == 0)),
        ("… within a killed worker's window (allowed)", str(f.client_connection_errors_at_kill),
         "-", "-"),
        (f"locust connection errors ({f.worker_kills} worker kills × ≤ users in flight)",
         str(f.locust_connection_errors), "killed worker's only", "see notes"),
        ("partial pages lacking a cell that did not name it", str(f.unnamed_gaps), "0",
         _goal(f.unnamed_gaps == 0)),
        ("2.69 partials: rows neither listed nor stubbed / stubs of unnamed cells",
         f"{f.stub_missing} / {f.stub_unnamed}", "0 / 0",
         _goal(f.stub_missing == 0 and f.stub_unnamed == 0)),
        ("clean walks: duplicates / gaps", f"{f.clean_walk_duplicates} / {f.clean_walk_gaps}",
         "0 / 0", _goal(f.clean_walk_duplicates == 0 and f.clean_walk_gaps == 0)),
        ("walks retried from their marker (503, dropped connection): gaps",
         f"{f.retried_walk_gaps} in {f.retried_walks}", "0", _goal(f.retried_walk_gaps == 0)),
        ("abandoned walks", str(f.walks_abandoned), "0", _goal(f.walks_abandoned == 0)),
    ]  # fmt: skip
    for kind, secs in sorted(f.recovery_s.items()):
        rows.append((f"recovery after {kind} (s, each)", ", ".join(f"{s:.1f}" for s in secs),
                     f"≤ {rec_goal:g}", _goal(worst[kind] <= rec_goal)))  # fmt: skip
    for kind, ratio in sorted(f.rps_ratio.items()):
        need = 0.8 if kind.startswith("redis") else 0.85
        shown = "n/a" if ratio is None else f"{ratio:.2f}"
        ok = None if ratio is None else ratio >= need
        rows.append((f"200s per second during {kind} / healthy", shown, f"≥ {need}", _goal(ok)))
    if any(v is not None for v in f.resumed_share.values()):
        mix = ", ".join(
            f"{k} {'n/a' if v is None else f'{v:.0%}'}" for k, v in f.resumed_share.items()
        )
        what = "locust's requests that were resumed walk pages (2+), over the same seconds"
        rows.append((f"{what}: the mix the rates above were measured on", mix, "-", "-"))
    if (calm := f.rss_no_fault_peak_kib) is not None:
        ratio = f.rss_peak_kib / calm
        rows.append(("RSS peak / the no-fault run's peak (same length and settings)",
                     f"{ratio:.2f} ({f.rss_peak_kib / 1024:.0f} / {calm / 1024:.0f} MiB)",
                     "≤ 1.1", _goal(ratio <= 1.1)))  # fmt: skip
    rows.append(("RSS peak / this run's warm-up (no fault yet)", f"{f.rss_ratio:.2f} "
                 f"({f.rss_peak_kib / 1024:.0f} / {f.rss_baseline_kib / 1024:.0f} MiB)",
                 "≤ 1.1" if calm is None else "-",
                 _goal(f.rss_ratio <= 1.1) if calm is None else "-"))  # fmt: skip
    if (w := f.writes) is not None:
        rows += [
            (f"writes at {w.rate_per_s:g}/s: inserts / soft-deletes committed",
             f"{w.tally.inserts} / {w.tally.deletes} of {w.tally.attempted}", "-", "-"),
            ("… failed and skipped (a cell or the API database down or frozen) / failed, yet "
             "applied (a thawed COMMIT; a mapping update lost)",
             f"{w.tally.skipped} / {w.tally.applied_late}", "-", "-"),
            ("… orphan mappings / changes no write explains",
             f"{w.tally.orphan_mappings} / {w.tally.unexplained}", "- / 0",
             _goal(w.tally.unexplained == 0)),
            (f"all {w.walks_checked} walks: stable rows missing, unnamed",
             str(w.stable_rows_missing_unnamed), "0", _goal(w.stable_rows_missing_unnamed == 0)),
            ("all walks: duplicates / out of order / never-live rows",
             f"{w.duplicates} / {w.out_of_order} / {w.unknown_rows}", "0 / 0 / 0",
             _goal(not (w.duplicates or w.out_of_order or w.unknown_rows))),
            ("all walks: rows deleted before the walk began, listed", str(w.stale_rows_listed),
             "-", "-"),
            ("locust's 404s to show by id (a server it saw listed, deleted since)",
             str(w.show_404s), "-", "-"),
        ]  # fmt: skip
    worst_conn = max(f.connections_after.values(), default=0)
    rows.append(("connections per cell after the run (max)", str(worst_conn),
                 f"≤ {f.connection_limit}", _goal(worst_conn <= f.connection_limit)))  # fmt: skip
    return rows


def _reasons(failures: dict[str, int]) -> Counter[str]:
    """Locust's ``name: error`` counts by error alone."""
    out: Counter[str] = Counter()
    for key, n in failures.items():
        out[key.split(": ", 1)[-1]] += n
    return out


def _cpu_note(run: ChaosRun) -> str:
    mon = run.mon[1:]
    if not mon or not any(m.machine_cores for m in mon):
        return ""
    n = len(mon)
    machine = sum(m.machine_cores for m in mon) / n
    ours = sum(m.ours_cores for m in mon) / n
    gateway = sum(m.gateway_cores for m in mon) / n
    return (
        f"CPU, mean over the run (cores of 2): machine {machine:.2f}, this run's processes "
        f"{ours:.2f} (the gateway {gateway:.2f}), other work on the machine "
        f"{max(0.0, machine - ours):.2f}."
    )


def write_report(
    run: ChaosRun, f: Figures, path: Path, png: str, notes: Sequence[str] = ()
) -> None:
    """The markdown report (``docs/bench/chaos.md``), its plot ``png`` beside it."""
    cooldown = float(run.settings.get("CELLGATE_BREAKER_COOLDOWN_S", "5"))
    t = run.soak.totals
    lines = [
        "# Chaos soak: faults under load (issue #22)",
        "",
        f"Written by `scripts/chaos` on {dt.date.today().isoformat()}: {run.cells} PostgreSQL "
        f"cells behind the delay proxy, {run.instances} instances ({run.live_rows} listed), "
        f"Redis, `cellgate serve --workers {run.workers}`; locust's soak at {run.users} users "
        f"for {run.seconds} s ({t.requests} requests, {t.rps:.1f}/s), {run.walkers} walkers "
        f"({len(run.walks)} walks, {sum(w.pages for w in run.walks)} pages), a probe every "
        f"0.5 s; faults from {run.warmup_s:.0f} s (seed {run.seed})"
        + (
            f"; a writer inserting and soft-deleting instances at {run.writes_per_s:g}/s "
            "in random cells for the whole load"
            if run.writes_per_s
            else ""
        )
        + ". Settings: "
        + ", ".join(f"`{k}={v}`" for k, v in run.settings.items())
        + ".",
        "",
        f"![the run over time]({png})",
        "",
        "## Figures against the goals",
        "",
        "| figure | this run | goal | |",
        "|---|---|---|---|",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _rows(f, cooldown)),
        "",
        f"Answers by status (the gateway's count of `/v2.1` answers): {f.answers_by_status}. "
        f"Walker pages: {f.pages}, partial (naming cells): {f.partial_pages}; stubs of "
        f"instances outside the listing: {f.stub_extra}. Healthy rate: {f.healthy_rps} "
        "200s/s (the gateway's count: locust's, the walkers' and the probe's). "
        f"Connections per cell after the run: {f.connections_after}. " + _cpu_note(run),
        "",
        "Locust's failures by reason, over every request name"
        + (
            " (a partial 200 is an answer: locust's users go on from its next link, as "
            "Nova's clients do; `--partial-pages follow`):"
            if run.follow_partial
            else " (a partial 200 is one: the soak's users wanted complete pages, and a walk "
            "ended at its first partial page; `--partial-pages fail`):"
        ),
        "",
        *(f"- `{reason}` × {n}" for reason, n in _reasons(f.locust_failures).most_common()),
        "",
        "## The schedule",
        "",
        "```",
        describe([a.fault for a in run.applied]),
        "```",
        "",
        *(f"- {n}" for n in (*notes, *f.notes)),
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
