"""Real OpenStack clients against a live gateway on the seeded PostgreSQL cells.

openstacksdk, python-novaclient and the ``openstack`` CLI talk to a real uvicorn (in a
thread) exactly as they would talk to Nova: version discovery, microversion headers,
``servers_links`` paging with ``limit``/``marker``, ``GET /servers/{id}``. Every listing is
checked against the independent oracle of :mod:`oracle` (rows read straight from the cell
databases, filtered and sorted in Python), so a page that skips, repeats or reorders a
server fails; every shown server against its row there.

Endpoint forms: every client needs the versioned endpoint ``<url>/v2.1``. With an endpoint
override keystoneauth uses the URL as the service root as is, so the bare root makes the
clients request ``<url>/servers/detail`` (a 404, as it would be on Nova).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import uuid as uuid_module
from collections.abc import Callable
from typing import Any, TypeVar

import openstack
import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1 import token_endpoint
from novaclient import api_versions
from novaclient import client as nova_client
from novaclient import exceptions as nova_exceptions

from gateway.cli import _demo_commands
from tests.support.cellsets import CellSet
from tests.support.iporacle import load_info_caches, nova_ip_matches
from tests.support.liveserver import LiveServer
from tests.support.oracle import OracleQuery, Snapshot, expected_uuids, load_snapshot

pytestmark = [pytest.mark.integration, pytest.mark.clients]

LiveFactory = Callable[[object], LiveServer]
F = TypeVar("F", bound=Callable[..., Any])

# openstacksdk warns about its own internals on every connect/list (it passes a deprecated
# argument to itself and always builds an influxdb config); nothing a caller can avoid.
_SDK50 = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning")
_SDK60 = pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning")


def sdk_warnings(test: F) -> F:
    return _SDK50(_SDK60(test))  # type: ignore[no-any-return]  # pytest's mark decorators are typed to return Any


@pytest.fixture
async def snapshot(pg_cells: CellSet) -> Snapshot:
    return await load_snapshot(pg_cells)


@pytest.fixture
def demo_oracle(snapshot: Snapshot) -> list[str]:
    uuids = expected_uuids(snapshot, OracleQuery(project_id="demo"))
    # More than one max_limit page, so every client has to follow servers_links.
    assert len(uuids) > 1000
    return uuids


@pytest.fixture
def all_oracle(snapshot: Snapshot) -> list[str]:
    return expected_uuids(snapshot, OracleQuery(project_id=None))


@pytest.fixture
def live(pg_cells: CellSet, live_server_factory: LiveFactory) -> LiveServer:
    return live_server_factory(pg_cells.settings())


def _assert_same_listing(got: list[str], expected: list[str]) -> None:
    assert len(got) == len(set(got)), "a server was listed twice"
    assert len(got) == len(expected)
    first_diff = next(
        (i for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b), None
    )
    assert first_diff is None, f"order differs from the oracle at position {first_diff}"


def _sdk(url: str, token: str) -> openstack.connection.Connection:
    return openstack.connect(auth_type="admin_token", auth={"endpoint": url, "token": token})


# --- openstacksdk ------------------------------------------------------------------------


@sdk_warnings
@pytest.mark.parametrize("details", [True, False], ids=["detail", "summary"])
@pytest.mark.parametrize("limit", [7, 1000])
def test_sdk_lists_every_server_once_in_order(
    live: LiveServer, demo_oracle: list[str], details: bool, limit: int
) -> None:
    conn = _sdk(f"{live.url}/v2.1", "demo:demo")
    try:
        servers = list(conn.compute.servers(details=details, limit=limit))
        # The SDK discovered the range at /v2.1 and negotiated the maximum.
        assert conn.compute.get_endpoint_data().max_microversion == (2, 104)
    finally:
        conn.close()
    _assert_same_listing([s.id for s in servers], demo_oracle)
    if details:
        assert {s.project_id for s in servers} == {"demo"}
        assert all(s.status for s in servers)


@sdk_warnings
def test_sdk_admin_all_projects(
    live: LiveServer, all_oracle: list[str], demo_oracle: list[str]
) -> None:
    """Every live server of every project; the summary view keeps the SDK's parsing cheap
    (the detail view of ~5,700 servers costs the SDK ~15 s), the uuids prove the scope."""
    conn = _sdk(f"{live.url}/v2.1", "admin:admin")
    try:
        servers = list(conn.compute.servers(details=False, limit=1000, all_projects=True))
    finally:
        conn.close()
    assert len(all_oracle) > 2 * len(demo_oracle)
    _assert_same_listing([s.id for s in servers], all_oracle)


@sdk_warnings
def test_sdk_root_endpoint_is_not_a_compute_endpoint(live: LiveServer) -> None:
    """The bare root is the version list, not the API: the SDK needs ``/v2.1``."""
    conn = _sdk(live.url, "demo:demo")
    try:
        with pytest.raises(openstack.exceptions.NotFoundException):
            list(conn.compute.servers(details=True, limit=5))
    finally:
        conn.close()


def _shown(demo_oracle: list[str]) -> list[str]:
    """Servers to show: the newest, one in the middle, the oldest."""
    return [demo_oracle[0], demo_oracle[len(demo_oracle) // 2], demo_oracle[-1]]


def _iso(value: object) -> str:
    assert isinstance(value, dt.datetime)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _other_project_server(snapshot: Snapshot) -> str:
    return next(
        str(r["uuid"])
        for r in snapshot.rows
        if r["deleted"] == 0 and r["project_id"] not in ("demo", "admin")
    )


@sdk_warnings
def test_sdk_get_server(live: LiveServer, snapshot: Snapshot, demo_oracle: list[str]) -> None:
    conn = _sdk(f"{live.url}/v2.1", "demo:demo")
    try:
        for uuid in _shown(demo_oracle):
            server = conn.compute.get_server(uuid)
            row = snapshot.by_uuid(uuid)
            assert server.id == uuid
            assert server.name == row["display_name"]
            assert server.project_id == row["project_id"] == "demo"
            assert server.user_id == row["user_id"]
            assert server.vm_state == row["vm_state"]
            assert server.created_at == _iso(row["created_at"])
            assert isinstance(server.server_groups, list)  # negotiated 2.90: show has them
        for missing in (_other_project_server(snapshot), str(uuid_module.uuid4())):
            with pytest.raises(openstack.exceptions.NotFoundException):
                conn.compute.get_server(missing)
    finally:
        conn.close()


# --- python-novaclient -------------------------------------------------------------------


def _nova(url: str, version: str, token: str = "demo:demo") -> nova_client.Client:
    sess = ks_session.Session(auth=token_endpoint.Token(url, token))
    return nova_client.Client(version, session=sess)


@pytest.mark.parametrize("version", ["2.1", "2.75"])
def test_novaclient_lists_everything_in_order(
    live: LiveServer, demo_oracle: list[str], version: str
) -> None:
    nova = _nova(f"{live.url}/v2.1", version)
    servers = nova.servers.list(detailed=True, limit=-1)
    _assert_same_listing([s.id for s in servers], demo_oracle)
    summary = nova.servers.list(detailed=False, limit=-1)
    _assert_same_listing([s.id for s in summary], demo_oracle)


@pytest.mark.parametrize("version", ["2.1", "2.75"])
@pytest.mark.parametrize("position", [0, 49, 999, -30], ids=["first", "p49", "p999", "tail"])
def test_novaclient_marker_gives_the_next_fifty(
    live: LiveServer, demo_oracle: list[str], version: str, position: int
) -> None:
    nova = _nova(f"{live.url}/v2.1", version)
    index = position % len(demo_oracle)
    page = nova.servers.list(detailed=True, limit=50, marker=demo_oracle[index])
    assert [s.id for s in page] == demo_oracle[index + 1 : index + 51]


@pytest.mark.parametrize("version", ["2.1", "2.75"])
def test_novaclient_servers_get(
    live: LiveServer, snapshot: Snapshot, demo_oracle: list[str], version: str
) -> None:
    nova = _nova(f"{live.url}/v2.1", version)
    for uuid in _shown(demo_oracle):
        server = nova.servers.get(uuid)
        row = snapshot.by_uuid(uuid)
        assert server.id == uuid
        assert server.name == row["display_name"]
        assert server.tenant_id == row["project_id"]
        assert server.user_id == row["user_id"]
        assert getattr(server, "OS-EXT-STS:vm_state") == row["vm_state"]
        assert server.created == _iso(row["created_at"])
    for missing in (_other_project_server(snapshot), str(uuid_module.uuid4())):
        with pytest.raises(nova_exceptions.NotFound):
            nova.servers.get(missing)


def test_novaclient_discovers_the_microversion_range(live: LiveServer) -> None:
    nova = _nova(f"{live.url}/v2.1", "2.1")
    latest = api_versions.discover_version(nova, api_versions.APIVersion("2.latest"))
    assert latest == api_versions.APIVersion("2.96")  # novaclient 18.x stops at 2.96


# --- openstack CLI -----------------------------------------------------------------------


def _banner_openstack_command(url: str) -> str:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    lines = [line.strip() for line in _demo_commands(host, int(port)).splitlines()]
    [command] = [line for line in lines if " openstack " in line]
    return command


def _clean_env() -> dict[str, str]:
    """The test runner's environment without any ``OS_*`` variable or clouds.yaml hint."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OS_")}


