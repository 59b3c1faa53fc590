"""``auth_mode=keystone`` against a real Keystone, driven by real OpenStack clients.

``scripts/keystone`` installs PyPI's ``keystone`` in a venv of its own (SQLite, fernet
tokens), bootstraps it and serves it on loopback with a catalog whose compute endpoint is
a live gateway. The clients get nothing but a ``clouds.yaml`` with passwords: they
authenticate with Keystone, find cellgate in the catalog and page through it, and the
gateway validates every token with Keystone through its service user. Listings are
compared with the oracle, on cells seeded for this module whose ``demo`` and ``admin``
projects are renamed to Keystone's project ids.

The venv is built once (about a minute, see ``scripts/keystone install``); when it cannot
be built the module is skipped, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from novaclient import client as nova_client
from novaclient import exceptions as nova_exceptions

from gateway.settings import Settings
from tests.support.cellsets import CellSet, drop_postgres, seed_postgres
from tests.support.keystone import (
    Keystone,
    clouds_yaml,
    install_keystone,
    rename_projects,
    sdk_warnings,
    start_keystone,
    stop_keystone,
)
from tests.support.liveserver import LiveServer, free_port, start_live_server, stop_live_server
from tests.support.oracle import OracleQuery, Snapshot, expected_uuids, load_snapshot

pytestmark = [pytest.mark.integration, pytest.mark.keystone]

LiveFactory = Callable[[object], LiveServer]


@dataclass(frozen=True)
class Stack:
    """The gateway in Keystone's catalog, Keystone, and the seeded cells."""

    gateway: LiveServer
    keystone: Keystone
    cells: CellSet
    snapshot: Snapshot
    clouds_yaml: Path

    def settings(self, **overrides: object) -> Settings:
        return _settings(self.cells, self.keystone.auth_url, **overrides)

    def expected(self, project: str | None) -> list[str]:
        project_id = None if project is None else self.keystone.projects[project]
        return expected_uuids(self.snapshot, OracleQuery(project_id=project_id))

    def token(self, user: str, *, scoped: bool = True) -> str:
        """A token straight from Keystone, for the tests that send raw requests."""
        auth = v3.Password(
            auth_url=self.keystone.auth_url,
            username=user,
            password=self.keystone.password,
            user_domain_name="Default",
            project_name=user if scoped else None,
            project_domain_name="Default" if scoped else None,
            unscoped=not scoped,
        )
        token = ks_session.Session(auth=auth).get_token()
        assert token is not None
        return token


def _settings(cell_set: CellSet, auth_url: str, **overrides: object) -> Settings:
    # Not CellSet.settings(): it pins auth_mode to noauth.
    fields: dict[str, Any] = {
        "api_database_url": cell_set.api_url,
        "auth_mode": "keystone",
        "keystone_auth_url": auth_url,
        "keystone_username": "nova",
        "keystone_password": "cellgate-dev",
        "keystone_timeout_s": 5.0,
        **overrides,
    }
    return Settings(**fields)


@pytest.fixture(scope="module")
async def ks_cells(postgres: str) -> AsyncIterator[CellSet]:
    """3 cells, 1,500 instances; ``demo`` holds ~30%, enough for several pages."""
    cell_set = await seed_postgres(f"cg_ks_{os.getpid()}", cells=3, instances=1_500)
    yield cell_set
    await drop_postgres(cell_set)


@pytest.fixture(scope="module")
def keystone_venv() -> None:
    """Before seeding anything: a venv that cannot be built skips (fails) at once."""
    install_keystone()


