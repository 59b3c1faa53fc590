"""The PNG plots under ``docs/bench/`` that ``docs/bench/single-host.md`` shows."""

from __future__ import annotations

from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cgbench.profiles import LIMITS, SCENARIOS, SERVER_NAMES, SYSTEM_NAMES, scenario_key
from cgbench.results import Results

COLORS = {"sharded": "#1f77b4", "unsharded": "#ff7f0e", "nova": "#2ca02c"}
Plot = tuple[str, str]  # file name, title


def _bars(
    ax: Axes,
    series: dict[str, list[float]],
    upper: dict[str, list[float]] | None,
    ylabel: str,
) -> None:
    x = list(range(len(SCENARIOS)))
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        xs = [xi + (i - (len(series) - 1) / 2) * width for xi in x]
        yerr = None
        if upper:
            yerr = [[0.0] * len(values), [u - v for u, v in zip(upper[name], values, strict=True)]]
        ax.bar(xs, values, width, label=name, color=COLORS.get(name), yerr=yerr, capsize=3)
    ax.set_xticks(x, [f"{who}\nlimit {limit}" for who, limit in SCENARIOS])
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)


def _per_page(ax: Axes, name: str, per_page_ms: list[float]) -> None:
    pages = range(1, len(per_page_ms) + 1)
    ax.plot(pages, per_page_ms, marker="o", ms=3, label=name, color=COLORS[name])


def _save(fig: Figure, path: Path) -> None:
    # Figure without pyplot: no global figure registry, no backend to select (PNG is Agg).
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _first_pages(r: Results, outdir: Path) -> Plot:
    keys = [scenario_key(w, lim) for w, lim in SCENARIOS]
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    _bars(
        ax,
        {n: [r.http_first[k][n].latency.p50 for k in keys] for n in SERVER_NAMES},
        {n: [r.http_first[k][n].latency.p95 for k in keys] for n in SERVER_NAMES},
        "ms (bar p50, whisker p95)",
    )
    ax.set_title("First page, GET /v2.1/servers/detail over HTTP")
    _save(fig, outdir / "first_page_latency.png")
    return "first_page_latency.png", "First-page latency, sharded vs unsharded (HTTP)"


def _throughput(r: Results, outdir: Path) -> Plot:
    keys = [scenario_key(w, lim) for w, lim in SCENARIOS]
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    _bars(ax, {n: [r.throughput[k][n].rps for k in keys] for n in SERVER_NAMES}, None, "requests/s")
    ax.set_title(f"Throughput, {r.clients} closed-loop clients, first pages")
    _save(fig, outdir / "throughput.png")
    return "throughput.png", "Throughput, sharded vs unsharded (HTTP)"


def _inprocess(r: Results, outdir: Path) -> Plot:
    keys = [scenario_key(w, lim) for w, lim in SCENARIOS]
    first = r.inprocess.first
    fig = Figure(figsize=(12, 4.5))
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    _bars(
        ax1,
        {n: [first[k][n].latency.p50 for k in keys] for n in SYSTEM_NAMES},
        {n: [first[k][n].latency.p95 for k in keys] for n in SYSTEM_NAMES},
        "ms (bar p50, whisker p95)",
    )
    ax1.set_title("In-process first page (no HTTP)")
    for n in SYSTEM_NAMES:
        _per_page(ax2, n, r.inprocess.walk["admin"][n].per_page_ms)
    ax2.set_xlabel("page")
    ax2.set_ylabel("ms")
    ax2.set_title(f"In-process walk, admin, limit {r.profile.walk_limit}")
    ax2.grid(alpha=0.3)
    ax2.legend()
    _save(fig, outdir / "inprocess_nova.png")
    return "inprocess_nova.png", "Nova-style vs gateway, in-process"


def _walks(r: Results, outdir: Path) -> Plot:
    fig = Figure(figsize=(12, 4.5))
    for i, (who, w) in enumerate(r.http_walk.items(), 1):
        ax = fig.add_subplot(1, len(r.http_walk), i)
        for n in SERVER_NAMES:
            _per_page(ax, n, w[n].per_page_ms)
        ax.set_title(f"HTTP walk, {who}, limit {r.profile.walk_limit}")
        ax.set_xlabel("page")
        ax.set_ylabel("ms")
        ax.grid(alpha=0.3)
        ax.legend()
    _save(fig, outdir / "walk.png")
    return "walk.png", "Per-page latency of a walk (HTTP)"


def _offset(r: Results, outdir: Path) -> Plot:
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    for limit, style in zip(LIMITS, ("-", "--"), strict=True):
        pts = [p for p in r.offset.points if p.limit == limit and p.depth > 0]
        depths = [p.depth for p in pts]
        offset_ms, keyset_ms = [p.offset_ms for p in pts], [p.keyset_ms for p in pts]
        ax.plot(
            depths, offset_ms, style, marker="o", color="#d62728", label=f"OFFSET, limit {limit}"
        )
        ax.plot(
            depths, keyset_ms, style, marker="s", color="#1f77b4", label=f"keyset, limit {limit}"
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("depth (rows skipped)")
    ax.set_ylabel("ms per page (median)")
    ax.set_title("OFFSET vs keyset on the unsharded database")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    _save(fig, outdir / "offset_vs_keyset.png")
    return "offset_vs_keyset.png", "OFFSET vs keyset latency by depth"


def plots(r: Results, outdir: Path) -> list[Plot]:
    """Draw every plot into ``outdir``; (file name, title) of each."""
    outdir.mkdir(parents=True, exist_ok=True)
    return [draw(r, outdir) for draw in (_first_pages, _throughput, _inprocess, _walks, _offset)]