def _run_shell(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, shell=True, capture_output=True, text=True, timeout=120, env=_clean_env()
    )


def test_openstack_cli_server_list(live: LiveServer, demo_oracle: list[str]) -> None:
    command = _banner_openstack_command(live.url)
    assert command.startswith(f"OS_IDENTITY_ENDPOINT_OVERRIDE={live.url}/identity/v3 openstack ")
    assert f"--os-endpoint {live.url}/v2.1 " in command

    as_json = _run_shell(f"{command} -f json")
    assert as_json.returncode == 0, as_json.stderr
    rows = json.loads(as_json.stdout)
    assert [row["ID"] for row in rows] == demo_oracle[:5]

    as_table = _run_shell(command)
    assert as_table.returncode == 0, as_table.stderr
    assert all(uuid in as_table.stdout for uuid in demo_oracle[:5])


def test_openstack_cli_server_show(
    live: LiveServer, snapshot: Snapshot, demo_oracle: list[str]
) -> None:
    """The banner's ``server show`` line, as printed, for a few servers."""
    host, port = live.url.removeprefix("http://").rsplit(":", 1)
    for uuid in _shown(demo_oracle):
        banner = _demo_commands(host, int(port), server_id=uuid).splitlines()
        [command] = [line.strip() for line in banner if " server show " in line]
        assert command.endswith(f" server show {uuid}")
        result = _run_shell(f"{command} -f json")
        assert result.returncode == 0, result.stderr
        shown = json.loads(result.stdout)
        row = snapshot.by_uuid(uuid)
        assert shown["id"] == uuid
        assert shown["name"] == row["display_name"]
        assert shown["project_id"] == row["project_id"]
        assert shown["OS-EXT-STS:vm_state"] == row["vm_state"]
        assert shown["created"] == _iso(row["created_at"])
    missing = str(uuid_module.uuid4())
    result = _run_shell(f"{command.rsplit(' ', 1)[0]} {missing}")
    assert result.returncode != 0
    assert f"No Server found for {missing}" in result.stderr


