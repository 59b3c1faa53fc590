"""HAProxy routing with real clients (docs/deploy.md): Debian's ``haproxy`` configured with
``deploy/haproxy/cellgate.cfg`` (``scripts/haproxyrun.py``) in front of two ``cellgate
serve`` replicas and what serves the rest — the real nova-api 34 when
``scripts/nova_api.py`` is there, else a stand-in (:mod:`support.novabackends`). A real
Keystone's catalog names HAProxy as the compute endpoint; the ``openstack`` CLI,
openstacksdk and novaclient authenticate there and go through the one endpoint.

- ``server list`` (``--all-projects``, ``--long``, ``--marker``) and ``server show`` are
  served by cellgate (HAProxy's log names the backend of every request) and equal the
  oracle;
- ``flavor list`` and ``server create`` (its error is enough) reach nova-api's backend;
- with one replica killed, listings keep answering through the other.

Under ``CI=true`` a missing ``haproxy`` is installed (``apt-get``) or fails the test;
elsewhere it skips.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest
from haproxyrun import HaProxy, binary
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from novaclient import client as nova_client

from cells.seeding import SeedCell, SeedPlan, drop_database, reset_database, seed
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
from tests.support.liveserver import free_port
from tests.support.novabackends import NovaBackend, RealNovaApi, StandIn, choose, nova_api_module
from tests.support.oracle import OracleQuery, Snapshot, expected_uuids, load_snapshot
from tests.support.replicas import Replica, replicas

pytestmark = [pytest.mark.integration, pytest.mark.keystone, pytest.mark.timeout(900)]

# An HAProxy log line (option httplog): ... frontend backend/server ... "GET /path HTTP/1.1"
_LINE = re.compile(
    r"\] \S+ (?P<backend>[^/\s]+)/(?P<server>\S+) .*\"(?P<method>[A-Z]+) (?P<path>\S+) HTTP"
)


def _need_haproxy() -> None:
    if binary() is None and os.environ.get("CI") == "true" and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", "haproxy"], env=env, check=False)
    if binary() is None:
        message = "haproxy not installed (apt-get install haproxy)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class Routed:
    """The stack: HAProxy, the replicas, the nova backend, Keystone and the data."""

    lb: HaProxy
    replicas: list[Replica]
    nova: NovaBackend
    keystone: Keystone
    cells: CellSet
    snapshot: Snapshot
    clouds_yaml: Path

    def expected(self, project: str | None) -> list[str]:
        project_id = None if project is None else self.keystone.projects[project]
        return expected_uuids(self.snapshot, OracleQuery(project_id=project_id))

    def routes(self) -> list[tuple[str, str, str, str]]:
        """(backend, server, method, path) of every request HAProxy logged so far."""
        return [
            (m["backend"], m["server"], m["method"], m["path"])
            for m in map(_LINE.search, self.lb.log.read_text().splitlines())
            if m is not None
        ]

    def backends_of(self, method: str, path_start: str) -> set[str]:
        """The backends that served ``method`` requests whose path starts so (HAProxy
        writes a line when a request ends: waited for a moment)."""
        deadline = time.monotonic() + 5
        while True:
            found = {b for b, _, m, p in self.routes() if m == method and p.startswith(path_start)}
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.05)


PG = "postgresql://postgres@127.0.0.1:5432"


async def _seed(prefix: str, nova_python: Path | None) -> tuple[CellSet, str | None]:
    """Three cells with 900 instances; for the real nova-api, Nova's whole schema first in
    the API database and in nova-api's own database (its URL is returned too)."""
    if nova_python is None:
        return await seed_postgres(prefix, cells=3, instances=900), None
    import nova_conformance  # scripts/

    api, own = f"{PG}/{prefix}_api", f"{PG}/{prefix}_nova"
    targets = [SeedCell(f"cell{i}", f"{PG}/{prefix}_cell{i}") for i in (1, 2, 3)]
    await asyncio.gather(*(reset_database(u) for u in [api, own, *(t.url for t in targets)]))
    await nova_conformance.create_db(api, nova_conformance.nova_ddl(nova_python, "api"))
    await nova_conformance.create_db(own, nova_conformance.nova_ddl(nova_python, "main"))
    await seed(api, targets, SeedPlan(instances=900, seed=7), progress=False)
    return CellSet(api, targets, 900), own