@pytest.fixture(scope="module")
async def stack(
    keystone_venv: None, ks_cells: CellSet, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """The gateway starts first (it calls Keystone only per request), so Keystone's catalog
    can name it; Keystone's port is chosen for both."""
    port = free_port()
    gateway = start_live_server(_settings(ks_cells, f"http://127.0.0.1:{port}/v3"))
    try:
        work = tmp_path_factory.mktemp("keystone")
        keystone = start_keystone(f"{gateway.url}/v2.1", port, work)
        try:
            projects = keystone.projects
            await rename_projects(ks_cells, {p: projects[p] for p in ("demo", "admin")})
            snapshot = await load_snapshot(ks_cells)
            clouds = clouds_yaml(work / "clouds.yaml", keystone)
            yield Stack(gateway, keystone, ks_cells, snapshot, clouds)
        finally:
            stop_keystone(keystone)
    finally:
        stop_live_server(gateway)


def _assert_same_listing(got: list[str], expected: list[str]) -> None:
    assert len(got) == len(set(got)), "a server was listed twice"
    assert got == expected


# --- the openstack CLI -------------------------------------------------------------------


def _openstack(stack: Stack, cloud: str, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(stack.clouds_yaml)
    done = subprocess.run(
        ["openstack", "--os-cloud", cloud, *args, "-f", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_openstack_server_list(stack: Stack) -> None:
    rows = _openstack(stack, "demo", "server", "list", "--no-name-lookup")
    expected = stack.expected("demo")
    assert len(expected) > 100
    _assert_same_listing([row["ID"] for row in rows], expected)


def test_openstack_server_show(stack: Stack) -> None:
    """Needs ``GET /v2.1/servers/{id}``."""
    uuid = stack.expected("demo")[len(stack.expected("demo")) // 2]
    shown = _openstack(stack, "demo", "server", "show", uuid)
    assert shown["id"] == uuid
    assert shown["project_id"] == stack.keystone.projects["demo"]


# --- openstacksdk and python-novaclient ---------------------------------------------------


@pytest.fixture
def clouds_env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    for name in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(stack.clouds_yaml))
    return stack


@sdk_warnings
def test_sdk_lists_the_projects_servers(clouds_env: Stack) -> None:
    conn = openstack.connect(cloud="demo")
    try:
        endpoint = conn.compute.get_endpoint()
        assert endpoint is not None
        assert endpoint.startswith(clouds_env.gateway.url)
        servers = list(conn.compute.servers(details=True, limit=100))
        expected = clouds_env.expected("demo")
        shown = conn.compute.get_server(expected[len(expected) // 3])
    finally:
        conn.close()
    _assert_same_listing([s.id for s in servers], expected)
    assert {s.project_id for s in servers} == {clouds_env.keystone.projects["demo"]}
    assert shown.id == expected[len(expected) // 3]
    assert shown.project_id == clouds_env.keystone.projects["demo"]


@sdk_warnings
def test_sdk_admin_all_projects(clouds_env: Stack) -> None:
    conn = openstack.connect(cloud="admin")
    try:
        everyone = list(conn.compute.servers(details=False, limit=1000, all_projects=True))
        own = list(conn.compute.servers(details=False, limit=1000))
    finally:
        conn.close()
    _assert_same_listing([s.id for s in everyone], clouds_env.expected(None))
    _assert_same_listing([s.id for s in own], clouds_env.expected("admin"))


def test_novaclient_password_session(stack: Stack) -> None:
    auth = v3.Password(
        auth_url=stack.keystone.auth_url,
        username="demo",
        password=stack.keystone.password,
        project_name="demo",
        user_domain_name="Default",
        project_domain_name="Default",
    )
    nova = nova_client.Client("2.1", session=ks_session.Session(auth=auth))
    servers = nova.servers.list(detailed=True, limit=-1)
    expected = stack.expected("demo")
    _assert_same_listing([s.id for s in servers], expected)
    # A marker page and a show, through the same Keystone-authenticated session.
    after = nova.servers.list(detailed=False, marker=expected[9], limit=5)
    assert [s.id for s in after] == expected[10:15]
    assert nova.servers.get(expected[-1]).id == expected[-1]
    # Keystone gave demo the member role, not admin: all_tenants is refused, as in Nova.
    with pytest.raises(nova_exceptions.Forbidden):
        nova.servers.list(detailed=False, search_opts={"all_tenants": 1})


# --- raw requests: refusals and Keystone outages ------------------------------------------


async def _get(url: str, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"X-Auth-Token": token}
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.get(f"{url}/v2.1/servers?limit=1", headers=headers)


@pytest.mark.parametrize("token", [None, "not-a-token", "gAAAAABinvalid-fernet-token"])
async def test_bad_token_is_401_naming_keystone(stack: Stack, token: str | None) -> None:
    response = await _get(stack.gateway.url, token)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == f'Keystone uri="{stack.keystone.auth_url}"'
    assert response.json()["unauthorized"]["code"] == 401


async def test_unscoped_token_is_403(stack: Stack) -> None:
    response = await _get(stack.gateway.url, stack.token("demo", scoped=False))
    assert response.status_code == 403
    assert "forbidden" in response.json()


async def test_keystone_down_cached_tokens_work_new_ones_503(
    stack: Stack, live_server_factory: LiveFactory
) -> None:
    """A gateway of its own, so its cache holds exactly the token this test validated."""
    gateway = live_server_factory(stack.settings())
    cached, fresh = stack.token("demo"), stack.token("admin")
    assert (await _get(gateway.url, cached)).status_code == 200
    stack.keystone.stop()
    try:
        assert (await _get(gateway.url, cached)).status_code == 200
        started = time.monotonic()
        refused = await _get(gateway.url, fresh)
        assert time.monotonic() - started < 5.0, "a refused connection must fail fast"
        assert refused.status_code == 503
        assert refused.json()["serviceUnavailable"]["code"] == 503
        assert int(refused.headers["Retry-After"]) > 0
    finally:
        stack.keystone.start()
    # Nothing about the outage was cached: the same token works once Keystone is back.
    assert (await _get(gateway.url, fresh)).status_code == 200


async def test_hung_keystone_is_503_within_the_timeout(
    stack: Stack, live_server_factory: LiveFactory
) -> None:
    """A Keystone that accepts connections and never answers: a socket nobody serves."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        settings = _settings(stack.cells, f"http://127.0.0.1:{port}/v3", keystone_timeout_s=1.0)
        gateway = live_server_factory(settings)
        token = stack.token("demo")
        started = time.monotonic()
        response = await _get(gateway.url, token)
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert 1.0 <= elapsed < 4.0