@pytest.mark.parametrize(
    ("option", "ip", "ip6"), [("--ip 10.", "10.", None), ("--ip6 fd00:", None, "fd00:")]
)
async def test_openstack_cli_server_list_by_ip(
    live: LiveServer,
    pg_cells: CellSet,
    demo_oracle: list[str],
    option: str,
    ip: str | None,
    ip6: str | None,
) -> None:
    """``openstack server list --ip/--ip6`` (#20): Nova's info-cache rule, no Neutron."""
    caches = await load_info_caches(pg_cells)
    matching = [u for u in demo_oracle if nova_ip_matches(caches.get(u), ip, ip6)]
    assert 20 < len(matching) < len(demo_oracle), "the seed must have both kinds"
    command = _banner_openstack_command(live.url).replace(" --limit 5 ", " --limit 20 ")
    result = await asyncio.to_thread(_run_shell, f"{command} {option} -f json")
    assert result.returncode == 0, result.stderr
    assert [row["ID"] for row in json.loads(result.stdout)] == matching[:20]


@pytest.mark.parametrize("position", [0, 777, -4], ids=["first", "p777", "tail"])
def test_openstack_cli_server_list_marker(
    live: LiveServer, demo_oracle: list[str], position: int
) -> None:
    """``--marker`` is resolved through ``GET /servers/{id}`` first, then pages."""
    command = _banner_openstack_command(live.url).replace(" --limit 5 ", " --limit 7 ")
    index = position % len(demo_oracle)
    result = _run_shell(f"{command} --marker {demo_oracle[index]} -f json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["ID"] for row in rows] == demo_oracle[index + 1 : index + 8]
