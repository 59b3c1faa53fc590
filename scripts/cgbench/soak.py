"""The saturation soak (issue #10): ``scripts/locust_soak.py``'s mixed users against a
running gateway for minutes while the gateway's RSS is sampled.

    cd scripts && python3 -m cgbench.soak --url http://127.0.0.1:PORT --pid PID \\
        --seconds 600 --users 8 --out DIR

Locust runs headless and stops itself (``-t``); its CSVs (``soak_stats.csv``,
``soak_stats_history.csv``, ``soak_failures.csv``) and log stay in the work directory,
next to ``soak.json`` and ``soak.png``. Only 127.0.0.1 is a valid target.

Figures: totals and failures come from locust's final stats; per-minute requests/s from
the cumulative counts of its per-second history; per-minute p50/p99 from the history's
percentiles, which locust computes over a sliding window of about 10 s (with
``--csv-full-history``), so a minute's p50 and p99 are the medians of its window readings
and ``p99_worst_ms`` the worst window. RSS is ``VmRSS`` of the gateway process plus all its
descendants (``serve --workers N``), sampled every few seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from matplotlib.figure import Figure

from cgbench import REPO
from cgbench.console import say
from cgbench.procs import stop_process
from cgbench.rss import tree_rss_kib
from cgbench.soakstats import (
    RssSample,
    SoakResult,
    parse_failures,
    parse_history,
    parse_totals,
    per_minute,
    rss_growth,
)

LOCUSTFILE = REPO / "scripts" / "locust_soak.py"
PREFIX = "soak"
SAMPLE_EVERY_S = 5.0
GRACE_S = 60.0  # beyond -t: locust's stop timeout, CSV flush, start-up


def check_local(url: str) -> str:
    """``url`` without a trailing slash, or ValueError when it is not on 127.0.0.1."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1":
        raise ValueError(f"the soak only targets http://127.0.0.1:PORT, not {url!r}")
    return url.rstrip("/")


