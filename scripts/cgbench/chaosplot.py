"""The chaos run over time on one axis (PNG, matplotlib without pyplot): rate and latency,
answers by status, cells named unavailable, breakers per worker, RSS; every fault of the
schedule drawn as a band across all of them."""

from __future__ import annotations

import itertools
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cgbench.chaosplan import FaultKind
from cgbench.chaosreport import ChaosRun

__all__ = ["plot_chaos"]

KIND_COLORS = {
    FaultKind.CELL_STOP: "#d62728",
    FaultKind.CELL_FREEZE: "#9467bd",
    FaultKind.CELL_SLOW: "#bcbd22",
    FaultKind.CELL_CUT: "#e377c2",
    FaultKind.TWO_CELLS_DOWN: "#8c564b",
    FaultKind.REDIS_RESTART: "#17becf",
    FaultKind.REDIS_FREEZE: "#1f77b4",
    FaultKind.APIDB_RESTART: "#ff7f0e",
    FaultKind.WORKER_KILL: "#000000",
}
STATUS_COLORS = {"200": "#2ca02c", "503": "#ff7f0e", "500": "#d62728"}


def _bands(ax: Axes, run: ChaosRun, label: bool) -> None:
    for i, a in enumerate(run.applied):
        f = a.fault
        color = KIND_COLORS[f.kind]
        if f.instant:
            ax.axvline(f.start_s, color=color, lw=1.2, ls="--")
        else:
            ax.axvspan(f.start_s, f.end_s, color=color, alpha=0.12, lw=0)
        if label:
            text = f"{f.kind.value} {','.join(f.targets)}"
            ax.text(
                f.start_s, 1.0 - 0.09 * (i % 4), text,
                transform=ax.get_xaxis_transform(), fontsize=6, color=color, va="top",
            )  # fmt: skip


def _rate_latency(ax: Axes, run: ChaosRun) -> None:
    h, off = run.soak.history, run.history_offset_s
    ts = [p.t_s + off for p in h]
    per_s = [0.0] + [
        (b.requests - a.requests) / max(1, b.t_s - a.t_s) for a, b in itertools.pairwise(h)
    ]
    ax.plot(ts, per_s, color="#2ca02c", lw=0.8, label="requests/s (locust)")
    ax.set_ylabel("req/s")
    ax.set_ylim(bottom=0)
    lat = ax.twinx()
    lat.plot(ts, [p.p50_ms for p in h], color="#1f77b4", lw=0.8, label="p50")
    lat.plot(ts, [p.p99_ms for p in h], color="#d62728", lw=0.8, label="p99")
    lat.set_yscale("log")
    lat.set_ylabel("ms (10 s window)")
    ax.legend(loc="lower left", fontsize=7)
    lat.legend(loc="lower right", fontsize=7)


def _statuses(ax: Axes, run: ChaosRun) -> None:
    mon = [m for m in run.mon if m.statuses is not None]
    codes = sorted({c for m in mon for c in (m.statuses or {})})
    for code in codes:
        xs, ys = [], []
        for a, b in itertools.pairwise(mon):
            assert a.statuses is not None
            assert b.statuses is not None
            xs.append(b.t_s)
            ys.append((b.statuses.get(code, 0) - a.statuses.get(code, 0)) / (b.t_s - a.t_s))
        ax.plot(xs, ys, lw=0.9, label=code, color=STATUS_COLORS.get(code))
    names: dict[int, str] = {}
    for m in run.mon:
        for pid in m.workers:
            names.setdefault(pid, f"w{len(names) + 1}")
    for pid, name in names.items():
        had = [m for m in mon if pid in m.served]
        if len(had) < 2:
            continue
        xs = [b.t_s for b in had[1:]]
        ys = [(b.served[pid] - a.served[pid]) / (b.t_s - a.t_s) for a, b in itertools.pairwise(had)]
        ax.plot(xs, ys, lw=0.7, ls=":", label=f"{name} answered")
    dropped = [s.t_s for s in run.samples if s.status == 0]
    ax.plot(dropped, [0.5] * len(dropped), "x", color="k", ms=4, label="walker: dropped")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_ylabel("answers/s by status")
    ax.legend(loc="upper left", fontsize=7, ncol=4)


