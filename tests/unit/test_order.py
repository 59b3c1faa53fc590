"""Tests for cells.order: the one total order, checked against an independent oracle.

The oracle below never calls :func:`cells.order.key_function`: it compares two rows key by
key with explicit rules (NULL lowest, strings by code point, ``False < True``, datetimes
chronologically, ``desc`` reverses, ``uuid asc`` last) through ``functools.cmp_to_key``.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cells.order import Direction, SortSpec, SqlValue, key_function
from tests.support.sort_oracle import KIND_OF, oracle_cmp, oracle_sorted, sign

OracleRow = Mapping[str, SqlValue]

# Real `instances` columns by kind, and which of them are NOT NULL (stated here, not read
# from the schema, so the oracle stays independent of the code under test).
KINDS: dict[str, str] = {
    name: KIND_OF[name]
    for name in (
        "display_name",
        "hostname",
        "host",
        "task_state",
        "vm_state",
        "power_state",
        "progress",
        "launch_index",
        "deleted",
        "locked",
        "auto_disk_config",
        "launched_at",
        "updated_at",
        "created_at",
        "uuid",
    )
}
# `deleted` is nullable in Nova's models; `created_at` sorts as NOT NULL (Nova always sets it).
NOT_NULL = {"created_at", "uuid"}
SORT_COLUMNS = sorted(KINDS)


# --- the oracle -----------------------------------------------------------------------------


# --- strategies -----------------------------------------------------------------------------

# Prefixes, case, accents (precomposed and combining), astral code points, the BMP's edge.
STRING_POOL = [
    "",
    "a",
    "ab",
    "abc",
    "abd",
    "A",
    "AB",
    "Ab",
    "aB",
    "b",
    "B",
    "Z",
    "z",
    "_",
    " ",
    "a b",
    "é",
    "e\u0301",
    "É",
    "ß",
    "ss",
    "日本",
    "日",
    "😀",
    "😀a",
    "a😀",
    "\x7f",
    "\x80",
    "\uffff",
    "\U0010ffff",
    "a\x01",
]
# PostgreSQL text cannot hold NUL, and UTF-8 cannot hold surrogates.
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)
strings = st.one_of(st.sampled_from(STRING_POOL), texts)
ints = st.one_of(st.integers(-2, 2), st.integers(-(2**31), 2**31 - 1))
DATETIME_POOL = [
    dt.datetime(1970, 1, 1),
    dt.datetime(1969, 12, 31, 23, 59, 59, 999_999),
    dt.datetime(2024, 1, 1),
    dt.datetime(2024, 1, 1, 0, 0, 0, 1),
    dt.datetime(2024, 1, 1, 0, 0, 1),
]
datetimes = st.one_of(
    st.sampled_from(DATETIME_POOL),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),
)
BY_KIND: dict[str, st.SearchStrategy[SqlValue]] = {
    "str": strings,
    "int": ints,
    "bool": st.booleans(),
    "datetime": datetimes,
}


def value_strategy(name: str) -> st.SearchStrategy[SqlValue]:
    base = BY_KIND[KINDS[name]]
    # one_of picks a branch about evenly: roughly half of a nullable column's values are NULL.
    return base if name in NOT_NULL else st.one_of(st.none(), base)


row_values = st.fixed_dictionaries(
    {name: value_strategy(name) for name in SORT_COLUMNS if name != "uuid"}
)


@st.composite
def row_lists(draw: st.DrawFn, max_size: int = 30) -> list[dict[str, SqlValue]]:
    """Rows with unique uuids; drawing from small pools makes ties on other keys common."""
    rows = draw(st.lists(row_values, max_size=max_size))
    uuids = draw(st.lists(st.uuids(), min_size=len(rows), max_size=len(rows), unique=True))
    return [{**row, "uuid": str(u)} for row, u in zip(rows, uuids, strict=True)]


directions = st.sampled_from(list(Direction))
sort_pairs = st.lists(st.tuples(st.sampled_from(SORT_COLUMNS), directions), min_size=1, max_size=4)


def uuids_of(rows: Sequence[OracleRow]) -> list[SqlValue]:
    return [row["uuid"] for row in rows]


# --- key_function against the oracle --------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(rows=row_lists(), pairs=sort_pairs)
def test_sorting_by_key_function_matches_the_oracle(
    rows: list[dict[str, SqlValue]], pairs: list[tuple[str, Direction]]
) -> None:
    key_of = key_function(SortSpec.build(pairs))
    assert uuids_of(sorted(rows, key=key_of)) == uuids_of(oracle_sorted(rows, pairs))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(rows=row_lists(max_size=12), pairs=sort_pairs)
def test_key_tuples_compare_like_the_oracle_pairwise(
    rows: list[dict[str, SqlValue]], pairs: list[tuple[str, Direction]]
) -> None:
    key_of = key_function(SortSpec.build(pairs))
    cmp = oracle_cmp(pairs)
    for a, b in itertools.product(rows, repeat=2):
        assert sign(key_of(a), key_of(b)) == cmp(a, b), (a, b)


@given(
    prefix=st.one_of(st.sampled_from(STRING_POOL), texts),
    suffix=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1),
    name=st.sampled_from([n for n in SORT_COLUMNS if KINDS[n] == "str" and n != "uuid"]),
    direction=directions,
)
def test_a_prefix_sorts_next_to_its_extensions(
    prefix: str, suffix: str, name: str, direction: Direction
) -> None:
    # The same uuid order both ways, so only the string key can decide.
    short: dict[str, SqlValue] = {"uuid": "1", name: prefix}
    long: dict[str, SqlValue] = {"uuid": "2", name: prefix + suffix}
    key_of = key_function(SortSpec.build([(name, direction)]))
    expected = [short, long] if direction is Direction.ASC else [long, short]
    assert sorted([long, short], key=key_of) == expected
    assert sorted([short, long], key=key_of) == expected


@pytest.mark.parametrize("name", ["display_name", "power_state", "locked", "launched_at"])
def test_null_is_first_ascending_and_last_descending(name: str) -> None:
    lowest: dict[str, SqlValue] = {
        "display_name": "",
        "power_state": -(2**31),
        "locked": False,
        "launched_at": dt.datetime(1900, 1, 1),
    }
    null_row: dict[str, SqlValue] = {"uuid": "b", name: None}
    lowest_row: dict[str, SqlValue] = {"uuid": "a", name: lowest[name]}
    asc = key_function(SortSpec.build([(name, Direction.ASC)]))
    desc = key_function(SortSpec.build([(name, Direction.DESC)]))
    assert sorted([lowest_row, null_row], key=asc) == [null_row, lowest_row]
    assert sorted([null_row, lowest_row], key=desc) == [lowest_row, null_row]


def test_strings_compare_by_code_point_not_by_locale() -> None:
    names = ["b", "a", "B", "é", "Z", "ab", "😀", "e"]
    rows = [{"uuid": str(i), "display_name": n} for i, n in enumerate(names)]
    key_of = key_function(SortSpec.build([("display_name", Direction.ASC)]))
    got = [row["display_name"] for row in sorted(rows, key=key_of)]
    assert got == sorted(names, key=lambda s: [ord(ch) for ch in s])
    assert got.index("B") < got.index("a")  # upper case first, as in the "C" collation


# --- SortSpec.build and position_of ---------------------------------------------------------


@given(pairs=st.lists(st.tuples(st.sampled_from(SORT_COLUMNS), directions), max_size=8))
def test_build_keeps_first_occurrences_and_ends_with_uuid(
    pairs: list[tuple[str, Direction]],
) -> None:
    spec = SortSpec.build(pairs)
    first: dict[str, Direction] = {}
    for name, direction in pairs:
        first.setdefault(name, direction)
    first.setdefault("uuid", Direction.ASC)
    assert [(k.name, k.direction) for k in spec.keys] == list(first.items())
    assert spec.names == tuple(first)
    assert len(set(spec.names)) == len(spec.names)
    assert "uuid" in spec.names
    if "uuid" not in dict(pairs):
        assert spec.keys[-1].name == "uuid"
        assert spec.keys[-1].direction is Direction.ASC
    for key in spec.keys:
        assert key.kind == KINDS[key.name]
        assert key.nullable is (key.name not in NOT_NULL)


def test_build_rejects_unknown_columns() -> None:
    with pytest.raises(KeyError):
        SortSpec.build([("no_such_column", Direction.ASC)])


def test_default_order_is_created_at_desc_then_uuid_asc() -> None:
    spec = SortSpec.build([("created_at", Direction.DESC)])
    assert [(k.name, k.direction) for k in spec.keys] == [
        ("created_at", Direction.DESC),
        ("uuid", Direction.ASC),
    ]


def expected_names(pairs: Sequence[tuple[str, Direction]]) -> list[str]:
    names = list(dict.fromkeys(name for name, _ in pairs))
    return names if "uuid" in names else [*names, "uuid"]


@given(rows=row_lists(max_size=5), pairs=sort_pairs)
def test_position_of_is_the_raw_values_in_key_order(
    rows: list[dict[str, SqlValue]], pairs: list[tuple[str, Direction]]
) -> None:
    spec = SortSpec.build(pairs)
    names = expected_names(pairs)
    for row in rows:
        position = spec.position_of(row)
        assert len(position) == len(names)
        for name, value in zip(names, position, strict=True):
            assert value is row[name]
    positions = {spec.position_of(row) for row in rows}
    assert len(positions) == len(rows)  # uuid makes every position unique