def run_soak(
    base_url: str,
    gateway_pid: int,
    seconds: int,
    users: int,
    workdir: Path,
    *,
    follow_partial: bool = False,
) -> SoakResult:
    """Run the soak for ``seconds`` with ``users`` closed-loop users; CSVs go to ``workdir``.
    ``follow_partial``: a page naming unavailable cells is an answer (walks go on), not a
    failure (``SOAK_PARTIAL_PAGES`` in ``scripts/locust_soak.py``)."""
    url = check_local(base_url)
    if not Path(f"/proc/{gateway_pid}").is_dir():
        raise ValueError(f"no process {gateway_pid}")
    if importlib.util.find_spec("locust") is None:
        raise RuntimeError("locust is not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    prefix = workdir / PREFIX
    cmd = [
        *(sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", url),
        *("--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds}s"),
        *("--csv", str(prefix), "--csv-full-history", "--only-summary"),
        *("--stop-timeout", "5", "--exit-code-on-error", "0", "--loglevel", "WARNING"),
    ]
    say(f"soak: {users} users, {seconds} s against {url} (gateway pid {gateway_pid})")
    t0 = time.monotonic()
    samples = [RssSample(0.0, tree_rss_kib(gateway_pid))]
    log_path = workdir / "locust.log"
    with open(log_path, "wb") as log:
        # Its own session: a ^C here reaches us, and the finally below stops locust.
        env = {**os.environ, "SOAK_PARTIAL_PAGES": "follow" if follow_partial else "fail"}
        proc = subprocess.Popen(
            cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while proc.poll() is None:
                try:
                    proc.wait(SAMPLE_EVERY_S)
                except subprocess.TimeoutExpired:
                    elapsed = time.monotonic() - t0
                    samples.append(RssSample(elapsed, tree_rss_kib(gateway_pid)))
                    if elapsed > seconds + GRACE_S:
                        say("soak: locust overran its time; stopping it")
                        break
        finally:
            stop_process(proc)
    samples.append(RssSample(time.monotonic() - t0, tree_rss_kib(gateway_pid)))
    stats = Path(f"{prefix}_stats.csv")
    if not stats.is_file():
        raise RuntimeError(f"locust wrote no stats (exit {proc.returncode}); see {log_path}")
    failures = Path(f"{prefix}_failures.csv")
    history = parse_history(Path(f"{prefix}_stats_history.csv").read_text())
    return SoakResult(
        url=url,
        users=users,
        seconds=seconds,
        totals=parse_totals(stats.read_text()),
        failure_reasons=parse_failures(failures.read_text()) if failures.is_file() else {},
        rss=rss_growth(samples, warmup_s=min(60.0, seconds / 5)),
        minutes=per_minute(history),
        history=history,
        rss_samples=samples,
        locust_exit=proc.returncode,
    )


def plot_soak(r: SoakResult, path: Path) -> None:
    """RSS, and p50/p99 with requests/s, over the soak (PNG, matplotlib without pyplot)."""
    fig = Figure(figsize=(10, 7))
    ax1 = fig.add_subplot(2, 1, 1)
    ax1.plot([s.t_s for s in r.rss_samples], [s.rss_kib / 1024 for s in r.rss_samples], "o-")
    ax1.set_ylabel("gateway RSS (MiB)")
    ax1.set_title(
        f"Soak: {r.users} users, {r.seconds} s, {r.totals.requests} requests, "
        f"{r.totals.failures} failures, RSS {r.rss.growth_after_warmup_pct:+.1f}% after the "
        f"warm-up ({r.rss.growth_pct:+.1f}% from idle)"
    )
    ax1.grid(alpha=0.3)
    ax2 = fig.add_subplot(2, 1, 2, sharex=ax1)
    ts = [p.t_s for p in r.history]
    ax2.plot(ts, [p.p50_ms for p in r.history], label="p50 (10 s window)", color="#1f77b4")
    ax2.plot(ts, [p.p99_ms for p in r.history], label="p99 (10 s window)", color="#d62728")
    ax2.set_xlabel("seconds")
    ax2.set_ylabel("ms")
    ax2.grid(alpha=0.3)
    ax2.legend(loc="upper left")
    rps = ax2.twinx()
    rps.plot(ts, [p.rps for p in r.history], color="#2ca02c", alpha=0.5, label="requests/s")
    mids = [60 * m.minute + m.seconds / 2 for m in r.minutes]
    rps.plot(mids, [m.rps for m in r.minutes], "s", color="#2ca02c", label="requests/s (minute)")
    rps.set_ylabel("requests/s")
    rps.set_ylim(bottom=0)
    rps.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def summary(r: SoakResult) -> str:
    t, g = r.totals, r.rss
    lines = [
        f"requests {t.requests}, failures {t.failures}, {t.rps:.1f} req/s, "
        f"p50 {t.p50_ms:.0f} ms, p99 {t.p99_ms:.0f} ms",
        f"RSS {g.start_kib / 1024:.1f} → {g.end_kib / 1024:.1f} MiB ({g.growth_pct:+.1f}%), "
        f"after warm-up {g.warm_kib / 1024:.1f} MiB ({g.growth_after_warmup_pct:+.1f}%), "
        f"peak {g.peak_kib / 1024:.1f} MiB",
        "minute  seconds  requests  failures   req/s   p50 ms   p99 ms  worst p99",
    ]
    lines += [
        f"{m.minute:>6} {m.seconds:>8} {m.requests:>9} {m.failures:>9} {m.rps:>7.1f}"
        f" {m.p50_ms:>8.0f} {m.p99_ms:>8.0f} {m.p99_worst_ms:>10.0f}"
        for m in r.minutes
    ]
    lines += [f"failure: {reason} × {n}" for reason, n in r.failure_reasons.items()]
    return "\n".join(lines)


def _json_safe(value: object) -> object:
    """NaN (no readings) as null, so the JSON stays strict."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m cgbench.soak", description=__doc__)
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT of the gateway")
    parser.add_argument("--pid", type=int, required=True, help="the gateway's process id")
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--out", type=Path, required=True, help="directory for CSVs, JSON, PNG")
    args = parser.parse_args(argv)
    # A TERM (or a ^C: KeyboardInterrupt) unwinds run_soak, whose finally stops locust.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = run_soak(args.url, args.pid, args.seconds, args.users, args.out)
    except (ValueError, RuntimeError) as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("soak: interrupted; locust stopped", file=sys.stderr)
        return 130
    (args.out / "soak.json").write_text(
        json.dumps(_json_safe(dataclasses.asdict(result)), indent=1)
    )
    plot_soak(result, args.out / "soak.png")
    print(summary(result))
    print(f"wrote {args.out / 'soak.json'} and {args.out / 'soak.png'}")
    return 1 if result.totals.failures or not result.totals.requests else 0


if __name__ == "__main__":
    sys.exit(main())
