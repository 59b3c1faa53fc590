"""The scale run's report: the figures against their goals, the tables behind them, and
PNG plots (matplotlib without pyplot)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from matplotlib.figure import Figure as Plot

from cgbench.report import NOTES_BEGIN, NOTES_END, kept_notes
from cgbench.scale.phases import DETAIL
from cgbench.scale.results import ScaleResults, figures
from cgbench.scale.smallpages import small_lines
from cgbench.soak import plot_soak

__all__ = ["write_report"]

_VERDICT = {True: "met", False: "**missed**", None: "(reported)"}


def _ms(v: float) -> str:
    return "–" if math.isnan(v) else f"{v:.1f}"


def _save(fig: Plot, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path.name


def _by_cells(r: ScaleResults, outdir: Path) -> str | None:
    if not r.local:
        return None
    fig = Plot(figsize=(8, 4.5))
    ax = fig.add_subplot()
    for indexes, by_limit in r.local.items():
        for limit, lat in by_limit.items():
            points = sorted((d.cells, lat[d.name].p50) for d in r.data if d.name in lat)
            style = "-" if indexes == "nova" else "--"
            ax.plot(
                *zip(*points, strict=True), style, marker="o", label=f"{indexes}, limit {limit}"
            )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("cells (1 = unsharded)")
    ax.set_ylabel("first-page p50, ms")
    ax.set_title("Latency vs cell count (same rows)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, outdir / "latency_by_cells.png")


def _by_depth(r: ScaleResults, outdir: Path) -> str | None:
    if r.walks is None:
        return None
    fig = Plot(figsize=(8, 4.5))
    ax = fig.add_subplot()
    for name, walk in r.walks.walks.items():
        step = max(1, walk.pages // 200)
        xs = list(range(1, walk.pages + 1, step))
        ax.plot(xs, [walk.page_s[x - 1] * 1000 for x in xs], lw=0.8, label=name)
    ax.set_xlabel(f"page (limit {r.walks.limit}), full walk with the frontier cache")
    ax.set_ylabel("ms")
    ax.set_title("Latency vs page depth")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, outdir / "latency_by_depth.png")


def _remote(r: ScaleResults, outdir: Path) -> str | None:
    if not r.remote or not r.local.get("nova"):
        return None
    fig = Plot(figsize=(8, 4.5))
    ax = fig.add_subplot()
    settings = [("local", r.local["nova"])] + [(f"{x.delay_ms:g} ms", x.first) for x in r.remote]
    names = [n for n in r.remote[0].first[100]]
    width = 0.8 / (len(names) + 1)
    for i, name in enumerate(names):
        ys = [first[100][name].p50 for _, first in settings]
        ax.bar([x + i * width for x in range(len(settings))], ys, width, label=name)
    nova = [math.nan] + [x.strategies.first_nova.p50 for x in r.remote]
    ax.bar(
        [x + len(names) * width for x in range(len(settings))],
        nova,
        width,
        label="Nova-style, 8 cells (in-process)",
    )
    ax.set_xticks([x + width for x in range(len(settings))], [s for s, _ in settings])
    ax.set_ylabel("first-page p50, limit 100, ms")
    ax.set_title("Local vs remote cells (delay each way)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    return _save(fig, outdir / "remote_cells.png")


def _rss(r: ScaleResults, outdir: Path) -> str | None:
    walks = [(n, w) for n, w in (r.walks.walks.items() if r.walks else []) if len(w.rss_mb) > 1]
    if not walks:
        return None
    fig = Plot(figsize=(8, 4))
    ax = fig.add_subplot()
    for name, walk in walks:
        ax.plot([n for n, _ in walk.rss_mb], [m for _, m in walk.rss_mb], marker=".", label=name)
    ax.set_xlabel("rows walked")
    ax.set_ylabel("gateway RSS, MiB")
    ax.set_ylim(bottom=0)
    ax.set_title("Gateway memory during a full walk")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, outdir / "rss_walk.png")


def _workers(r: ScaleResults, outdir: Path) -> str | None:
    if not r.workers:
        return None
    fig = Plot(figsize=(5, 4))
    ax = fig.add_subplot()
    counts = sorted(r.workers)
    ax.bar([str(c) for c in counts], [r.workers[c].rps for c in counts])
    ax.set_xlabel("worker processes")
    ax.set_ylabel("req/s, limit 100, 8 cells")
    ax.set_title("Workers on 2 cores")
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, outdir / "workers.png")


def _soak(r: ScaleResults, outdir: Path) -> str | None:
    if r.soak is None:
        return None
    plot_soak(r.soak, outdir / "soak.png")
    return "soak.png"


def _tables(r: ScaleResults) -> list[str]:
    lines: list[str] = []
    for indexes, by_limit in r.local.items():
        lines += [
            f"### First pages, local cells, {indexes} indexes",
            "",
            "| data set | limit | n | p50 ms | p95 ms |",
            "|---|---:|---:|---:|---:|",
        ]
        for limit, lat in by_limit.items():
            for name, latency in lat.items():
                lines.append(
                    f"| {name} | {limit} | {latency.n} | {_ms(latency.p50)} | {_ms(latency.p95)} |"
                )
        lines.append("")
    for indexes, deep in r.deep.items():
        lines += [
            f"### The page at row {deep.depth:,}, {indexes} indexes",
            "",
            "| data set | page 1 p50 ms | deep page p50 ms |",
            "|---|---:|---:|",
        ]
        for name in deep.deep:
            lines.append(f"| {name} | {_ms(deep.first[name].p50)} | {_ms(deep.deep[name].p50)} |")
        lines.append("")
    if r.walks is not None:
        lines += [
            f"### Full walks, limit {r.walks.limit} (frontier cache in Redis)",
            "",
            "| data set | pages | rows | page p50 ms | mean ms | keyset rows (cells) "
            "| keyset queries | side rows | RSS start → max → end MiB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name, w in r.walks.walks.items():
            cr = r.walks.cell_rows.get(name)
            rss = [m for _, m in w.rss_mb]
            counts = (
                f"{cr.keyset_rows:,} | {cr.keyset_calls:,} | {cr.side_rows:,}"
                if cr
                else "– | – | –"
            )
            memory = f"{rss[0]:.0f} → {max(rss):.0f} → {rss[-1]:.0f}" if rss else "–"
            lines.append(
                f"| {name} | {w.pages:,} | {w.rows:,} | {_ms(w.page.p50)} | {_ms(w.page.mean)} "
                f"| {counts} | {memory} |"
            )
        lines.append("")
    if r.throughput or r.workers:
        lines += [
            "### Throughput (closed loop)",
            "",
            "| server | target | req/s | p50 ms | errors |",
            "|---|---|---:|---:|---:|",
        ]
        for name, loads in r.throughput.items():
            for target, load in loads.items():
                lines.append(
                    f"| {name} | {target} | {load.rps:.0f} | {_ms(load.latency.p50)} "
                    f"| {load.errors} |"
                )
        for count, load in sorted(r.workers.items()):
            lines.append(
                f"| 8 cells, --workers {count} | {DETAIL} | {load.rps:.0f} "
                f"| {_ms(load.latency.p50)} | {load.errors} |"
            )
        lines.append("")
    if r.freeze is not None:
        f = r.freeze
        lines += [
            "### One cell frozen",
            "",
            f"Healthy {f.healthy.rps:.0f} req/s ({f.healthy.errors} errors); cell1 frozen "
            f"(its proxy stops forwarding both ways), after its breaker opened "
            f"{f.frozen.rps:.0f} req/s ({f.frozen.errors} answers not naming cell1 "
            f"unavailable); the first request after the freeze took "
            f"{f.first_after_s * 1000:.0f} ms with a cell deadline of "
            f"{f.cell_timeout_s * 1000:.0f} ms"
            f"{'' if f.partial else ' and was not a partial page naming cell1'}.",
            "",
        ]
    for remote in r.remote:
        s = remote.strategies
        lines += [
            f"### Remote cells, {remote.delay_ms:g} ms each way (every cell and the unsharded "
            f"database behind a delay-line proxy; measured, it adds {remote.added_rtt_ms:.2f} ms "
            "to a round trip)",
            "",
            "| data set | limit | p50 ms | p95 ms |",
            "|---|---:|---:|---:|",
        ]
        for limit, lat in remote.first.items():
            for name, latency in lat.items():
                lines.append(f"| {name} | {limit} | {_ms(latency.p50)} | {_ms(latency.p95)} |")
        lines += [
            "",
            "In-process, 8 cells, both strategies reading the summary view's columns and "
            "no side data (only the strategy differs): "
            f"first page (limit 100) p50 Nova-style "
            f"{_ms(s.first_nova.p50)} ms vs cellgate {_ms(s.first_gateway.p50)} ms; a "
            f"{s.walk_pages}-page walk (limit 1000) {s.walk_nova_ms:.0f} vs "
            f"{s.walk_gateway_ms:.0f} ms; same rows: {s.same_rows}.",
            "",
        ]
    if r.small is not None:
        lines += ["### Small pages (walk tax, issue #25)", "", *small_lines(r.small), ""]
    if r.render:
        lines += [
            "### Rendering",
            "",
            "| limit | summary µs/server | detail µs/server | page CPU ms | detail render share |",
            "|---:|---:|---:|---:|---:|",
        ]
        for x in r.render:
            lines.append(
                f"| {x.limit} | {x.summary_us:.1f} | {x.detail_us:.1f} | {x.page_cpu_ms:.1f} "
                f"| {100 * x.detail_share:.0f}% |"
            )
        lines.append("")
    if r.mariadb is not None:
        lines += r.mariadb.tables(figures(r))
    return lines


def write_report(r: ScaleResults, out: Path, *, quick: bool, workdir: Path) -> Path:
    """``BENCHMARKS.md`` in ``out`` (keeping the notes between the markers of the file
    already there) and its plots in ``out/docs/bench/scale``."""
    path = out / "BENCHMARKS.md"
    notes = kept_notes(path)
    plotdir = out / "docs" / "bench" / "scale"
    plotdir.mkdir(parents=True, exist_ok=True)
    plots = [
        (name, title)
        for name, title in (
            (_by_cells(r, plotdir), "Latency vs cell count"),
            (_by_depth(r, plotdir), "Latency vs page depth"),
            (_remote(r, plotdir), "Local vs remote cells"),
            (_rss(r, plotdir), "Gateway RSS during a full walk"),
            (_workers(r, plotdir), "1 vs 2 workers"),
            (_soak(r, plotdir), "Soak: RSS and latency over time"),
        )
        if name is not None
    ]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `scripts/scalebench` (do not edit by hand, except between the notes "
        "markers at the end). Every figure below comes from **one run**: "
        f"`scripts/scalebench{' --quick' if quick else ''}`, started {r.started}, took "
        f"{r.took_s / 60:.1f} min. {r.instances:,} instances on Nova's tables; every layout "
        "holds the same instances (one seed). `scripts/bench` measures one host's finer "
        "detail (OFFSET vs keyset, in-process profiles): "
        "[docs/bench/single-host.md](docs/bench/single-host.md).",
        "",
        "| data set | instances per cell | visible to an admin |",
        "|---|---|---:|",
        *(
            f"| {d.name} | {', '.join(f'{n:,}' for n in d.per_cell)} | {d.visible:,} |"
            for d in r.data
        ),
        "",
        "Machine: " + ", ".join(f"{k}: {v}" for k, v in r.machine.items()),
        "",
        "## Figures",
        "",
        "| figure | ratio | goal | verdict | values |",
        "|---|---:|---|---|---|",
    ]
    for f in figures(r):
        lines.append(
            f"| {f.what} | **{f.value:.2f}×** | {f.goal} | {_VERDICT[f.met]} | {f.detail} |"
        )
    for phase, why in r.skipped.items():
        lines.append(f"| {phase} | – | – | not run: {why} | |")
    lines += ["", "## Details", "", *_tables(r)]
    if r.soak is not None:
        soak = r.soak
        lines += [
            f"### Soak: {soak.seconds / 60:g} minutes, {soak.users} users "
            "(scripts/locust_soak.py), 8 cells, Redis",
            "",
            f"{soak.totals.requests:,} requests, {soak.totals.failures} failures, "
            f"{soak.totals.rps:.1f} req/s. Gateway RSS {soak.rss.start_kib / 1024:.0f} → "
            f"{soak.rss.end_kib / 1024:.0f} MiB (peak {soak.rss.peak_kib / 1024:.0f}).",
            "",
            "| minute | requests | failures | req/s | p50 ms | p99 ms | worst p99 ms |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            *(
                f"| {m.minute + 1} | {m.requests:,} | {m.failures} | {m.rps:.1f} "
                f"| {_ms(m.p50_ms)} | {_ms(m.p99_ms)} | {_ms(m.p99_worst_ms)} |"
                for m in soak.minutes
            ),
            "",
        ]
        if soak.failure_reasons:
            lines += ["Failures: " + json.dumps(soak.failure_reasons), ""]
    lines += [f"![{title}](docs/bench/scale/{name})" for name, title in plots]
    lines += ["", "## Notes", "", NOTES_BEGIN, notes, NOTES_END, ""]
    path.write_text("\n".join(lines))
    return path
