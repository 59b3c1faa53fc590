"""HTTP hygiene on every response: version headers (errors included), Nova's fault names,
``WWW-Authenticate`` on a 401, ``HEAD`` wherever ``GET`` is served, and the URL bound.

Driven in-process through the lifespan on the SQLite cells; the URL-length and ``HEAD``
cases are repeated over a real uvicorn, whose HTTP parser sees the raw request line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from gateway.errors import ServiceUnavailable
from gateway.params import MAX_URL_BYTES
from gateway.routes import meta, servers
from gateway.settings import Settings
from tests.support.apps import app_and_client
from tests.support.cellsets import CellSet
from tests.support.liveserver import LiveServer

pytestmark = pytest.mark.integration

DEMO = {"X-Auth-Token": "demo:demo"}
VARY = {"OpenStack-API-Version", "X-OpenStack-Nova-API-Version"}


@pytest.fixture(scope="session")
async def gateway(sqlite_cells: CellSet) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with app_and_client(sqlite_cells.settings()) as (app, client):

        async def bug() -> None:
            raise RuntimeError("a bug, not the client's fault")

        async def unavailable() -> None:
            raise ServiceUnavailable("Cell(s) cell9 not responding.", 30)

        app.add_api_route("/v2.1/test-bug", bug)
        app.add_api_route("/v2.1/test-unavailable", unavailable)
        yield app, client


@pytest.fixture(scope="session")
def client(gateway: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return gateway[1]


def version_of(response: httpx.Response) -> str:
    """The microversion a response names in both headers (which must agree), with Vary."""
    standard = response.headers["OpenStack-API-Version"]
    assert standard.startswith("compute "), standard
    assert response.headers["X-OpenStack-Nova-API-Version"] == standard.removeprefix("compute ")
    assert {v.strip() for v in response.headers["Vary"].split(",")} >= VARY
    return standard.removeprefix("compute ")


def fault_of(response: httpx.Response) -> str:
    body = response.json()
    assert list(body) != [], body
    (name,) = body
    assert body[name]["code"] == response.status_code
    assert body[name]["message"]
    return str(name)


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    status: int
    fault: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"


LONG_QUERY = "limit=1&" + "uuid=x&" * (MAX_URL_BYTES // 7)
CASES = [
    Case("bad-limit", "/v2.1/servers?limit=x", 400, "badRequest", "2.1", DEMO),
    Case(
        "bad-limit-at-2.60",
        "/v2.1/servers?limit=x",
        400,
        "badRequest",
        "2.60",
        {**DEMO, "OpenStack-API-Version": "compute 2.60"},
    ),
    Case("no-token", "/v2.1/servers", 401, "unauthorized", "2.1"),
    Case(
        "no-token-at-2.75",
        "/v2.1/servers/detail",
        401,
        "unauthorized",
        "2.75",
        {"X-OpenStack-Nova-API-Version": "2.75"},
    ),
    Case("policy", "/v2.1/servers?all_tenants=1", 403, "forbidden", "2.1", DEMO),
    Case("no-route", "/v2.1/flavors/x/y", 404, "itemNotFound", "2.1", DEMO),
    Case("method", "/v2.1/servers", 405, "badMethod", "2.1", DEMO, "POST"),
    Case(
        "version-out-of-range",
        "/v2.1/servers",
        406,
        "computeFault",
        "2.999",
        {**DEMO, "OpenStack-API-Version": "compute 2.999"},
    ),
    Case(
        "version-malformed",
        "/v2.1/servers",
        400,
        "badRequest",
        "2.1",
        {**DEMO, "OpenStack-API-Version": "compute 2.x"},
    ),
    Case("uri-too-long", f"/v2.1/servers?{LONG_QUERY}", 414, "computeFault", "2.1", DEMO),
    Case(
        "bug",
        "/v2.1/test-bug",
        500,
        "computeFault",
        "2.42",
        {"OpenStack-API-Version": "compute 2.42"},
    ),
    Case("unavailable", "/v2.1/test-unavailable", 503, "serviceUnavailable", "2.1"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
async def test_errors_carry_version_headers_and_novas_fault_name(
    client: httpx.AsyncClient, case: Case
) -> None:
    response = await client.request(case.method, case.path, headers=case.headers)
    assert response.status_code == case.status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert fault_of(response) == case.fault
    assert version_of(response) == case.version
    assert response.headers["X-OpenStack-Request-Id"].startswith("req-")


async def test_a_500_hides_the_bug(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2.1/test-bug")
    assert "a bug" not in response.text
    assert "RuntimeError" not in response.text


async def test_a_503_keeps_retry_after(client: httpx.AsyncClient) -> None:
    response = await client.get("/v2.1/test-unavailable")
    assert response.headers["Retry-After"] == "30"


async def test_successes_under_v21_are_versioned_too(client: httpx.AsyncClient) -> None:
    for path in ("/v2.1", "/v2.1/"):
        response = await client.get(path, headers={"OpenStack-API-Version": "compute 2.53"})
        assert response.status_code == 200
        assert version_of(response) == "2.53"
    listing = await client.get("/v2.1/servers?limit=1", headers=DEMO)
    assert version_of(listing) == "2.1"
    assert listing.headers.get_list("OpenStack-API-Version") == ["compute 2.1"]  # not twice


@pytest.mark.parametrize("path", ["/", "/healthz", "/identity/v3", "/nope"])
async def test_paths_outside_the_compute_api_are_not_versioned(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert "OpenStack-API-Version" not in response.headers


async def test_405_allows_head(client: httpx.AsyncClient) -> None:
    response = await client.delete("/v2.1/servers", headers=DEMO)
    assert response.status_code == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == {"GET", "HEAD"}


# --- WWW-Authenticate ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Auth-Token": ""}, {"X-Auth-Token": ":"}],
    ids=["none", "empty", "colon"],
)
async def test_401_names_where_to_authenticate(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    for path in ("/v2.1/servers", "/v2.1/servers/detail", "/v2.1/demo/servers"):
        response = await client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == (
            'Keystone uri="http://gateway.test/identity/v3"'
        )


@pytest.mark.parametrize(
    ("overrides", "challenge"),
    [
        ({"public_base_url": "https://compute.example/"}, "https://compute.example/identity/v3"),
        (
            {
                "public_base_url": "https://compute.example",
                "www_authenticate_uri": "https://keystone.example/identity",
            },
            "https://keystone.example/identity",
        ),
    ],
)
async def test_401_challenge_follows_the_settings(
    sqlite_cells: CellSet, overrides: dict[str, str], challenge: str
) -> None:
    async with app_and_client(sqlite_cells.settings(**overrides)) as (_, client):
        response = await client.get("/v2.1/servers")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Keystone uri="{challenge}"'


# --- HEAD ----------------------------------------------------------------------------------


def get_routes(server_id: str) -> list[str]:
    """Every GET path of the routers the app includes (unprefixed), parameters filled in
    (``server_id``: one of project ``demo``'s servers)."""
    paths = [
        route.path.replace("{project_id}", "demo").replace("{server_id}", server_id)
        for route in [*meta.router.routes, *servers.router.routes]
        if isinstance(route, APIRoute) and "GET" in route.methods
    ]
    assert "/v2.1/servers" in paths
    assert "/v2.1/demo/servers/detail" in paths
    return paths


COMPARED = ("content-type", "openstack-api-version", "x-openstack-nova-api-version", "vary")


async def test_head_on_every_get_route(client: httpx.AsyncClient) -> None:
    listed = await client.get("/v2.1/servers?limit=1", headers=DEMO)
    server_id = listed.json()["servers"][0]["id"]
    assert f"/v2.1/servers/{server_id}" in get_routes(server_id)
    for path in get_routes(server_id):
        url = f"{path}?limit=3" if "servers" in path else path
        got = await client.get(url, headers=DEMO)
        head = await client.head(url, headers=DEMO)
        assert head.status_code == got.status_code == 200, (path, head.status_code)
        assert head.content == b"", path
        for name in COMPARED:
            assert head.headers.get(name) == got.headers.get(name), (path, name)
        if path != "/metrics":  # its counters move between the two requests
            assert head.headers["content-length"] == got.headers["content-length"], path


@pytest.mark.parametrize(
    ("url", "headers", "status"),
    [
        ("/v2.1/servers", {}, 401),
        ("/v2.1/servers?limit=x&limit=2", DEMO, 400),
        ("/v2.1/servers?all_tenants=1", DEMO, 403),
        ("/v2.1/nope/nope/nope", DEMO, 404),
        ("/v2.1/servers", {**DEMO, "OpenStack-API-Version": "compute 2.999"}, 406),
    ],
)
async def test_head_errors_have_the_status_and_headers_without_a_body(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], status: int
) -> None:
    head = await client.head(url, headers=headers)
    got = await client.get(url, headers=headers)
    assert head.status_code == got.status_code == status
    assert head.content == b""
    for name in (*COMPARED, "content-length", "www-authenticate"):
        assert head.headers.get(name) == got.headers.get(name), name


