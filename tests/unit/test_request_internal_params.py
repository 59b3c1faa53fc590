"""``_x`` and joined-table names: a 400 for whoever may use every filter, dropped for the
others (Nova checks them after remove_invalid_options, found by the nova parity suite)."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequest
from gateway.request import parse_list_request
from tests.support.callers import ADMIN, USER, grants


@pytest.mark.parametrize("name", ["_private", "metadata", "info_cache"])
@pytest.mark.parametrize("version", [(2, 1), (2, 75), (2, 90)])
def test_a_member_loses_them(name: str, version: tuple[int, int]) -> None:
    parsed = parse_list_request([(name, "1")], USER, grants(USER), version, max_limit=1000)
    assert parsed.filters.project_id == "demo"


@pytest.mark.parametrize("name", ["_private", "metadata", "info_cache"])
@pytest.mark.parametrize("version", [(2, 1), (2, 75), (2, 90)])
def test_an_admin_gets_a_400(name: str, version: tuple[int, int]) -> None:
    with pytest.raises(BadRequest, match=f"Invalid filter field: {name}."):
        parse_list_request([(name, "1")], ADMIN, grants(ADMIN), version, max_limit=1000)
