"""A value Python accepts but the cell database rejects is the client's error: 400, not a
down cell and not a 500."""

from __future__ import annotations

import pytest

from tests.support.apps import app_client
from tests.support.cellsets import CellSet

pytestmark = pytest.mark.integration


async def test_regex_postgresql_rejects_is_a_bad_request(pg_cells: CellSet) -> None:
    # Python's re accepts named groups; PostgreSQL's regex engine does not (SQLSTATE 2201B).
    async with app_client(pg_cells.settings()) as client:
        response = await client.get(
            "/v2.1/servers", params={"name": "(?P<x>web)"}, headers={"X-Auth-Token": "demo:demo"}
        )
        assert response.status_code == 400
        body = response.json()
        assert "regular expression" in body["badRequest"]["message"]
        assert "x-cells-unavailable" not in response.headers
        # The cells stay healthy: the same listing without the bad pattern is complete.
        ok = await client.get("/v2.1/servers?limit=3", headers={"X-Auth-Token": "demo:demo"})
        assert ok.status_code == 200
        assert "x-cells-unavailable" not in ok.headers
