"""gateway.request: every repeat of a single-valued parameter validated, costly input bounded."""

from __future__ import annotations

import pytest

from gateway.auth import Principal
from gateway.errors import BadRequest
from gateway.params import (
    MAX_PARAM_REPEATS,
    MAX_REGEX_LENGTH,
    MAX_SORT_KEYS,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    TAG_FILTERS,
    VALID_SORT_KEYS,
)
from gateway.request import ListRequest, parse_list_request
from tests.support.callers import ADMIN, USER, grants

LATEST = (2, 90)


def parse(
    items: list[tuple[str, str]], principal: Principal = ADMIN, version: tuple[int, int] = LATEST
) -> ListRequest:
    return parse_list_request(items, principal, grants(principal), version, max_limit=1000)


def rejected(
    items: list[tuple[str, str]], principal: Principal = ADMIN, version: tuple[int, int] = LATEST
) -> str:
    with pytest.raises(BadRequest) as caught:
        parse(items, principal, version)
    return caught.value.message


def test_nova_bounds() -> None:
    assert (MAX_TAGS, MAX_TAG_LENGTH, MAX_REGEX_LENGTH) == (50, 60, 255)


# --- repeats: the last wins, every one is validated -----------------------------------------


@pytest.mark.parametrize(
    "items",
    [
        [("limit", "x"), ("limit", "2")],
        [("limit", "2"), ("limit", "x")],
        [("limit", "-1"), ("limit", "2")],
        [("changes-since", "yesterday"), ("changes-since", "2024-06-01T00:00:00Z")],
        [("changes-before", "2024-13-01"), ("changes-before", "2024-06-01")],
        [("locked", "perhaps"), ("locked", "true")],
        [("all_tenants", "maybe"), ("all_tenants", "1")],
        [("name", "("), ("name", "a")],
        [("hostname", "[a-"), ("hostname", "a")],
        [("tags", ",".join(f"t{i}" for i in range(MAX_TAGS + 1))), ("tags", "a")],
    ],
    ids=lambda items: f"{items[0][0]}={items[0][1][:12]}",
)
def test_an_invalid_earlier_repeat_is_400(items: list[tuple[str, str]]) -> None:
    assert items[0][0] in rejected(items)


def test_the_last_valid_repeat_wins() -> None:
    parsed = parse(
        [
            ("limit", "5"),
            ("limit", "2"),
            ("locked", "true"),
            ("locked", "false"),
            ("name", "a"),
            ("name", "b"),
            ("tags", "x"),
            ("tags", "y,z"),
            ("changes-since", "2024-01-01"),
            ("changes-since", "2024-06-01"),
        ]
    )
    assert parsed.limit == 2
    assert parsed.filters.locked is False
    assert parsed.filters.regex == (("display_name", "b"),)
    assert parsed.filters.tags == frozenset({"y", "z"})
    assert parsed.filters.changes_since is not None
    assert parsed.filters.changes_since.month == 6


def test_repeated_all_tenants_needs_every_value_valid() -> None:
    assert parse([("all_tenants", ""), ("all_tenants", "1")]).all_tenants
    assert not parse([("all_tenants", "1"), ("all_tenants", "0")]).all_tenants


# --- bounds --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TAG_FILTERS)
def test_tags_per_filter(name: str) -> None:
    at_bound = ",".join(f"t{i}" for i in range(MAX_TAGS))
    assert len(getattr(parse([(name, at_bound)]).filters, name.replace("-", "_"))) == MAX_TAGS
    over = f"{at_bound},extra"
    message = rejected([(name, over)])
    assert name in message
    assert f"at most {MAX_TAGS}" in message


def test_empty_tags_do_not_count() -> None:
    value = ",".join(["a", *[""] * 100, " "])
    assert parse([("tags", value)]).filters.tags == frozenset({"a"})


def test_the_issue_1000_tags_are_400_for_a_user_at_2_26() -> None:
    value = ",".join(f"t{i}" for i in range(1000))
    with pytest.raises(BadRequest, match="1000 tags"):
        parse_list_request([("tags", value)], USER, grants(USER), (2, 26), 1000)


@pytest.mark.parametrize("name", TAG_FILTERS)
def test_tag_length(name: str) -> None:
    assert parse([(name, "a" * MAX_TAG_LENGTH)])
    message = rejected([(name, f"ok,{'a' * (MAX_TAG_LENGTH + 1)}")])
    assert f"longer than {MAX_TAG_LENGTH}" in message


@pytest.mark.parametrize("name", ["name", "display_name", "hostname", "description", "node"])
def test_regex_length(name: str) -> None:
    assert parse([(name, "a" * MAX_REGEX_LENGTH)]).filters.regex
    message = rejected([(name, "a" * (MAX_REGEX_LENGTH + 1))])
    assert name in message
    assert f"at most {MAX_REGEX_LENGTH}" in message


def test_regex_length_counts_characters_not_bytes() -> None:
    assert parse([("name", "é" * MAX_REGEX_LENGTH)]).filters.regex


def test_a_regex_python_warns_about_is_judged_by_re_alone() -> None:
    # re warns "Possible nested set" (a FutureWarning, an error under -W error) first.
    assert "is not a 'regex'" in rejected([("name", "[[")])
    assert parse([("name", "[[a]")]).filters.regex == (("display_name", "[[a]"),)


def test_sort_keys() -> None:
    keys = sorted(VALID_SORT_KEYS)[:MAX_SORT_KEYS]
    assert len(parse([("sort_key", k) for k in keys]).sort) == MAX_SORT_KEYS + 1  # uuid
    message = rejected([("sort_key", "uuid")] * (MAX_SORT_KEYS + 1))
    assert "sort_key" in message
    assert f"at most {MAX_SORT_KEYS}" in message


@pytest.mark.parametrize(
    ("name", "value"),
    [("uuid", "x"), ("status", "ACTIVE"), ("vm_state", "x"), ("power_state", "1"), ("junk", "")],
)
def test_repeats_of_one_parameter(name: str, value: str) -> None:
    # 2.1: below 2.75 an unknown parameter is ignored, so only the bound can refuse it.
    parse([(name, value)] * MAX_PARAM_REPEATS, version=(2, 1))
    message = rejected([(name, value)] * (MAX_PARAM_REPEATS + 1), version=(2, 1))
    assert name in message
    assert f"at most {MAX_PARAM_REPEATS}" in message


def test_repeat_bound_applies_to_filters_a_user_may_not_use() -> None:
    """Dropping a filter still costs its parsing; the bound comes first."""
    assert rejected([("host", "x")] * (MAX_PARAM_REPEATS + 1), USER)
