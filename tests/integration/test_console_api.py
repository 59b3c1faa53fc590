"""The console's routes without a browser: off unless configured, the same auth as the
API for drills, Nova's error shape for bad input, and drills only in the demo."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.settings import Settings
from tests.support.apps import LIFESPAN_TIMEOUTS
from tests.support.cellsets import CellSet

pytestmark = pytest.mark.integration

ADMIN = {"X-Auth-Token": "admin:admin"}
USER = {"X-Auth-Token": "demo:demo"}


@asynccontextmanager
async def _client(settings: Settings, *, demo: bool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, demo=demo)
    async with LifespanManager(app, **LIFESPAN_TIMEOUTS) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client:
            yield client


async def test_console_is_off_by_default(sqlite_cells: CellSet) -> None:
    async with _client(sqlite_cells.settings(), demo=False) as client:
        for path in ("/console", "/console/config", "/console/static/console.js"):
            response = await client.get(path)
            assert response.status_code == 404, path
            assert response.json()["itemNotFound"]["code"] == 404


async def test_console_page_and_files(sqlite_cells: CellSet) -> None:
    async with _client(sqlite_cells.settings(console=True), demo=False) as client:
        page = await client.get("/console")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for name, kind in (("console.js", "javascript"), ("console.css", "text/css")):
            asset = await client.get(f"/console/static/{name}")
            assert asset.status_code == 200
            assert kind in asset.headers["content-type"]
        assert (await client.get("/console/static/../app.py")).status_code == 404
        config = (await client.get("/console/config")).json()
        assert config == {
            "auth_mode": "noauth",
            "demo": False,
            "token_hint": None,
            "min_version": "2.1",
            "max_version": "2.104",
        }
        # Not the demo: no drills, whoever asks.
        drill = await client.put("/console/drills/cell1", json={"drill": "down"}, headers=ADMIN)
        assert drill.status_code == 404


async def test_demo_drills_need_an_administrator_and_good_input(sqlite_cells: CellSet) -> None:
    settings = sqlite_cells.settings(console=True, page_cache_ttl_s=0)
    async with _client(settings, demo=True) as client:
        config = (await client.get("/console/config")).json()
        assert config["demo"] is True
        assert config["token_hint"] == "admin:admin"

        assert (await client.get("/console/drills")).status_code == 401
        listed = (await client.get("/console/drills", headers=ADMIN)).json()
        assert listed["drills"] == {"cell1": "none", "cell2": "none", "cell3": "none"}

        cases = [
            (None, {"drill": "down"}, 401, "unauthorized"),
            (USER, {"drill": "down"}, 403, "forbidden"),
            (ADMIN, {"drill": "melt"}, 400, "badRequest"),
            (ADMIN, ["down"], 400, "badRequest"),
        ]
        for headers, body, status, fault in cases:
            response = await client.put("/console/drills/cell1", json=body, headers=headers)
            assert response.status_code == status, (headers, body, response.text)
            assert response.json()[fault]["code"] == status
        not_json = await client.put("/console/drills/cell1", content=b"down", headers=ADMIN)
        assert not_json.status_code == 400
        unknown = await client.put("/console/drills/cell9", json={"drill": "down"}, headers=ADMIN)
        assert unknown.status_code == 404
        assert "cell1, cell2, cell3" in unknown.json()["itemNotFound"]["message"]

        # A drill is what the API then sees: cell1 down, a partial listing naming it.
        done = await client.put("/console/drills/cell1", json={"drill": "down"}, headers=ADMIN)
        assert done.json() == {"cell": "cell1", "drill": "down"}
        page = await client.get("/v2.1/servers?all_tenants=1&limit=5", headers=ADMIN)
        assert page.status_code == 200
        assert page.headers["x-cells-unavailable"] == "cell1"
        await client.put("/console/drills/cell1", json={"drill": "none"}, headers=ADMIN)
        listed = (await client.get("/console/drills", headers=ADMIN)).json()
        assert listed["drills"]["cell1"] == "none"


async def test_a_drill_is_not_hidden_by_the_page_cache(sqlite_cells: CellSet) -> None:
    # With the page cache on, the page asked just before a drill must not be served after.
    settings = sqlite_cells.settings(console=True, page_cache_ttl_s=60)
    async with _client(settings, demo=True) as client:
        url = "/v2.1/servers?all_tenants=1&limit=5"
        assert "x-cells-unavailable" not in (await client.get(url, headers=ADMIN)).headers
        await client.put("/console/drills/cell2", json={"drill": "down"}, headers=ADMIN)
        after = await client.get(url, headers=ADMIN)
        assert after.headers["x-cells-unavailable"] == "cell2"
