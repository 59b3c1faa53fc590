"""scripts/cgbench/soak's pure parts: locust's CSVs into per-minute figures, RSS growth."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from cgbench.rss import vmrss_kib
from cgbench.soak import check_local, plot_soak
from cgbench.soakstats import (
    HistoryPoint,
    RssSample,
    SoakResult,
    parse_counts,
    parse_failures,
    parse_history,
    parse_totals,
    per_minute,
    rss_growth,
)

HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,"
    "99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,"
    "Total Average Response Time,Total Min Response Time,Total Max Response Time,"
    "Total Average Content Size"
)


def row(ts: int, requests: int, failures: int, p50: str, p99: str, name: str = "Aggregated") -> str:
    kind = "" if name == "Aggregated" else "GET"
    pcts = [p50] * 7 + [p99] * 4  # 50% .. 98%, then 99% .. 100%
    totals = [str(requests), str(failures), "80", "90.5", "10", "900", "1000.0"]
    return ",".join([str(ts), "8", kind, name, "1.0", "0.0", *pcts, *totals])


def history(*rows: str) -> str:
    return "\n".join([HISTORY_HEADER, *rows]) + "\n"


def test_history_keeps_aggregated_rows_and_drops_missing_percentiles() -> None:
    text = history(
        row(1000, 0, 0, "N/A", "N/A"),
        row(1001, 12, 0, "0", "0"),  # no 10 s window yet
        row(1001, 5, 0, "70", "300", name="show by id [demo]"),
        row(1002, 30, 1, "80", "400"),
    )
    points = parse_history(text)
    assert [(p.t_s, p.requests, p.failures) for p in points] == [(0, 0, 0), (1, 12, 0), (2, 30, 1)]
    assert math.isnan(points[0].p50_ms)
    assert math.isnan(points[1].p99_ms)
    assert (points[2].p50_ms, points[2].p99_ms, points[2].users) == (80.0, 400.0, 8)


def test_counts_sum_the_names_with_a_prefix_carrying_each_last_value() -> None:
    text = history(
        row(1000, 9, 0, "1", "1"),  # Aggregated: never counted
        row(1000, 3, 0, "1", "1", name="walk page 2+ [admin]"),
        row(1001, 5, 0, "1", "1", name="walk page 2+ [demo]"),  # admin's 3 carried
        row(1001, 7, 0, "1", "1", name="show by id [demo]"),
        row(1002, 4, 0, "1", "1", name="walk page 2+ [admin]"),
    )
    assert parse_counts(text, "walk page 2+") == [(1000, 3), (1001, 8), (1002, 9)]
    assert parse_counts(text) == [(1000, 3), (1001, 15), (1002, 16)]
    assert parse_counts(HISTORY_HEADER + "\n") == []


def test_history_without_rows_is_empty() -> None:
    assert parse_history(HISTORY_HEADER + "\n") == []
    assert per_minute([]) == []


def test_per_minute_counts_rates_and_percentiles() -> None:
    text = history(
        row(1000, 0, 0, "N/A", "N/A"),
        row(1020, 200, 0, "100", "500"),
        row(1040, 400, 0, "120", "900"),
        row(1059, 600, 1, "110", "600"),
        row(1080, 900, 1, "200", "700"),
        row(1119, 1200, 4, "220", "800"),
        row(1123, 1230, 4, "230", "2000"),  # a 4 s tail joins minute 1
    )
    minutes = per_minute(parse_history(text))
    assert [(m.minute, m.seconds, m.requests, m.failures) for m in minutes] == [
        (0, 59, 600, 1),
        (1, 64, 630, 3),
    ]
    first, second = minutes
    assert first.rps == pytest.approx(600 / 59)
    assert (first.p50_ms, first.p99_ms, first.p99_worst_ms) == (110.0, 600.0, 900.0)
    assert (second.p50_ms, second.p99_ms, second.p99_worst_ms) == (220.0, 800.0, 2000.0)


def test_a_long_tail_is_a_minute_of_its_own() -> None:
    points = [
        HistoryPoint(0, 8, 0, 0, 0.0, math.nan, math.nan),
        HistoryPoint(59, 8, 590, 0, 10.0, 50.0, 90.0),
        HistoryPoint(75, 0, 700, 0, 6.0, math.nan, math.nan),
    ]
    minutes = per_minute(points)
    assert [(m.minute, m.seconds, m.requests) for m in minutes] == [(0, 59, 590), (1, 16, 110)]
    assert math.isnan(minutes[1].p50_ms)
    assert math.isnan(minutes[1].p99_worst_ms)


def test_totals_and_failures() -> None:
    stats = (
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
        "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
        "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\n"
        "GET,show by id [demo],40,1,30,35,10,90,800,2.0,0.05,30,33,40,45,60,70,80,90,90,90,90\n"
        "GET,walk page 2+ [admin],60,0,80,85,40,300,90000,3.0,0,80,85,90,95,100,200,250,300,"
        "300,300,300\n"
        ",Aggregated,100,1,60,65,10,300,54000,5.0,0.05,60,70,80,85,95,180,240,290,300,300,300\n"
    )
    totals = parse_totals(stats)
    assert (totals.requests, totals.failures, totals.rps) == (100, 1, 5.0)
    assert (totals.p50_ms, totals.p99_ms) == (60.0, 290.0)
    assert totals.by_name == {"show by id [demo]": 40, "walk page 2+ [admin]": 60}
    failures = "Method,Name,Error,Occurrences\nGET,show by id [demo],status 404,1\n"
    assert parse_failures(failures) == {"show by id [demo]: status 404": 1}


def test_rss_growth_from_start_and_after_warmup() -> None:
    samples = [RssSample(0, 100_000), RssSample(5, 150_000), RssSample(12, 160_000)]
    samples += [RssSample(30, 180_000), RssSample(61, 176_000)]
    growth = rss_growth(samples, warmup_s=10)
    assert (growth.start_kib, growth.warm_kib, growth.end_kib) == (100_000, 160_000, 176_000)
    assert growth.peak_kib == 180_000
    assert growth.growth_pct == pytest.approx(76.0)
    assert growth.growth_after_warmup_pct == pytest.approx(10.0)


def test_rss_growth_edge_cases() -> None:
    with pytest.raises(ValueError, match="no RSS samples"):
        rss_growth([], warmup_s=10)
    gone = rss_growth([RssSample(0, 0), RssSample(5, 0)], warmup_s=60)
    assert gone.warm_kib == 0
    assert math.isnan(gone.growth_pct)


def test_vmrss_of_a_status_text() -> None:
    assert vmrss_kib("Name:\tpython3\nVmPeak:\t  999 kB\nVmRSS:\t  215932 kB\n") == 215932
    assert vmrss_kib("Name:\tzombie\nState:\tZ (zombie)\n") == 0


@pytest.mark.parametrize(
    "url",
    ["http://10.0.0.5:8774", "http://localhost:8774", "https://127.0.0.1:8774", "127.0.0.1:8774"],
)
def test_only_loopback_is_a_target(url: str) -> None:
    with pytest.raises(ValueError, match="only targets"):
        check_local(url)


def test_loopback_url_is_normalised() -> None:
    assert check_local("http://127.0.0.1:18774/") == "http://127.0.0.1:18774"


def test_plot_draws_a_png(tmp_path: Path) -> None:
    points = parse_history(history(row(1000, 0, 0, "N/A", "N/A"), row(1030, 300, 0, "90", "400")))
    samples = [RssSample(0, 200_000), RssSample(30, 210_000)]
    totals = parse_totals(
        "Type,Name,Request Count,Failure Count,Requests/s,50%,99%\n,Aggregated,300,0,10.0,90,400\n"
    )
    result = SoakResult(
        url="http://127.0.0.1:1",
        users=2,
        seconds=30,
        totals=totals,
        failure_reasons={},
        rss=rss_growth(samples, warmup_s=6),
        minutes=per_minute(points),
        history=points,
        rss_samples=samples,
        locust_exit=0,
    )
    plot_soak(result, tmp_path / "soak.png")
    assert (tmp_path / "soak.png").read_bytes()[:4] == b"\x89PNG"
