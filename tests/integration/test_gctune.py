"""The collector while serving (gateway.gctune): frozen start-up objects and a larger
first-generation threshold during the app's lifespan, both restored at shutdown."""

from __future__ import annotations

import gc

from gateway.gctune import tuned_gc
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet

ADMIN = {"X-Auth-Token": "admin:admin"}


def test_tuned_gc_freezes_and_restores() -> None:
    before_threshold, before_frozen = gc.get_threshold(), gc.get_freeze_count()
    keep = [object() for _ in range(10)]  # alive at entry: frozen
    with tuned_gc(12_345):
        assert gc.get_threshold() == (12_345, *before_threshold[1:])
        assert gc.get_freeze_count() >= before_frozen + len(keep)
    assert gc.get_threshold() == before_threshold
    assert gc.get_freeze_count() == 0


def test_zero_leaves_the_collector_alone() -> None:
    before = gc.get_threshold()
    with tuned_gc(0):
        assert gc.get_threshold() == before
        assert gc.get_freeze_count() == 0


async def test_the_app_serves_with_the_setting(sqlite_cells: CellSet) -> None:
    before = gc.get_threshold()
    settings = sqlite_cells.settings(gc_gen0_threshold=20_000)
    async with app_and_client(settings) as (_, client):
        assert gc.get_threshold()[0] == 20_000
        assert gc.get_freeze_count() > 0
        assert (await client.get("/v2.1/servers?limit=5", headers=ADMIN)).status_code == 200
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
    async with app_and_client(sqlite_cells.settings(gc_gen0_threshold=0)):
        assert gc.get_threshold() == before
