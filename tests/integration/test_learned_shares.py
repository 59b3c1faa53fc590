"""First batches sized by what cells supplied before (cells.walk.HeadShares): a first
page learns under the walk's key, a page after a marker with no cached frontier under the
walk's key plus ``@``, and a page resumed from a frontier learns nothing."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.state import AppState
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet

ADMIN = {"X-Auth-Token": "admin:admin"}


def _learned(app: FastAPI) -> dict[str, dict[int, float]]:
    state: AppState = app.state.cellgate
    return dict(state.head_shares._entries)


async def test_first_and_cold_marker_pages_learn_apart(sqlite_cells: CellSet) -> None:
    async with app_and_client(sqlite_cells.settings()) as (app, client):
        page = (await client.get("/v2.1/servers?all_tenants=1&limit=10", headers=ADMIN)).json()
        learned = _learned(app)
        assert len(learned) == 1
        (walk, head), *_ = learned.items()
        assert not walk.endswith("@")
        assert abs(sum(head.values()) - 1) < 1e-9

        # A marker inside the page: no frontier was saved for it, so it is resolved cold.
        middle = page["servers"][4]["id"]
        cold = f"/v2.1/servers?all_tenants=1&limit=10&marker={middle}"
        assert len((await client.get(cold, headers=ADMIN)).json()["servers"]) == 10
        learned = _learned(app)
        assert set(learned) == {walk, f"{walk}@"}
        assert abs(sum(learned[f"{walk}@"].values()) - 1) < 1e-9
        assert learned[walk] is head  # the head's shares are not touched by a deep page

        # The page's own next link resumes from its cached frontier: nothing is learned.
        deep = learned[f"{walk}@"]
        last = page["servers"][-1]["id"]
        nxt = f"/v2.1/servers?all_tenants=1&limit=10&marker={last}"
        assert (await client.get(nxt, headers=ADMIN)).status_code == 200
        learned = _learned(app)
        assert learned[f"{walk}@"] is deep
        assert learned[walk] is head