# --- a real server -------------------------------------------------------------------------


async def raw_get(live: LiveServer, target: str) -> httpx.Response:
    """One GET over a raw socket: httpx itself refuses URLs over 64 KiB."""
    host, port = live.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"GET {target} HTTP/1.1\r\nHost: {host}\r\nX-Auth-Token: demo:demo\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(-1), timeout=30)
    finally:
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines]
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body)


# Past 64 KiB uvicorn's parser refuses the request before the app: test_cli_serve.py
# covers that with the CLI's server.
@pytest.mark.parametrize("query_bytes", [MAX_URL_BYTES + 1, 60 * 1024])
async def test_an_over_long_url_is_a_nova_414_over_http(
    sqlite_cells: CellSet,
    live_server_factory: Callable[[Settings], LiveServer],
    query_bytes: int,
) -> None:
    live = live_server_factory(sqlite_cells.settings())
    query = ("uuid=x&" * (query_bytes // 7 + 1))[:query_bytes]
    response = await raw_get(live, f"/v2.1/servers?{query}")
    assert response.status_code == 414, response.text[:300]
    assert fault_of(response) == "computeFault"
    assert version_of(response) == "2.1"
    # The server is fine afterwards.
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        after = await http.get("/v2.1/servers?limit=2", headers=DEMO)
    assert after.status_code == 200
    assert len(after.json()["servers"]) == 2


async def test_a_url_at_the_bound_is_served(
    sqlite_cells: CellSet, live_server_factory: Callable[[Settings], LiveServer]
) -> None:
    live = live_server_factory(sqlite_cells.settings())
    path = "/v2.1/servers?"
    query = "limit=1&" + "&".join(f"junk{i}=x" for i in range(2000))  # ignored below 2.75
    query = query[: MAX_URL_BYTES - len(path) + 1]  # +1: the "?" is not counted
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        response = await http.get(f"{path}{query}", headers=DEMO)
        assert response.status_code == 200, response.text[:300]
        over = await http.get(f"{path}{query}x", headers=DEMO)
        assert over.status_code == 414


async def test_head_over_http(
    sqlite_cells: CellSet, live_server_factory: Callable[[Settings], LiveServer]
) -> None:
    live = live_server_factory(sqlite_cells.settings())
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        for url, status in [("/v2.1/servers?limit=2", 200), ("/healthz", 200), ("/v2.1", 200)]:
            head = await http.head(url, headers=DEMO)
            assert head.status_code == status
            assert head.content == b""
        got = await http.get("/v2.1/servers?limit=2", headers=DEMO)
        assert got.status_code == 200  # the keep-alive connection survived the HEADs