def _unavailable(ax: Axes, run: ChaosRun, cells: list[str]) -> None:
    xs, ys = [], []
    for s in run.samples:
        for c in s.unavailable:
            if c in cells:
                xs.append(s.t_s)
                ys.append(cells.index(c) + 1)
    ax.plot(xs, ys, "|", color="#d62728", ms=6)
    ax.set_yticks(range(1, len(cells) + 1), cells, fontsize=6)
    ax.set_ylim(0.5, len(cells) + 0.5)
    ax.set_ylabel("named unavailable\n(walkers)")


def _breakers(ax: Axes, run: ChaosRun, cells: list[str]) -> None:
    names: dict[int, str] = {}
    for m in run.mon:
        for pid in m.workers:
            names.setdefault(pid, f"w{len(names) + 1}")
    rows = [(pid, c) for pid in names for c in cells]
    for level, color in ((1, "#ff7f0e"), (2, "#d62728")):
        xs, ys = [], []
        for m in run.mon:
            for pid, states in m.breakers.items():
                for c, state in states.items():
                    if state == level and (pid, c) in rows:
                        xs.append(m.t_s)
                        ys.append(rows.index((pid, c)) + 1)
        ax.plot(xs, ys, "s", color=color, ms=2.5, label=["", "half-open", "open"][level])
    ax.set_yticks(range(1, len(rows) + 1), [f"{names[p]} {c}" for p, c in rows], fontsize=5)
    ax.set_ylim(0.5, len(rows) + 0.5)
    ax.set_ylabel("breakers\nper worker")
    ax.legend(loc="upper left", fontsize=7)


def _cpu(ax: Axes, run: ChaosRun) -> None:
    mon = run.mon[1:]  # the first reading has no interval
    if not any(m.machine_cores for m in mon):
        ax.text(0.5, 0.5, "not sampled in this run", transform=ax.transAxes, ha="center")
        ax.set_ylabel("CPU (cores)")
        return
    ts = [m.t_s for m in mon]
    ax.plot(ts, [m.machine_cores for m in mon], color="k", lw=0.8, label="machine")
    ax.plot(ts, [m.ours_cores for m in mon], color="#1f77b4", lw=0.8, label="this run")
    ax.plot(ts, [m.gateway_cores for m in mon], color="#2ca02c", lw=0.8, label="gateway")
    others = [max(0.0, m.machine_cores - m.ours_cores) for m in mon]
    ax.plot(ts, others, color="#d62728", lw=0.8, label="others")
    ax.set_ylabel("CPU (cores)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", fontsize=7, ncol=4)


def plot_chaos(run: ChaosRun, path: Path) -> None:
    cells = [f"cell{i}" for i in range(1, run.cells + 1)]
    fig = Figure(figsize=(13, 17))
    heights = (3, 2.2, 2, 3.5, 1.6, 1.6)
    axes = fig.subplots(len(heights), 1, sharex=True, gridspec_kw={"height_ratios": heights})
    _rate_latency(axes[0], run)
    _statuses(axes[1], run)
    _unavailable(axes[2], run, cells)
    _breakers(axes[3], run, cells)
    axes[4].plot([m.t_s for m in run.mon], [m.rss_kib / 1024 for m in run.mon], color="#7f7f7f")
    axes[4].set_ylabel("gateway RSS\n(MiB, all workers)")
    _cpu(axes[5], run)
    axes[5].set_xlabel("seconds from the start of the load")
    for i, ax in enumerate(axes):
        _bands(ax, run, label=i == 0)
        ax.grid(alpha=0.3)
    axes[0].set_title(
        f"Chaos soak: {run.cells} cells, {run.workers} workers, {run.users} locust users, "
        f"{run.walkers} walkers, seed {run.seed}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
