"""Nova's policy over HTTP: one operator's ``policy.yaml`` in the real nova-api 34.0.0 and
in cellgate, the same requests from readers, members, admins and a custom ``auditor`` role
(granted ``get_all_tenants``, ``allow_all_filters`` and the extended attributes; members
granted ``host_status:unknown-only``), on their own project and on another.

Both read the same databases (:mod:`tests.support.reference`, seeded as the differential
suite seeds them); nova-api takes its caller from ``X-User-Id``/``X-Project-Id``/``X-Roles``
and cellgate runs in ``trusted-headers`` mode. Every probe must get the same status, every
server the same set of visible keys (extended attributes, ``host_status``...), and the
bodies may differ only as :data:`tests.support.known.KNOWN` allows.

Then ``cellgate serve --nova-config`` with the very ``nova.conf`` nova-api serves from, and
no ``CELLGATE_*`` variable at all, answers the same listings and shows (Issue #21).
The tallies are printed at the end (``-s``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from cells.seeding import SeedPlan
from gateway.settings import Settings
from tests.support.apps import app_client
from tests.support.known import explain
from tests.support.liveserver import free_port
from tests.support.parity import ADMIN, MEMBER, Answer, Caller, Pair, Probe, ask, diff_answers
from tests.support.reference import (
    NovaDatabases,
    empty_neutron,
    nova_python,
    running_nova_api,
    seeded_nova_databases,
)
from tests.support.serve import cli, serve_env, wait_for_banner
from tests.support.services import PG_BASE

pytestmark = [pytest.mark.integration, pytest.mark.nova]

POLICY = """\
"os_compute_api:servers:index:get_all_tenants": "rule:context_is_admin or role:auditor"
"os_compute_api:servers:detail:get_all_tenants": "rule:context_is_admin or role:auditor"
"os_compute_api:servers:allow_all_filters": "rule:context_is_admin or role:auditor"
"os_compute_api:os-extended-server-attributes": "rule:context_is_admin or role:auditor"
"os_compute_api:servers:show:host_status:unknown-only": "role:member"
"""
OTHER = "proj-01"
READER = Caller("reader", "demo", "reader")
AUDITOR = Caller("auditor", "demo", "auditor,reader")
BARE_AUDITOR = Caller("bare-auditor", "demo", "auditor")  # no reader: no listing at all
OTHER_READER = Caller("other-reader", OTHER, "reader")
OTHER_AUDITOR = Caller("other-auditor", OTHER, "auditor,reader")
CALLERS = (READER, MEMBER, ADMIN, AUDITOR, BARE_AUDITOR, OTHER_READER, OTHER_AUDITOR)
VERSIONS = ("2.1", "2.16", "2.47", "2.90", "2.104")
ALL = (("all_tenants", "1"),)
EXTENDED = "OS-EXT-SRV-ATTR:host"
NODE = "OS-EXT-SRV-ATTR:hypervisor_hostname"
INSTANCES = 60
IN_FLIGHT = 6


@dataclass
class Tally:
    probes: int = 0
    same_status: int = 0
    same_keys: int = 0  # probes whose every server shows the same keys on both
    equal: int = 0  # bodies equal
    known: Counter[str] = field(default_factory=Counter)


TALLY = Tally()


@dataclass
class World:
    nova: httpx.AsyncClient
    cellgate: httpx.AsyncClient
    work: Path  # nova-api's work directory: its nova.conf and the policy file
    servers: list[dict[str, object]]  # nova-api's admin detail listing, every server


def _keys(answer: Answer) -> dict[str, frozenset[str]]:
    body = answer.body
    if isinstance(body, dict) and isinstance(body.get("server"), dict):
        return {str(body["server"].get("id")): frozenset(body["server"])}
    return {str(s.get("id")): frozenset(s) for s in answer.servers}


def judge(pair: Pair) -> list[str]:
    """What is wrong with ``pair`` (nothing when it is equal or known), and count it."""
    TALLY.probes += 1
    problems = []
    if pair.nova.status == pair.cellgate.status:
        TALLY.same_status += 1
    nova_keys, our_keys = _keys(pair.nova), _keys(pair.cellgate)
    keys = {i: (nova_keys[i], our_keys[i]) for i in nova_keys.keys() & our_keys.keys()}
    if all(a == b for a, b in keys.values()):
        TALLY.same_keys += 1
    for uuid, (a, b) in keys.items():
        if a != b:
            problems.append(f"server {uuid}: nova only {sorted(a - b)}, ours only {sorted(b - a)}")
    unexplained, used = explain(pair)
    TALLY.known.update(used)
    if not pair.diffs:
        TALLY.equal += 1
    problems += map(str, unexplained[:5])
    if not problems:
        return []
    who = f"{pair.probe.caller.roles}@{pair.probe.caller.project}"
    return [f"{pair.probe.label()} [{who}]\n    " + "\n    ".join(problems)]


async def check(world: World, probes: Sequence[Probe]) -> list[Pair]:
    """Ask every probe (a few at a time); fail with every unexplained difference."""
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(probe: Probe) -> Pair:
        async with gate:
            return await ask(world.nova, world.cellgate, probe)

    pairs = await asyncio.gather(*(one(p) for p in probes))
    problems = [line for pair in pairs for line in judge(pair)]
    assert not problems, "\n".join(problems)
    return list(pairs)


@pytest.fixture(scope="module")
def nova_venv_python() -> Path:
    return nova_python()


@pytest.fixture(scope="module")
async def databases(nova_venv_python: Path, postgres: str) -> AsyncIterator[NovaDatabases]:
    plan = SeedPlan(instances=INSTANCES, seed=21)
    async with seeded_nova_databases(nova_venv_python, PG_BASE, "cg_policy", plan) as dbs:
        yield dbs


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("nova-api")
    (path / "policy.yaml").write_text(POLICY)
    return path


@pytest.fixture(scope="module")
def nova_url(databases: NovaDatabases, work: Path) -> Iterator[str]:
    # nova-api asks its own empty Neutron (``[neutron] endpoint_override`` of its nova.conf).
    with running_nova_api(
        databases, free_port(), policy_file=work / "policy.yaml", work_dir=work
    ) as url:
        yield url


@pytest.fixture(scope="module")
async def world(databases: NovaDatabases, work: Path, nova_url: str) -> AsyncIterator[World]:
    with empty_neutron() as neutron:
        settings = Settings(
            api_database_url=databases.api,
            auth_mode="trusted-headers",
            public_base_url=nova_url,
            neutron_url=neutron,
            policy_file=work / "policy.yaml",
        )
        async with (
            app_client(settings) as cellgate,
            httpx.AsyncClient(base_url=nova_url, timeout=120) as nova,
        ):
            world = World(nova, cellgate, work, [])
            probe = Probe("servers/detail", ALL, ADMIN, "2.104")
            (pair,) = await check(world, [probe])
            world.servers = list(pair.nova.servers)
            yield world


def _one_of(world: World, project: str) -> str:
    return next(str(s["id"]) for s in world.servers if s["tenant_id"] == project)


def _probes(world: World, caller: Caller) -> list[Probe]:
    host = next(str(s[EXTENDED]) for s in world.servers if s.get(EXTENDED))
    node = next(str(s[NODE]) for s in world.servers if s.get(NODE))
    queries: list[tuple[str, tuple[tuple[str, str], ...]]] = [
        ("servers", ()),
        ("servers/detail", ()),
        ("servers", ALL),
        ("servers/detail", ALL),
        ("servers/detail", (*ALL, ("project_id", OTHER))),
        ("servers/detail", (("host", host),)),  # an admin-only filter
        ("servers", (*ALL, ("node", node), ("sort_key", "display_name"))),
        ("servers/detail", (("locked_by", "admin"),)),  # ignored or 400 without the policy
        (f"servers/{_one_of(world, 'demo')}", ()),
        (f"servers/{_one_of(world, OTHER)}", ()),
    ]
    return [Probe(path, params, caller, v) for path, params in queries for v in VERSIONS]


@pytest.mark.parametrize("caller", CALLERS, ids=[c.role for c in CALLERS])
async def test_policy_matrix_equals_nova(world: World, caller: Caller) -> None:
    pairs = await check(world, _probes(world, caller))
    # The policy file shapes the answers (so equal answers mean the same policy).
    by_label = {(p.probe.path, p.probe.params, p.probe.version): p.nova for p in pairs}
    everyone = by_label[("servers/detail", ALL, "2.104")]
    own = by_label[("servers/detail", (), "2.104")]
    if caller is BARE_AUDITOR:
        assert own.status == everyone.status == 403
    elif "auditor" in caller.roles or caller is ADMIN:
        assert everyone.status == 200
        assert len({s["tenant_id"] for s in everyone.servers}) > 2
        assert all(EXTENDED in s for s in everyone.servers)
    else:
        assert everyone.status == 403
        assert own.status == 200
        assert {s["tenant_id"] for s in own.servers} == {caller.project}
        assert not any(EXTENDED in s for s in own.servers)


# --- cellgate serve --nova-config with nova-api's own nova.conf -------------------------


def _noauth(caller: Caller) -> dict[str, str]:
    """Headers both read as ``caller``: nova-api its ``X-*`` headers, cellgate's ``noauth``
    (no ``[keystone_authtoken]`` in nova-api's file) the token ``user:project``."""
    return {**caller.headers(), "X-Auth-Token": f"parity-{caller.role}:{caller.project}"}


async def _answer(client: httpx.AsyncClient, probe: Probe, base: str, nova_url: str) -> Answer:
    headers = {**_noauth(probe.caller), "OpenStack-API-Version": f"compute {probe.version}"}
    response = await client.get(
        f"{base}/v2.1/{probe.path}", params=list(probe.params), headers=headers
    )
    # Links name the server asked (neither sets [api] compute_link_prefix).
    body = json.loads(response.text.replace(base, nova_url)) if response.content else None
    return Answer(response.status_code, body, response.headers.get("X-Cells-Unavailable"))


@pytest.fixture
def served_by_nova_conf(world: World, tmp_path: Path) -> Iterator[str]:
    """``cellgate serve --nova-config`` with nova-api's own ``nova.conf``: its base URL."""
    nova_conf = world.work / "nova.conf"
    assert "[oslo_policy]" in nova_conf.read_text()
    port = free_port()
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            cli("serve", "--port", str(port), "--nova-config", str(nova_conf)),
            stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, text=True,
            env=serve_env(),  # not one CELLGATE_* variable
        )  # fmt: skip
    try:
        wait_for_banner(process, stderr_path)
        yield f"http://127.0.0.1:{port}"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, stderr_path.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