def _settings(cells: CellSet, keystone: Keystone) -> dict[str, str]:
    return {
        "CELLGATE_API_DATABASE_URL": cells.api_url,
        "CELLGATE_AUTH_MODE": "keystone",
        "CELLGATE_KEYSTONE_AUTH_URL": keystone.auth_url,
        "CELLGATE_KEYSTONE_USERNAME": "nova",
        "CELLGATE_KEYSTONE_PASSWORD": keystone.password,
        "CELLGATE_KEYSTONE_TIMEOUT_S": "5",
        "CELLGATE_LOG_LEVEL": "WARNING",
    }


@pytest.fixture(scope="module")
async def routed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Routed]:
    _need_haproxy()
    install_keystone()  # Keystone's venv
    work = tmp_path_factory.mktemp("routing")
    module = nova_api_module() if choose() == "nova-api" else None
    real = None if module is None else RealNovaApi(module, free_port())
    python = None
    if real is not None:
        try:
            python = real.venv() / "bin" / "python"
        except subprocess.CalledProcessError as exc:  # no PyPI here: the stand-in then
            if os.environ.get("CI") == "true":
                raise
            print(f"nova-api's venv could not be built ({exc}): the stand-in serves instead")
            real = None
    nova: NovaBackend = real if real is not None else StandIn()
    cells, own_db = await _seed(f"cg_routing_{os.getpid()}", python)
    lb_port = free_port()
    keystone = start_keystone(f"http://127.0.0.1:{lb_port}/v2.1", free_port(), work)
    try:
        projects = keystone.projects
        await rename_projects(cells, {p: projects[p] for p in ("demo", "admin")})
        snapshot = await load_snapshot(cells)
        if real is not None and own_db is not None:
            real.start(cells.api_url, own_db, keystone.auth_url, keystone.password)
        settings = _settings(cells, keystone)
        with replicas(work, settings, settings) as started:
            addresses = [("127.0.0.1", r.port) for r in started]
            with HaProxy(lb_port, addresses, [nova.address], work=work / "haproxy") as lb:
                clouds = clouds_yaml(work / "clouds.yaml", keystone)
                yield Routed(lb, started, nova, keystone, cells, snapshot, clouds)
    finally:
        nova.close()
        stop_keystone(keystone)
        await drop_postgres(cells)
        if own_db is not None:
            await drop_database(own_db)


# --- the openstack CLI -------------------------------------------------------------------


