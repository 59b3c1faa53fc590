"""The differential suite: the real nova-api 34.0.0 and cellgate on the same databases.

One API database, four PostgreSQL cells (the last empty) and nova-api's own database, all
with Nova's own tables, seeded by cellgate's seeder; ``scripts/nova_api`` serves Nova's
WSGI app on them (callers from ``X-User-Id``/``X-Project-Id``/``X-Roles``, an empty
Neutron), cellgate runs in-process in ``trusted-headers`` mode with nova-api's address as
its public base URL, so both build the same links. Every probe goes to both; the answers
must be equal, or differ only as an entry of :data:`tests.support.known.KNOWN` says.

The matrix: summary, detail and show; every sort key both ways and multi-key sorts;
limits 1, 7, 100, 1000 and full marker walks; every filter; admin and a member;
microversions 2.1-2.104 (:data:`VERSIONS`).
The tally of equal / known / unexpected probes is printed at the end (``-s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import asyncpg
import httpx
import pytest

from cells.seeding import SeedPlan
from gateway.params import VALID_SORT_KEYS
from gateway.settings import Settings
from tests.support.apps import app_client
from tests.support.known import REFUSING_CELL, explain
from tests.support.liveserver import free_port
from tests.support.parity import ADMIN, MEMBER, Caller, Pair, Probe, ask
from tests.support.reference import (
    NovaDatabases,
    empty_neutron,
    nova_python,
    running_nova_api,
    seeded_nova_databases,
)
from tests.support.services import PG_BASE

pytestmark = [pytest.mark.integration, pytest.mark.nova]

VERSIONS = (
    "2.1", "2.3", "2.9", "2.16", "2.19", "2.26", "2.38", "2.47", "2.63", "2.69", "2.73",
    "2.75", "2.90", "2.96", "2.98", "2.100", "2.104",
)  # fmt: skip
LATEST = VERSIONS[-1]
ALL = (("all_tenants", "1"),)
INSTANCES = 250


@dataclass
class Tally:
    """Probes by outcome, and the known differences seen."""

    outcomes: Counter[str] = field(default_factory=Counter)
    known: Counter[str] = field(default_factory=Counter)


TALLY = Tally()


@dataclass
class World:
    nova: httpx.AsyncClient
    cellgate: httpx.AsyncClient
    sample: list[dict[str, object]]  # Nova's admin detail listing at LATEST, every server

    async def check(self, probes: Iterable[Probe]) -> list[Pair]:
        """Ask every probe; fail with every unexplained difference."""
        pairs, problems = [], []
        for probe in probes:
            pair = await ask(self.nova, self.cellgate, probe)
            pairs.append(pair)
            unexplained, used = explain(pair)
            TALLY.known.update(used)
            if unexplained:
                TALLY.outcomes["unexpected"] += 1
                problems.append(f"{probe.label()}\n    " + "\n    ".join(map(str, unexplained[:5])))
            else:
                TALLY.outcomes["known" if pair.diffs else "equal"] += 1
        assert not problems, "\n".join(problems)
        return pairs

    async def walk(self, probe: Probe) -> list[Pair]:
        """Every page of ``probe``, following cellgate's markers (Nova gets the same query
        and marker; its own next link is compared, not followed)."""
        pairs: list[Pair] = []
        current = probe
        while len(pairs) < 200:
            (pair,) = await self.check([current])
            pairs.append(pair)
            if pair.cellgate.next_href is None or not pair.cellgate.ids:
                return pairs
            current = probe.with_params(("marker", pair.cellgate.ids[-1]))
        raise AssertionError(f"{probe.label()}: more than 200 pages")


@pytest.fixture(scope="module")
def nova_venv_python() -> Path:
    """Built before anything is seeded: a venv that cannot be built skips at once."""
    return nova_python()


@pytest.fixture(scope="module")
async def databases(postgres: str, nova_venv_python: Path) -> AsyncIterator[NovaDatabases]:
    plan = SeedPlan(instances=INSTANCES, seed=20)
    async with seeded_nova_databases(nova_venv_python, PG_BASE, "cg_parity", plan) as dbs:
        yield dbs


# The services the seeder saw up report in every HEARTBEAT_S, as nova-compute does (every
# 10 s), so none goes stale (60 s: Nova's service_down_time) while the module runs: a probe
# whose two requests straddled that moment showed UP in one and UNKNOWN in the other (a CI
# run slow enough to reach it). The one seeded a day old stays stale.
HEARTBEAT_S = 5.0


async def _heartbeats(cell_urls: list[str]) -> None:
    statement = (
        "UPDATE services SET updated_at = now() AT TIME ZONE 'UTC', "
        "last_seen_up = now() AT TIME ZONE 'UTC' "
        "WHERE deleted = 0 AND updated_at > (now() AT TIME ZONE 'UTC') - interval '1 hour'"
    )
    while True:
        for url in cell_urls:
            conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
            try:
                await conn.execute(statement)
            finally:
                await conn.close()
        await asyncio.sleep(HEARTBEAT_S)


@contextlib.asynccontextmanager
async def _reporting(cell_urls: list[str]) -> AsyncIterator[None]:
    task = asyncio.ensure_future(_heartbeats(cell_urls))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture(scope="module")
async def world(databases: NovaDatabases) -> AsyncIterator[World]:
    with (
        empty_neutron() as neutron,
        running_nova_api(databases, free_port(), neutron_url=neutron) as url,
    ):
        settings = Settings(
            api_database_url=databases.api,
            auth_mode="trusted-headers",
            public_base_url=url,
            neutron_url=neutron,
        )
        async with (
            _reporting(databases.cell_urls),
            app_client(settings) as cellgate,
            httpx.AsyncClient(base_url=url, timeout=120) as nova,
        ):
            probe = Probe("servers/detail", (*ALL, ("limit", "1000")), ADMIN, LATEST)
            (pair,) = await World(nova, cellgate, []).check([probe])
            yield World(nova, cellgate, list(pair.nova.servers))


def first(world: World, key: str) -> str:
    """A value of ``key`` some server shows (the most common one)."""
    values = Counter(str(s[key]) for s in world.sample if s.get(key) not in (None, ""))
    return values.most_common(1)[0][0]


# --- views at every microversion ------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
async def test_summary_and_detail_at_every_microversion(world: World, version: str) -> None:
    probes = [
        Probe(path, params, caller, version)
        for path in ("servers", "servers/detail")
        for caller, params in ((ADMIN, (*ALL, ("limit", "1000"))), (MEMBER, ()))
    ]
    await world.check(probes)


async def test_show_every_state(world: World) -> None:
    by_state: dict[tuple[object, object], list[str]] = {}
    for server in world.sample:
        key = (server.get("OS-EXT-STS:vm_state"), server.get("OS-EXT-STS:task_state"))
        by_state.setdefault(key, []).append(str(server["id"]))
    ids = [ids[0] for ids in by_state.values()]
    assert len(ids) >= 5
    probes = [
        Probe(f"servers/{uuid}", (), ADMIN, version)
        for uuid in ids
        for version in ("2.1", "2.16", "2.47", "2.69", LATEST)
    ]
    await world.check(probes)


async def test_show_as_member(world: World) -> None:
    own = [str(s["id"]) for s in world.sample if s["tenant_id"] == MEMBER.project][:5]
    other = [str(s["id"]) for s in world.sample if s["tenant_id"] != MEMBER.project][:2]
    missing = "00000000-0000-4000-8000-000000000000"
    probes = [
        Probe(f"servers/{uuid}", (), MEMBER, version)
        for uuid in [*own, *other, missing]
        for version in ("2.1", LATEST)
    ]
    await world.check(probes)


# --- order and paging -----------------------------------------------------------------


@pytest.mark.parametrize("direction", ["asc", "desc"])
@pytest.mark.parametrize("key", sorted(VALID_SORT_KEYS))
async def test_every_sort_key(world: World, key: str, direction: str) -> None:
    params = (*ALL, ("sort_key", key), ("sort_dir", direction), ("limit", "1000"))
    probes = [Probe("servers", params, ADMIN, LATEST)]
    if key not in ("host", "node"):
        member = (("sort_key", key), ("sort_dir", direction))
        probes.append(Probe("servers", member, MEMBER, "2.1"))
    await world.check(probes)


MULTI_SORTS = [
    "sort_key=display_name&sort_dir=asc&sort_key=created_at&sort_dir=desc",
    "sort_key=vm_state&sort_key=display_name&sort_dir=asc&sort_dir=asc",
    "sort_key=project_id&sort_key=user_id&sort_key=created_at",
    "sort_key=vm_state&sort_key=created_at&sort_dir=desc",
    "sort_key=power_state&sort_key=display_name&sort_dir=desc&sort_dir=asc",
    "sort_key=user_id&sort_key=uuid&sort_dir=desc&sort_dir=desc",
    "sort_key=instance_type_id&sort_key=created_at&sort_dir=asc&sort_dir=asc",
    "sort_key=locked_by&sort_key=display_name&sort_dir=asc&sort_dir=desc",
]


@pytest.mark.parametrize("query", MULTI_SORTS)
async def test_multi_key_sorts_and_walks(world: World, query: str) -> None:
    sort = tuple(parse_qsl(query))
    await world.check([Probe("servers", (*ALL, *sort, ("limit", "1000")), ADMIN, LATEST)])
    await world.walk(Probe("servers", (*ALL, *sort, ("limit", "100")), ADMIN, LATEST))


@pytest.mark.parametrize("limit", ["1", "7", "100", "1000"])
async def test_limits_first_pages(world: World, limit: str) -> None:
    probes = [
        Probe(path, (*params, ("limit", limit)), caller, version)
        for path in ("servers", "servers/detail")
        for caller, params in ((ADMIN, ALL), (MEMBER, ()))
        for version in ("2.1", LATEST)
    ]
    await world.check(probes)


@pytest.mark.parametrize(
    ("caller", "params", "limit", "path"),
    [
        (ADMIN, ALL, "100", "servers"),
        (ADMIN, ALL, "1000", "servers/detail"),
        (MEMBER, (), "7", "servers"),
        (MEMBER, (), "100", "servers/detail"),
        (ADMIN, (*ALL, ("sort_key", "display_name"), ("sort_dir", "asc")), "100", "servers"),
        (ADMIN, (*ALL, ("sort_key", "updated_at"), ("sort_dir", "desc")), "100", "servers"),
    ],
)
async def test_full_marker_walks(
    world: World, caller: Caller, params: tuple[tuple[str, str], ...], limit: str, path: str
) -> None:
    pairs = await world.walk(Probe(path, (*params, ("limit", limit)), caller, LATEST))
    seen = [uuid for pair in pairs for uuid in pair.cellgate.ids]
    assert len(seen) == len(set(seen)) > int(limit) or len(pairs) == 1


async def test_markers_from_the_middle(world: World) -> None:
    uuids = [str(s["id"]) for s in world.sample]
    probes = [
        Probe("servers", (*ALL, ("limit", limit), ("marker", uuids[i])), ADMIN, LATEST)
        for i in (0, 17, len(uuids) // 2, len(uuids) - 2, len(uuids) - 1)
        for limit in ("1", "7", "100")
    ]
    await world.check(probes)


# --- filters --------------------------------------------------------------------------


def _created_text(server: Mapping[str, object]) -> str:
    """A server's ``created_at`` as MySQL writes it (``YYYY-MM-DD HH:MM:SS``), what Nova's
    ``REGEXP`` matches there."""
    return str(server["created"]).removesuffix("Z").replace("T", " ")


def _filters(world: World) -> list[tuple[tuple[str, str], ...]]:
    sample = world.sample
    image = next(
        str(s["image"]["id"])  # type: ignore[index]  # a server body is dict[str, object]; image is a dict here
        for s in sample
        if isinstance(s.get("image"), dict)
    )
    tags = Counter(t for s in sample for t in s.get("tags", []))  # type: ignore[union-attr]  # a server body's values are object; tags is a list
    tag = tags.most_common(1)[0][0]
    other_tag = tags.most_common(2)[1][0]
    host = first(world, "OS-EXT-SRV-ATTR:host")
    node = first(world, "OS-EXT-SRV-ATTR:hypervisor_hostname")
    user = first(world, "user_id")
    created = f"^{_created_text(sample[len(sample) // 2])[:7]}"  # a month, as YYYY-MM
    key_name = first(world, "key_name")
    uuids = [str(s["id"]) for s in sample[:3]]
    updated = sorted(str(s["updated"]) for s in sample)[len(sample) // 2]
    states = Counter((s["OS-EXT-STS:vm_state"], s["OS-EXT-STS:task_state"]) for s in sample)
    vm_states = [str(v) for v, _ in states.most_common()]
    task_states = [str(t) for _, t in states if t is not None]
    return [
        (("name", "web"),),
        (("name", "^db-1"),),
        (("name", "ñ"),),
        (("status", "ACTIVE"),),
        (("status", "ERROR"),),
        (("status", "SHUTOFF"),),
        (("status", "BUILD"),),
        (("status", "ACTIVE"), ("status", "SHUTOFF")),
        (("status", "DELETED"),),
        (("status", "SOFT_DELETED"),),
        (("status", "bogus"),),
        (("image", image),),
        (("flavor", "1"),),
        (("flavor", "3"),),
        (("flavor", "nonexistent"),),
        (("changes-since", updated),),
        (("changes-before", updated),),
        (("changes-since", "2020-01-01T00:00:00Z"), ("changes-before", updated)),
        (("deleted", "true"),),
        (("deleted", "false"),),
        (("host", host),),
        (("node", node),),
        (("availability_zone", "nova"),),
        (("tenant_id", MEMBER.project),),
        (("project_id", MEMBER.project),),
        (("tenant_id", MEMBER.project), ("project_id", "proj-01")),
        (("project_id", "proj-01"), ("tenant_id", MEMBER.project)),
        (("project_id", ""),),
        (("name", "web"), ("display_name", "db")),
        (("display_name", "db"), ("name", "web"), ("display_name", "^$")),
        (("image", image), ("image_ref", "nope")),
        (("image_ref", "nope"), ("image", image)),
        (("display_description", "^$"), ("description", ".")),
        (("user_id", user),),
        (("uuid", uuids[0]),),
        (("uuid", uuids[0]), ("uuid", uuids[1])),
        (("uuid", uuids[1]), ("uuid", uuids[0])),
        (("uuid", uuids[2]), ("uuid", "00000000-0000-4000-8000-000000000000")),
        (("locked", "true"),),
        (("locked", "false"),),
        (("tags", tag),),
        (("tags", f"{tag},{other_tag}"),),
        (("tags-any", f"{tag},{other_tag}"),),
        (("not-tags", tag),),
        (("not-tags-any", f"{tag},{other_tag}"),),
        (("key_name", key_name),),
        (("config_drive", "True"),),
        (("power_state", "1"),),
        (("power_state", "4"),),
        (("vm_state", "active"),),
        (("vm_state", "error"),),
        (("vm_state", "deleted"),),
        (("vm_state", "active"), ("vm_state", "error")),
        (("vm_state", vm_states[1]), ("vm_state", vm_states[0])),
        (("vm_state", "error"), ("status", "ACTIVE")),
        (("status", "SHUTOFF"), ("vm_state", "active")),
        (("task_state", "rebooting"),),
        (("task_state", task_states[0]), ("task_state", task_states[-1])),
        (("task_state", task_states[0]), ("status", "ACTIVE")),
        (("task_state", task_states[0]), ("status", "REBOOT")),
        (("power_state", "1"), ("power_state", "4")),
        (("user_id", "nobody"), ("user_id", user)),
        (("created_at", created),),
        (("created_at", "^2"), ("created_at", "^1")),
        (("hostname", "web"),),
        (("description", "."),),
        (("ip", "10."),),
        (("ip6", "fd"),),
        (("reservation_id", "r-"),),
        (("colour", "red"),),
    ]


@pytest.mark.parametrize("version", ["2.1", LATEST])
@pytest.mark.parametrize("caller", [ADMIN, MEMBER], ids=["admin", "member"])
async def test_every_filter(world: World, caller: Caller, version: str) -> None:
    """Each filter at 2.1 and the latest (a member's filters widen at 2.83 and 2.90), on
    the summary: the rows a filter selects do not depend on the view."""
    scope = ALL if caller is ADMIN else ()
    probes = [
        Probe("servers", (*scope, *f, ("limit", "1000")), caller, version) for f in _filters(world)
    ]
    await world.check(probes)


MEMBER_FROM_2_83 = {"created_at", "vm_state", "task_state", "power_state", "user_id"}


@pytest.mark.parametrize("version", ["2.82", "2.83"])
async def test_filters_a_member_gets_at_2_83(world: World, version: str) -> None:
    """created_at, vm_state, task_state, power_state, user_id...: dropped for a member
    before 2.83, applied from it (repeats read as Nova reads them)."""
    probes = [
        Probe("servers", (*f, ("limit", "1000")), MEMBER, version)
        for f in _filters(world)
        if MEMBER_FROM_2_83 & {name for name, _ in f}
    ]
    await world.check(probes)


@pytest.mark.parametrize("caller", [ADMIN, MEMBER], ids=["admin", "member"])
async def test_created_at_matches_the_text_nova_matches_on_mysql(
    world: World, caller: Caller
) -> None:
    """Nova on PostgreSQL lists nothing for created_at (its ``~`` on a timestamp fails in
    every cell: a known Nova bug), so the suite holds cellgate to what Nova's ``REGEXP``
    selects on MySQL: Nova's own listing, in Nova's order, of the servers whose
    ``YYYY-MM-DD HH:MM:SS`` matches, walked page by page."""
    scope = ALL if caller is ADMIN else ()
    everyone = world.sample
    if caller is MEMBER:
        (pair,) = await world.check([Probe("servers/detail", (("limit", "1000"),), MEMBER, LATEST)])
        everyone = list(pair.nova.servers)
    # A month, a day and hour, the minutes and seconds: of servers this caller lists.
    texts = [_created_text(s) for s in everyone]
    month, hour, seconds = texts[len(texts) // 2][:7], texts[0][8:13], texts[-1][14:]
    for pattern in (f"^{month}", f"-{hour}:", f":{seconds}$"):
        expected = [str(s["id"]) for s in everyone if re.search(pattern, _created_text(s))]
        assert expected, pattern
        pairs = await world.walk(
            Probe("servers", (*scope, ("created_at", pattern), ("limit", "7")), caller, LATEST)
        )
        assert [uuid for pair in pairs for uuid in pair.cellgate.ids] == expected, pattern
        assert all(pair.nova.status == 200 for pair in pairs)


@pytest.mark.parametrize("version", ["2.25", "2.26", "2.65", "2.66", "2.72", "2.73"])
async def test_filters_around_their_microversion(world: World, version: str) -> None:
    """tags* from 2.26, changes-before from 2.66, locked from 2.73: stripped before."""
    newer = {"tags", "tags-any", "not-tags", "not-tags-any", "changes-before", "locked"}
    probes = [
        Probe("servers", (*scope, *f, ("limit", "1000")), caller, version)
        for f in _filters(world)
        if newer & {name for name, _ in f}
        for caller, scope in ((ADMIN, ALL), (MEMBER, ()))
    ]
    await world.check(probes)


# --- bad input ------------------------------------------------------------------------

BAD = [
    (("limit", "-1"),),
    (("limit", "abc"),),
    (("limit", "0"),),
    (("limit", "5000"),),
    (("sort_key", "bogus"),),
    (("sort_key", "memory_mb"),),
    (("sort_dir", "sideways"),),
    (("sort_key", "display_name"), ("sort_dir", "asc"), ("sort_dir", "desc")),
    (("marker", "00000000-0000-4000-8000-000000000000"),),
    (("changes-since", "yesterday"),),
    (("all_tenants", "maybe"),),
    (("_private", "1"),),
    (("metadata", "x"),),
    (("created_at", "("),),
    (("created_at", ""),),
    (("created_at", "^2"), ("created_at", "[")),
    (("hostname", ""),),
    (("name", "*"),),
    (("power_state", "("),),
]


@pytest.mark.parametrize("version", ["2.1", "2.74", "2.75", LATEST])
async def test_bad_input(world: World, version: str) -> None:
    probes = [Probe("servers", (*ALL, *params), ADMIN, version) for params in BAD]
    probes += [Probe("servers", params, MEMBER, version) for params in BAD]
    probes.append(Probe("servers", (("sort_key", "host"),), MEMBER, version))
    await world.check(probes)


async def test_a_cell_refusing_connections(databases: NovaDatabases) -> None:
    """The same data plus a cell nobody listens for: nova-api and cellgate on that API DB."""
    with (
        empty_neutron() as neutron,
        running_nova_api(
            databases, free_port(), api=databases.api_with_dead_cell, neutron_url=neutron
        ) as url,
    ):
        settings = Settings(
            api_database_url=databases.api_with_dead_cell,
            auth_mode="trusted-headers",
            public_base_url=url,
            neutron_url=neutron,
        )
        async with (
            app_client(settings) as cellgate,
            httpx.AsyncClient(base_url=url, timeout=120) as nova,
        ):
            world = World(nova, cellgate, [])
            probes = [
                Probe(path, (*scope, ("limit", "50")), caller, version, REFUSING_CELL)
                for path in ("servers", "servers/detail")
                for caller, scope in ((ADMIN, ALL), (MEMBER, ()))
                for version in ("2.1", "2.69", LATEST)
            ]
            pairs = await world.check(probes)
    # Every project asks the dead cell for an all-tenants listing; "demo" has no instance
    # there, so its own listing does not ask it and is complete.
    for pair in pairs:
        expected = "dead" if pair.probe.caller is ADMIN else None
        assert pair.cellgate.unavailable == expected, pair.probe.label()


AUDITOR_POLICY = """\
"os_compute_api:servers:index:get_all_tenants": "rule:context_is_admin or role:auditor"
"os_compute_api:servers:detail:get_all_tenants": "rule:context_is_admin or role:auditor"
"""
AUDITOR = Caller("auditor", MEMBER.project, "auditor,reader")


async def test_a_non_admin_listing_every_project(databases: NovaDatabases, tmp_path: Path) -> None:
    """A policy file lets an ``auditor`` (no admin) list every project. Nova loads each
    server's group with the caller's project-scoped query: another project's group is not
    found, so from 2.100 its server's ``scheduler_hints`` lose ``group``; the own project's
    keep it. Show (2.71 ``server_groups``, 2.100 hints) of the auditor's own servers."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(AUDITOR_POLICY)
    with (
        empty_neutron() as neutron,
        running_nova_api(databases, free_port(), neutron_url=neutron, policy_file=policy) as url,
    ):
        settings = Settings(
            api_database_url=databases.api,
            auth_mode="trusted-headers",
            public_base_url=url,
            neutron_url=neutron,
            policy_file=policy,
        )
        async with (
            app_client(settings) as cellgate,
            httpx.AsyncClient(base_url=url, timeout=120) as nova,
        ):
            world = World(nova, cellgate, [])
            listing = [
                Probe(path, (*ALL, *extra), caller, version)
                for path in ("servers", "servers/detail")
                for caller in (AUDITOR, ADMIN)
                for version in ("2.96", "2.100", LATEST)
                for extra in ((("limit", "1000"),), (("limit", "7"),))
            ]
            pairs = await world.check(listing)
            by = {(p.probe.caller, p.probe.path, p.probe.version, p.probe.params): p for p in pairs}
            key = ("servers/detail", LATEST, (*ALL, ("limit", "1000")))
            everyone = by[(ADMIN, *key)].nova.servers
            audited = {str(s["id"]): s for s in by[(AUDITOR, *key)].nova.servers}
            lost = [
                s
                for s in everyone
                if "group" in (s.get("scheduler_hints") or {})
                and "group" not in (audited[str(s["id"])].get("scheduler_hints") or {})
            ]
            assert lost, "no server of another project's group: the probe shows nothing"
            assert all(s["tenant_id"] != AUDITOR.project for s in lost)
            own = [
                str(s["id"])
                for s in everyone
                if s["tenant_id"] == AUDITOR.project and "group" in (s.get("scheduler_hints") or {})
            ]
            assert own, "no grouped server of the auditor's project"
            shows = [
                Probe(f"servers/{uuid}", (), caller, version)
                for uuid in own[:3]
                for caller in (AUDITOR, ADMIN)
                for version in ("2.71", "2.100", LATEST)
            ]
            await world.check(shows)


def test_tally() -> None:
    """Print the counts (run last in this module)."""
    print(f"\nnova parity: {sum(TALLY.outcomes.values())} probes, {dict(TALLY.outcomes)}")
    for name, count in TALLY.known.most_common():
        print(f"  {count:5} x {name}")
    assert TALLY.outcomes["unexpected"] == 0
