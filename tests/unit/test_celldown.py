"""gateway.celldown: the listings Nova answers with stubs for down cells (and so never
fails with list_records_by_skipping_down_cells = false): 2.69+, no paging or sorting
parameter, no search option but all_tenants once those the caller may not use are gone."""

from __future__ import annotations

import pytest

from gateway.celldown import nova_shows_stubs


@pytest.mark.parametrize(
    ("params", "version", "all_filters", "expected"),
    [
        ([], (2, 69), False, True),
        ([], (2, 68), False, False),
        ([], (2, 90), True, True),
        ([("all_tenants", "1")], (2, 69), True, True),
        ([("all_tenants", "1")], (2, 69), False, True),
        ([("limit", "5")], (2, 69), False, False),
        ([("marker", "x")], (2, 69), True, False),
        ([("sort_key", "created_at")], (2, 69), False, False),
        ([("sort_dir", "asc")], (2, 69), False, False),
        ([("name", "vm")], (2, 69), False, False),
        ([("name", "vm")], (2, 69), True, False),
        # A filter a non-admin may not use is removed first (Nova's remove_invalid_options).
        ([("host", "h1")], (2, 69), False, True),
        ([("host", "h1")], (2, 69), True, False),
        ([("unknown", "1")], (2, 69), False, True),
        ([("unknown", "1")], (2, 69), True, False),
        # user_id became a user filter at 2.83.
        ([("user_id", "u")], (2, 82), False, True),
        ([("user_id", "u")], (2, 83), False, False),
    ],
)
def test_nova_shows_stubs(
    params: list[tuple[str, str]], version: tuple[int, int], all_filters: bool, expected: bool
) -> None:
    assert nova_shows_stubs(params, version, all_filters) is expected