async def test_serve_with_only_nova_apis_own_nova_conf(
    world: World, nova_url: str, served_by_nova_conf: str
) -> None:
    base = served_by_nova_conf
    uuid = _one_of(world, "demo")
    probes = [
        Probe(path, params, caller, version)
        for caller, scope in ((ADMIN, ALL), (MEMBER, ()))
        for path, params in (
            ("servers", scope), ("servers/detail", scope), (f"servers/{uuid}", ()),
            ("servers", (*scope, ("limit", "7"))),
        )
        for version in ("2.1", "2.47", "2.104")
    ]  # fmt: skip
    problems = []
    async with httpx.AsyncClient(timeout=120) as client:
        for probe in probes:
            nova = await _answer(client, probe, nova_url, nova_url)
            ours = await _answer(client, probe, base, nova_url)
            assert nova.status == 200, probe.label()
            problems += judge(Pair(probe, nova, ours, diff_answers(nova, ours)))
    assert not problems, "\n".join(problems)


def test_tally() -> None:
    """Print the counts (run last in this module)."""
    print(
        f"\npolicy parity: {TALLY.probes} probes, {TALLY.same_status} same status, "
        f"{TALLY.same_keys} same keys per server, {TALLY.equal} equal bodies"
    )
    for name, count in TALLY.known.most_common():
        print(f"  {count:5} x {name}")
