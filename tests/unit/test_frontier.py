"""Frontier encoding: exact round trips, and every malformed blob is a miss."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest

from cells.walk import CellCursor, decode_frontier, encode_frontier

COLUMNS = ("uuid", "display_name", "created_at", "launched_at", "power_state", "locked")
DATETIMES = frozenset({"created_at", "launched_at"})
UTC = dt.UTC
T0 = dt.datetime(2024, 2, 29, 23, 59, 59, 123456)
T1 = dt.datetime(2023, 1, 1, 0, 0, 0)


def _row(
    uuid: str,
    name: str | None = "vm",
    created: dt.datetime = T0,
    launched: dt.datetime | None = T1,
    power: int | None = 1,
    locked: bool | None = False,
) -> dict[str, object]:
    return {
        "uuid": uuid,
        "display_name": name,
        "created_at": created,
        "launched_at": launched,
        "power_state": power,
        "locked": locked,
    }


def _frontier() -> dict[int, CellCursor]:
    return {
        1: CellCursor(
            (T0, "b-uuid"),
            False,
            [
                _row("a-uuid", "Ünïcødé ☃ 名前", T0, None, None, None),  # type: ignore[list-item]  # _row builds dict[str, object] where a Row is expected
                _row("b-uuid", None, T0.replace(microsecond=0), T1, 4, True),  # type: ignore[list-item]  # _row builds dict[str, object] where a Row is expected
            ],
        ),
        2: CellCursor(None, True, []),
        3: CellCursor((None, "c-uuid"), False, []),  # drained, cursor at a NULL
        -7: CellCursor(("x", 3, False, T1.replace(tzinfo=UTC)), False, [_row("d")]),  # type: ignore[list-item]  # _row builds dict[str, object] where a Row is expected
    }


def test_round_trip_is_exact() -> None:
    original = _frontier()
    blob = encode_frontier(original, COLUMNS, DATETIMES, 0.0)  # type: ignore[arg-type]  # the cursors hold dict[str, object] rows (_row)
    assert decode_frontier(blob, COLUMNS) == original


def test_round_trip_keeps_types() -> None:
    decoded = decode_frontier(encode_frontier(_frontier(), COLUMNS, DATETIMES, 0.0), COLUMNS)  # type: ignore[arg-type]  # the cursors hold dict[str, object] rows (_row)
    assert decoded is not None
    first = decoded[1]
    assert isinstance(first.position, tuple)
    assert type(first.position[0]) is dt.datetime
    assert first.rows[0]["created_at"] == T0
    assert first.rows[0]["launched_at"] is None  # NULL in a datetime column stays NULL
    assert first.rows[1]["launched_at"] == T1
    assert first.rows[1]["locked"] is True
    assert first.rows[0]["display_name"] == "Ünïcødé ☃ 名前"
    aware = decoded[-7].position
    assert aware is not None
    assert aware[3] == T1.replace(tzinfo=UTC)
    assert aware[3].tzinfo is not None  # naive and aware are not confused
    assert first.rows[0]["created_at"].tzinfo is None  # type: ignore[union-attr]  # a row value is SqlValue; created_at is a datetime


def test_a_string_that_looks_like_a_date_stays_a_string() -> None:
    frontier = {
        1: CellCursor(("2024-01-01T00:00:00",), False, [_row("u", "2024-01-01T00:00:00")])  # type: ignore[list-item]  # _row builds dict[str, object] where a Row is expected
    }
    decoded = decode_frontier(encode_frontier(frontier, COLUMNS, DATETIMES, 0.0), COLUMNS)  # type: ignore[arg-type]  # the cursors hold dict[str, object] rows (_row)
    assert decoded == frontier
    assert decoded is not None
    assert decoded[1].position == ("2024-01-01T00:00:00",)
    assert decoded[1].rows[0]["display_name"] == "2024-01-01T00:00:00"


def test_empty_frontier() -> None:
    assert decode_frontier(encode_frontier({}, COLUMNS, DATETIMES, 0.0), COLUMNS) == {}


def test_other_columns_are_a_miss() -> None:
    blob = encode_frontier(_frontier(), COLUMNS, DATETIMES, 0.0)  # type: ignore[arg-type]  # the cursors hold dict[str, object] rows (_row)
    assert decode_frontier(blob, COLUMNS[:-1]) is None
    assert decode_frontier(blob, tuple(reversed(COLUMNS))) is None
    assert decode_frontier(blob, (*COLUMNS, "host")) is None


def test_other_format_version_is_a_miss() -> None:
    body = orjson.loads(encode_frontier(_frontier(), COLUMNS, DATETIMES, 0.0))  # type: ignore[arg-type]  # the cursors hold dict[str, object] rows (_row)
    body["f"] = 1  # before "t": no fetch time, so never trusted
    assert decode_frontier(orjson.dumps(body), COLUMNS) is None


def test_a_frontier_fetched_too_long_ago_is_a_miss() -> None:
    blob = encode_frontier(_frontier(), COLUMNS, DATETIMES, 1000.0)  # type: ignore[arg-type]  # the cursors hold dict[str, object] rows (_row)
    assert decode_frontier(blob, COLUMNS, fetched_since=999.0) is not None
    assert decode_frontier(blob, COLUMNS, fetched_since=1000.0) is not None
    assert decode_frontier(blob, COLUMNS, fetched_since=1000.5) is None


def _valid_body() -> dict[str, object]:
    body: dict[str, object] = orjson.loads(encode_frontier(_frontier(), COLUMNS, DATETIMES, 0.0))  # type: ignore[arg-type]  # the cursors hold dict[str, object] rows (_row)
    return body


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x00\xff\xfe garbage",
        b"not json",
        b'{"f": 1',  # truncated
        b"[]",
        b"null",
        b'"a string"',
        b"42",
        b"{}",
        b'{"f": 1, "c": ["uuid"]}',
    ],
)
def test_garbage_is_a_miss(blob: bytes) -> None:
    assert decode_frontier(blob, COLUMNS) is None


def _mutations() -> list[tuple[str, dict[str, object]]]:
    cases: list[tuple[str, dict[str, object]]] = []

    def mutate(name: str, change: object) -> None:
        body = _valid_body()
        change(body)  # type: ignore[operator]  # change is one of a parametrized set of callables
        cases.append((name, body))

    mutate("cells-not-a-list", lambda b: b.__setitem__("cells", 5))
    mutate("cell-too-short", lambda b: b["cells"].__setitem__(0, [1, False]))
    mutate("cell-too-long", lambda b: b["cells"][0].append("extra"))
    mutate("cell-id-not-int", lambda b: b["cells"][0].__setitem__(0, "one"))
    mutate("cell-id-null", lambda b: b["cells"][0].__setitem__(0, None))
    mutate("row-too-short", lambda b: b["cells"][0][4][0].pop())
    mutate("row-too-long", lambda b: b["cells"][0][4][0].append(1))
    mutate("row-not-a-list", lambda b: b["cells"][0][4].__setitem__(0, 7))
    mutate("table-not-a-list", lambda b: b["cells"][0].__setitem__(4, 7))
    mutate("bad-datetime", lambda b: b["cells"][0][4][0].__setitem__(2, "yesterday"))
    mutate("bad-position-datetime", lambda b: b["cells"][0][2].__setitem__(0, "soon"))
    mutate("datetime-column-out-of-range", lambda b: b.__setitem__("d", [99]))
    mutate("position-datetime-out-of-range", lambda b: b["cells"][0].__setitem__(3, [99]))
    mutate("datetime-slots-not-a-list", lambda b: b.__setitem__("d", 3))
    mutate("columns-missing", lambda b: b.pop("c"))
    return cases


@pytest.mark.parametrize(("name", "body"), _mutations(), ids=[n for n, _ in _mutations()])
def test_malformed_frontier_is_a_miss(name: str, body: dict[str, object]) -> None:
    assert decode_frontier(orjson.dumps(body), COLUMNS) is None