def _openstack(routed: Routed, cloud: str, *args: str, ok: bool = True) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(routed.clouds_yaml)
    done = subprocess.run(
        ["openstack", "--os-cloud", cloud, *args, "-f", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    if not ok:
        assert done.returncode != 0, done.stdout
        return done.stderr
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    ids = [row["ID"] for row in rows]
    assert len(ids) == len(set(ids)), "a server was listed twice"
    return ids


def test_cli_listings_are_served_by_cellgate(routed: Routed) -> None:
    demo, everyone = routed.expected("demo"), routed.expected(None)
    assert len(demo) > 50
    assert _ids(_openstack(routed, "demo", "server", "list", "--no-name-lookup")) == demo
    long = _openstack(routed, "demo", "server", "list", "--long", "--no-name-lookup")
    assert _ids(long) == demo
    assert all("Availability Zone" in row for row in long)
    after = _openstack(
        routed, "demo", "server", "list", "--no-name-lookup", "--marker", demo[9], "--limit", "5"
    )
    assert _ids(after) == demo[10:15]
    admin = _openstack(routed, "admin", "server", "list", "--all-projects", "--no-name-lookup")
    assert _ids(admin) == everyone
    assert routed.backends_of("GET", "/v2.1/servers/detail") == {"cellgate_back"}


def test_cli_show_is_served_by_cellgate(routed: Routed) -> None:
    uuid = routed.expected("demo")[7]
    shown = _openstack(routed, "demo", "server", "show", uuid)
    assert shown["id"] == uuid
    assert shown["project_id"] == routed.keystone.projects["demo"]
    assert routed.backends_of("GET", f"/v2.1/servers/{uuid}") == {"cellgate_back"}


# --- openstacksdk and novaclient ----------------------------------------------------------


@pytest.fixture
def clouds_env(routed: Routed, monkeypatch: pytest.MonkeyPatch) -> Routed:
    for name in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(routed.clouds_yaml))
    return routed


@sdk_warnings
def test_sdk_through_the_endpoint(clouds_env: Routed) -> None:
    conn = openstack.connect(cloud="admin")
    try:
        assert conn.compute.get_endpoint().startswith(clouds_env.lb.url)
        everyone = [s.id for s in conn.compute.servers(details=True, all_projects=True, limit=200)]
        own = [s.id for s in conn.compute.servers(details=False)]
        shown = conn.compute.get_server(everyone[-1])
    finally:
        conn.close()
    assert everyone == clouds_env.expected(None)
    assert own == clouds_env.expected("admin")
    assert shown.id == everyone[-1]


def test_novaclient_through_the_endpoint(routed: Routed) -> None:
    auth = v3.Password(
        auth_url=routed.keystone.auth_url,
        username="demo",
        password=routed.keystone.password,
        project_name="demo",
        user_domain_name="Default",
        project_domain_name="Default",
    )
    nova = nova_client.Client("2.1", session=ks_session.Session(auth=auth))
    expected = routed.expected("demo")
    assert [s.id for s in nova.servers.list(detailed=True, limit=-1)] == expected
    assert [s.id for s in nova.servers.list(marker=expected[3], limit=4)] == expected[4:8]
    assert nova.servers.get(expected[0]).id == expected[0]


# --- what is not cellgate's ---------------------------------------------------------------


def test_flavor_list_and_server_create_reach_nova_api(routed: Routed) -> None:
    flavors = _openstack(routed, "demo", "flavor", "list")
    assert isinstance(flavors, list)
    assert routed.backends_of("GET", "/v2.1/flavors") == {"nova_api_back"}
    error = _openstack(
        routed, "demo", "server", "create", "--flavor", "no-such-flavor", "--image",
        "no-such-image", "--no-network", "routing-test", ok=False,
    )  # fmt: skip
    assert error.strip()
    # The CLI may stop at looking the flavor or image up (GETs, nova-api's or glance's),
    # so the POST is sent straight through the endpoint with a real token.
    token = _token(routed, "demo")
    response = httpx.post(
        f"{routed.lb.url}/v2.1/servers",
        json={"server": {"name": "routing-test", "flavorRef": "no-such-flavor"}},
        headers={"X-Auth-Token": token},
        timeout=60,
    )
    assert 400 <= response.status_code < 500, response.text
    assert routed.backends_of("POST", "/v2.1/servers") == {"nova_api_back"}


def _token(routed: Routed, user: str) -> str:
    auth = v3.Password(
        auth_url=routed.keystone.auth_url,
        username=user,
        password=routed.keystone.password,
        user_domain_name="Default",
        project_name=user,
        project_domain_name="Default",
    )
    token = ks_session.Session(auth=auth).get_token()
    assert token is not None
    return token


def test_version_discovery_agrees(routed: Routed) -> None:
    """What clients negotiate with: the v2.1 document, served by nova-api through the
    endpoint, and cellgate's own. (Nova's ``/`` also lists a deprecated ``v2.0`` that
    cellgate's does not; behind the snippet ``/`` is always nova-api's.)"""
    replica = routed.replicas[0].url
    fields = ("id", "status", "min_version", "version")
    for path in ("/", "/v2.1"):
        through = httpx.get(routed.lb.url + path, timeout=30)
        direct = httpx.get(replica + path, timeout=30)
        assert through.status_code == direct.status_code == 200
        mine, theirs = direct.json(), through.json()
        docs = {d["id"]: d for d in mine.get("versions") or [mine["version"]]}
        others = {d["id"]: d for d in theirs.get("versions") or [theirs["version"]]}
        assert {k: docs["v2.1"][k] for k in fields} == {k: others["v2.1"][k] for k in fields}, (
            f"{routed.nova.kind} and cellgate disagree on {path}"
        )
    assert routed.backends_of("GET", "/v2.1") >= {"nova_api_back"}


# --- losing a replica ---------------------------------------------------------------------


def test_listings_survive_a_killed_replica(routed: Routed) -> None:
    """Last in the module: one replica is gone for good."""
    demo = routed.expected("demo")
    routed.replicas[0].kill()
    for _ in range(4):
        assert _ids(_openstack(routed, "demo", "server", "list", "--no-name-lookup")) == demo
    token = _token(routed, "demo")
    for _ in range(10):
        response = httpx.get(
            f"{routed.lb.url}/v2.1/servers?limit=5", headers={"X-Auth-Token": token}, timeout=60
        )
        assert response.status_code == 200, response.text
        assert [s["id"] for s in response.json()["servers"]] == demo[:5]
