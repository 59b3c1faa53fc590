"""scripts/cgbench/novaratio's pure parts: ratios, the report's tables, the JSON, and how a
listing's body is read."""

from __future__ import annotations

import json
import math

from cgbench.novaratio.figures import DataInfo, Figure, NovaRun, RunInfo, Side, statuses_text
from cgbench.novaratio.figures import to_json as run_json
from cgbench.novaratio.measure import ADMIN, MEMBER, listing, target
from cgbench.novaratio.report import render
from cgbench.results import Latency, Machine


def _side(ms: float, statuses: dict[int, int] | None = None, unavailable: str = "") -> Side:
    latency = Latency.of([ms / 1000] * 3) if ms else Latency.of([])
    return Side(latency, statuses or {200: 3}, 100, unavailable)


def _run(*figures: Figure) -> NovaRun:
    machine = Machine("cpu, 2 cores", "23 GiB", "Linux", "3.11", "fastapi 1", "abc1234")
    data = DataInfo(40_000, (20_000, 10_000, 0), 38_000, "demo", 11_000, "cell2", 9_500)
    info = RunInfo(
        "2026-12-06 18:00", 300.0, "scripts/novabench", 2, 4, "2.1", 3, 1, 1, 20, 100,
        machine, {"pg server_version": "15"}, data, "1.00 1.00 1.00", "2.00 2.00 2.00", 30.0,
    )  # fmt: skip
    return NovaRun(info, figures)


def test_ratio_is_nova_over_cellgate() -> None:
    figure = Figure("first page", "summary", _side(50.0), _side(5.0), True)
    assert figure.ratio == 10.0


def test_ratio_is_nan_without_samples() -> None:
    figure = Figure("first page", "summary", _side(0.0), _side(5.0), None)
    assert math.isnan(figure.ratio)


def test_statuses_text() -> None:
    assert statuses_text({500: 2, 200: 13}) == "13× 200, 2× 500"
    assert statuses_text({0: 1}) == "1× timeout"
    assert statuses_text({}) == "–"


def test_report_groups_and_rows() -> None:
    run = _run(
        Figure("first page", "summary, admin, limit 100", _side(80.0), _side(4.0), True),
        Figure("first page", "detail, admin, limit 100", _side(200.0), _side(10.0), False),
        Figure("walk", "detail, admin", _side(4000.0), _side(200.0), True),
        Figure(
            "one cell down",
            "summary, admin, limit 100",
            _side(30.0, {500: 3}),
            _side(5.0, {200: 3}, "cell2"),
            None,
        ),
    )
    text = render(run)
    assert "**2 worker processes each**" in text
    assert "nova-api took 20.0–20.0× cellgate's time" in text
    assert "| summary, admin, limit 100 | 80.0 | 4.0 | **20.00×** |" in text
    assert "| 4,000.0 | 200.0 | **20.00×** |" in text
    assert "3× 500 / 3× 200 (X-Cells-Unavailable: cell2)" in text
    assert "| 30.0 | 5.0 | 6.00× † |" in text
    assert "| **no** |" in text
    walks = text.index("### Marker walks: 20 pages of 100")
    down = text.index("### One cell down: cell2 refusing connections")
    assert text.index("| detail, admin |") in range(walks, down)


def test_json_has_ratios_and_no_nan() -> None:
    run = _run(
        Figure("first page", "a", _side(50.0), _side(5.0), True),
        Figure("first page", "b", _side(0.0), _side(5.0), None),
    )
    doc = json.loads(run_json(run))
    assert [f["ratio"] for f in doc["figures"]] == [10.0, None]
    assert doc["figures"][0]["nova"]["statuses"] == {"200": 3}
    assert doc["info"]["data"]["per_cell"] == [20_000, 10_000, 0]


def test_listing_reads_ids_and_the_next_link() -> None:
    body = json.dumps(
        {
            "servers": [{"id": "a"}, {"id": "b"}],
            "servers_links": [
                {"rel": "next", "href": "http://127.0.0.1:1/v2.1/servers?limit=2&marker=b"}
            ],
        }
    ).encode()
    assert listing(body) == (("a", "b"), "/v2.1/servers?limit=2&marker=b")
    assert listing(b'{"servers": []}') == ((), None)
    assert listing(b'{"computeFault": {"code": 500}}') == ((), None)
    assert listing(b"<html>") == ((), None)


def test_targets() -> None:
    assert target("detail", ADMIN, 100) == "/v2.1/servers/detail?limit=100&all_tenants=1"
    assert target("summary", MEMBER, 1000) == "/v2.1/servers?limit=1000"
    assert MEMBER.headers("2.1")["X-Project-Id"] == "demo"
    assert ADMIN.headers("2.1")["OpenStack-API-Version"] == "compute 2.1"
