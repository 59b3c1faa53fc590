"""Parameters newer than the request's microversion are stripped as Nova's schema does."""

from __future__ import annotations

import pytest

from gateway.request import applied_query


@pytest.mark.parametrize(
    ("name", "since"),
    [
        ("tags", (2, 26)),
        ("tags-any", (2, 26)),
        ("not-tags", (2, 26)),
        ("not-tags-any", (2, 26)),
        ("changes-before", (2, 66)),
        ("locked", (2, 73)),
    ],
)
def test_newer_parameters_are_dropped_before_their_microversion(
    name: str, since: tuple[int, int]
) -> None:
    items = [("limit", "5"), (name, "x")]
    before = (since[0], since[1] - 1)
    assert applied_query(items, before) == [("limit", "5")]
    assert applied_query(items, since) == items


def test_unknown_parameters_are_dropped_below_2_75_only() -> None:
    items = [("name", "a"), ("colour", "red"), ("_private", "1"), ("metadata", "x")]
    assert applied_query(items, (2, 74)) == [("name", "a"), ("_private", "1"), ("metadata", "x")]
    assert applied_query(items, (2, 75)) == items


def test_repeats_and_order_are_kept() -> None:
    items = [("sort_key", "a"), ("tags", "x"), ("sort_key", "b"), ("status", "ACTIVE")]
    assert applied_query(items, (2, 1)) == [
        ("sort_key", "a"),
        ("sort_key", "b"),
        ("status", "ACTIVE"),
    ]
