"""Tests for cells.lister.first_batch_size: enough rows for one page, never more than it needs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cells.lister import first_batch_size

limits = st.one_of(st.integers(0, 50), st.integers(0, 100_000))
cell_counts = st.integers(1, 64)


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


@given(limit=limits, k=cell_counts)
def test_k_first_batches_can_fill_a_page_plus_one(limit: int, k: int) -> None:
    batch = first_batch_size(limit, k)
    assert batch >= ceil_div(limit + 1, k)
    assert batch * k >= limit + 1


@given(limit=limits, k=cell_counts)
def test_a_first_batch_never_exceeds_what_a_page_needs(limit: int, k: int) -> None:
    assert 1 <= first_batch_size(limit, k) <= limit + 1


@given(limit=limits)
def test_one_cell_fetches_exactly_limit_plus_one(limit: int) -> None:
    assert first_batch_size(limit, 1) == limit + 1


@given(limit=limits, k=cell_counts)
def test_the_slack_is_bounded_by_twice_the_square_root(limit: int, k: int) -> None:
    # Slack beyond the fair share stays O(sqrt(limit/k)): first batches read few spare rows.
    slack = first_batch_size(limit, k) - ceil_div(limit + 1, k)
    assert slack >= 0
    # ceil(2·sqrt(limit/k)) < 2·sqrt(limit/k) + 1, squared to stay in integers and floats.
    assert slack == 0 or (slack - 1) ** 2 < 4 * limit / k


@given(limit=limits, k=cell_counts)
def test_monotone_in_limit_and_in_cells(limit: int, k: int) -> None:
    assert first_batch_size(limit + 1, k) >= first_batch_size(limit, k)
    assert first_batch_size(limit, k + 1) <= first_batch_size(limit, k)
