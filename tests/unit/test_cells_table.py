"""``cellgate cells``' pure parts: breaker states from /readyz, and the table."""

from __future__ import annotations

import json

from cells.doctor import DatabaseReport, Diagnosis
from gateway.doctor import breakers_from_readyz, render_cells

READYZ = {
    "status": "warn",
    "checks": {
        "api_database": [{"status": "pass", "output": ""}],
        "cell:cell1": [{"status": "pass", "output": "", "breaker": "closed"}],
        "cell:cell2": [{"status": "warn", "output": "circuit breaker open", "breaker": "open"}],
    },
}

DIAGNOSIS = Diagnosis(
    DatabaseReport("API database", reachable=True),
    (
        DatabaseReport("cell1", "u1", reachable=True, latency_ms=1.25, instances=10),
        DatabaseReport("cell2", "u2", errors=("connection refused",)),
    ),
)


def test_breakers_from_readyz() -> None:
    assert breakers_from_readyz(READYZ) == {"cell1": "closed", "cell2": "open"}
    assert breakers_from_readyz({"status": "fail"}) == {}
    assert breakers_from_readyz("not a document") == {}


def test_table_with_breakers() -> None:
    lines = render_cells(DIAGNOSIS, breakers_from_readyz(READYZ), as_json=False).splitlines()
    assert [line.split() for line in lines[:3]] == [
        ["cell", "uuid", "reachable", "latency_ms", "instances", "breaker"],
        ["cell1", "u1", "yes", "1.2", "10", "closed"],
        ["cell2", "u2", "no", "-", "-", "open"],
    ]
    assert lines[3] == "  cell2: connection refused"


def test_json_without_a_gateway() -> None:
    rows = json.loads(render_cells(DIAGNOSIS, None, as_json=True))["cells"]
    assert rows[0] == {
        "name": "cell1",
        "uuid": "u1",
        "reachable": True,
        "disabled": False,
        "latency_ms": 1.25,
        "instances": 10,
        "breaker": None,
        "error": None,
    }
    assert rows[1]["error"] == "connection refused"
