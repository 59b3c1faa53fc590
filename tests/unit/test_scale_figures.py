"""scripts/cgbench/scale's figures (pure): each ratio from the right measurements, against
its goal, and only for what ran."""

from __future__ import annotations

import math

from cgbench.load import Load
from cgbench.results import Latency
from cgbench.scale.data import DataSet
from cgbench.scale.measure import CellRows, Walk
from cgbench.scale.phases import DETAIL, FLOOR, HEALTHZ, SUMMARY, Deep, Freeze, WalkFigures
from cgbench.scale.results import Figure, ScaleResults, figures


def _lat(ms: float) -> Latency:
    return Latency.of([ms / 1000] * 5)


def _data(cells: int) -> DataSet:
    return DataSet(cells, "nova", "pg://api", tuple(f"pg://c{n}" for n in range(cells)))


def _results() -> ScaleResults:
    return ScaleResults(1000, [_data(n) for n in (1, 4, 8, 32)], "now", {})


NAME = {n: _data(n).name for n in (1, 4, 8, 32)}


def _by_key(r: ScaleResults) -> dict[str, Figure]:
    return {f.key: f for f in figures(r)}


def test_nothing_measured_no_figures() -> None:
    assert figures(_results()) == []


def test_first_pages_and_cell_count() -> None:
    r = _results()
    r.local["nova"] = {
        100: {NAME[1]: _lat(4), NAME[8]: _lat(6), NAME[4]: _lat(5), NAME[32]: _lat(10)},
        1000: {NAME[1]: _lat(30), NAME[8]: _lat(40)},
    }
    found = _by_key(r)
    assert found["P1a local nova 100"].value == 1.5
    assert found["P1a local nova 100"].met is True  # goal <= 1.5
    assert math.isclose(found["P1a local nova 1000"].value, 40 / 30)
    assert found["P1a local nova 1000"].met is False  # goal <= 1.2
    assert found["P4 nova 100"].value == 2.0
    assert found["P4 nova 100"].met is False
    assert "P4 nova 1000" not in found  # 4 and 32 cells were not measured at 1000


def test_walk_figures_use_the_cells_own_counts() -> None:
    r = _results()
    walk = Walk(3, 2000, (0.01, 0.01, 0.01), ((1000, 100.0), (2000, 104.0)), 0)
    r.walks = WalkFigures(
        1000,
        {NAME[1]: walk, NAME[8]: walk, NAME[32]: walk},
        {NAME[8]: CellRows(2100, 30, 0, 0), NAME[32]: CellRows(2600, 90, 0, 0), NAME[1]: None},
        {},
    )
    found = _by_key(r)
    assert found["P1b"].value == 1.0
    assert math.isclose(found["P2 8"].value, 1.05)
    assert found["P2 8"].met is True
    assert math.isclose(found["P2 32"].value, 1.3)
    assert found["P2 32"].met is False
    assert math.isclose(found["P7"].value, 1.04)


def test_freeze_deep_page_and_throughput() -> None:
    r = _results()
    r.deep["nova"] = Deep(500, {NAME[8]: _lat(10)}, {NAME[8]: _lat(10.5)})
    r.freeze = Freeze(Load(100, 1000, 0, _lat(5)), Load(95, 950, 0, _lat(5)), 1.1, 1.0, True)
    r.throughput = {
        NAME[8]: {
            DETAIL: Load(60, 600, 0, _lat(5)),
            SUMMARY: Load(240, 2400, 0, _lat(2)),
            HEALTHZ: Load(600, 6000, 0, _lat(1)),
            FLOOR: Load(300, 3000, 0, _lat(1)),
        },
        NAME[1]: {
            DETAIL: Load(100, 1000, 0, _lat(3)),
            SUMMARY: Load(400, 4000, 0, _lat(1)),
            HEALTHZ: Load(1, 1, 0, _lat(1)),
        },
    }
    found = _by_key(r)
    assert math.isclose(found["P3 nova"].value, 1.05)
    assert math.isclose(found["P5"].value, 0.95)
    assert found["P5"].met is True
    assert math.isclose(found["P5 first"].value, 1.1)
    assert found[f"P8 {DETAIL}"].value == 0.6
    assert found[f"P8 {SUMMARY}"].value == 0.6
    assert found[f"P8 healthz {DETAIL}"].value == 0.1
    assert found[f"P8 healthz {DETAIL}"].met is False  # goal >= 0.15
    assert found[f"P8 healthz {SUMMARY}"].value == 0.4
    assert found[f"P8 healthz {SUMMARY}"].met is True
    assert found["P8 floor"].value == 0.5  # the floor against /healthz of the 8-cell server
    assert found["P8 floor"].met is None  # reported, no goal
    assert found["P8 gateway"].value == 0.8  # summary ÷ floor


def test_report_only_figures_have_no_verdict() -> None:
    assert Figure("x", "x", 3.0, "report", "").met is None
    assert Figure("x", "x", math.nan, "<= 1.5", "").met is None


def test_mariadb_figures_sit_beside_postgresqls() -> None:
    """The MariaDB phase's figures (P1a, P1b, P2 from rows *examined*, P3) join the run's,
    and its table puts each beside the PostgreSQL figure of the same key."""
    from cgbench.scale.mariadb import MariaDBRun
    from cgbench.scale.mariadbdata import DigestRows

    r = _results()
    r.local["nova"] = {100: {NAME[1]: _lat(10), NAME[8]: _lat(12)}}
    run = MariaDBRun([_data(1), _data(8)], {"mariadb version": "10.11"})
    run.first = {100: {NAME[1]: _lat(20), NAME[8]: _lat(40)}}
    walk = Walk(2, 2000, (0.01, 0.03), (), 0)
    run.walks = {NAME[1]: walk, NAME[8]: walk}
    run.walk_pages = 2
    run.digests = {NAME[8]: DigestRows(6000, 2002, 9, 10, 10)}
    run.depth, run.deep_first, run.deep = 500, {NAME[8]: _lat(10)}, {NAME[8]: _lat(30)}
    r.mariadb = run
    found = _by_key(r)
    assert found["P1a local nova 100"].value == 1.2
    assert found["P1a local nova 100 mariadb"].value == 2.0
    assert found["P1a local nova 100 mariadb"].met is False
    assert found["P1b mariadb"].value == 1.0
    assert "the first 2 pages" in found["P1b mariadb"].what
    assert found["P2 8 mariadb"].value == 3.0  # examined, not sent
    assert found["P3 nova mariadb"].value == 3.0
    table = "\n".join(run.tables(figures(r)))
    assert "| first-page p50, 8 cells ÷ unsharded, limit 100, local, nova indexes | <= 1.5 " \
        "| 1.20× | **2.00×** (missed) |" in table  # fmt: skip
    assert "| 8 cells, nova indexes | 2 | 2,000 | 20.0 | 20.0 | 6,000 | 2,002 | 9 | 10 |" in table
