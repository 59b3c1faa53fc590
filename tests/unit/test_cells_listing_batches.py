"""Tests for cells.listing.first_batch_size: enough rows for one page, never more than it needs."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cells.listing import first_batch_size, share_batch_size

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


shares = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(limit=limits, share=shares)
def test_share_batch_covers_the_expected_rows_within_the_page(limit: int, share: float) -> None:
    n = share_batch_size(limit, share)
    assert 1 <= n <= limit + 1
    assert n >= min(limit + 1, (limit + 1) * share)


@given(limit=limits, a=shares, b=shares)
def test_share_batch_grows_with_the_share(limit: int, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert share_batch_size(limit, low) <= share_batch_size(limit, high)


@given(limit=limits)
def test_whole_share_reads_the_page_and_no_share_one_row(limit: int) -> None:
    assert share_batch_size(limit, 1.0) == limit + 1
    assert share_batch_size(limit, 0.0) == 1


@given(limit=limits, k=cell_counts)
def test_equal_shares_cost_about_the_equal_split(limit: int, k: int) -> None:
    # Within a couple of rows of first_batch_size: same share, same order of slack.
    assert abs(share_batch_size(limit, 1 / k) - first_batch_size(limit, k)) <= 3
