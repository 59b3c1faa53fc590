"""The ``ip``/``ip6`` info-cache rule (:mod:`cells.ipmatch`) on PostgreSQL, MariaDB and
SQLite, on crafted network_info values, against Nova's rule written out in Python.

The crafted caches hold what must not match (subnet gateways, DNS servers, floating IPs
nested in a fixed IP, an IPv6 address against ``ip``), addresses without a version, a
``version: false``, a VIF without a network, a cache that is not JSON, a soft-deleted
cache and upper-case hex, so each branch of the rule is exercised on each backend.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from cells.filters import InstanceFilters, where_clauses
from cells.registry import async_url
from cells.schema import cell_metadata, instance_info_caches, instances
from tests.support.iporacle import nova_ip_matches

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def _ip(address: object, version: object = "absent", floating: list[str] | None = None) -> dict:
    out: dict[str, object] = {"address": address, "type": "fixed", "meta": {}}
    if version != "absent":
        out["version"] = version
    out["floating_ips"] = [
        {"address": f, "type": "floating", "version": 4, "meta": {}} for f in floating or []
    ]
    return out


def _vif(*subnets: dict) -> dict:
    return {"id": "p", "network": {"id": "n", "label": "private", "subnets": list(subnets)}}


def _subnet(ips: list[dict], gateway: str = "192.0.2.1", dns: tuple[str, ...] = ()) -> dict:
    return {
        "cidr": "x",
        "gateway": {"address": gateway, "type": "gateway", "version": 4, "meta": {}},
        "dns": [{"address": d, "type": "dns", "version": 4, "meta": {}} for d in dns],
        "ips": ips,
    }


CACHES: dict[str, str | None] = {
    "plain4": json.dumps([_vif(_subnet([_ip("10.1.2.3", 4)]))]),
    "gw-dns-floating": json.dumps(
        [_vif(_subnet([_ip("192.0.2.7", 4, ["10.1.9.9"])], "10.1.0.1", ("10.1.0.2",)))]
    ),
    "v6": json.dumps([_vif(_subnet([_ip("fd00:1::5", 6)], "fd00:1::1"))]),
    "v6-upper": json.dumps([_vif(_subnet([_ip("FD00:1::6", 6)]))]),
    "two-vifs": json.dumps(
        [_vif(_subnet([_ip("172.16.0.4", 4)])), _vif(_subnet([_ip("10.1.7.7", 4)]))]
    ),
    "no-version": json.dumps([_vif(_subnet([_ip("10.1.4.4"), _ip("fd00:2::4")]))]),
    "false-version": json.dumps([_vif(_subnet([_ip("10.1.5.5", False)]))]),
    "no-network": json.dumps([{"id": "p", "network": None}]),
    "no-address": json.dumps([_vif(_subnet([_ip(None, 4), _ip("", 4)]))]),
    "not-json": "not json at all",
    "empty": "[]",
    "null": None,
    "v4-as-v6": json.dumps([_vif(_subnet([_ip("10.1.8.8", 6)]))]),
}
DELETED_CACHE = "plain4-deleted"


@pytest.fixture(scope="module", params=["postgresql", "mariadb", "sqlite"])
async def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    name = f"ipfilter_ipmatch_{os.getpid()}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('ipmatch') / 'cell.db'}"
        admin = None
    else:
        base = request.getfixturevalue("postgres" if request.param == "postgresql" else "mariadb")
        admin = create_async_engine(
            async_url(base + ("/postgres" if request.param == "postgresql" else "/mysql")),
            poolclass=NullPool,
            isolation_level="AUTOCOMMIT",
        )
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            suffix = " CHARACTER SET utf8" if request.param == "mariadb" else ""
            await conn.execute(text(f"CREATE DATABASE {name}{suffix}"))
        url = f"{base}/{name}"
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    async with engine.begin() as conn:
        await conn.run_sync(cell_metadata.create_all)
        all_caches = [*CACHES.items(), (DELETED_CACHE, CACHES["plain4"])]
        for n, (uuid, info) in enumerate(all_caches):
            await conn.execute(instances.insert().values(id=n + 1, uuid=uuid, deleted=0))
            if uuid != "null":
                await conn.execute(
                    instance_info_caches.insert().values(
                        instance_uuid=uuid,
                        network_info=info,
                        deleted=n if uuid == DELETED_CACHE else 0,
                    )
                )
    yield engine
    await engine.dispose()
    if admin is not None:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        await admin.dispose()


@pytest.mark.parametrize(
    ("ip", "ip6"),
    [
        ("10.1", None),
        ("10\\.1\\.0\\.", None),  # gateways and DNS only
        ("10\\.1\\.9\\.9$", None),  # a floating IP only
        ("^10.1.2.3$", None),
        ("1", None),  # anchored: "172.16..." and "192.0..." yes, "10.1" too
        ("0.1", None),  # not found inside an address
        ("", None),  # every v4 address
        (None, "fd00"),
        (None, "FD00"),  # case-sensitive
        (None, "(?i)FD00"),  # unless asked otherwise
        ("(?x) 10 \\.1 # verbose, with a comment", None),
        (None, "fd00:1::5"),
        (None, "10.1"),  # a v4 address written as version 6
        ("172|192", None),  # an alternative: not escaped (Nova matches in Python)
        ("172", "fd00:2"),  # either
        ("nothing", "nothing"),
    ],
)
async def test_ip_rule_matches_nova(engine: AsyncEngine, ip: str | None, ip6: str | None) -> None:
    query = select(instances.c.uuid).where(*where_clauses(InstanceFilters(ip=ip, ip6=ip6)))
    async with engine.connect() as conn:
        got = sorted(str(u) for u in (await conn.execute(query)).scalars())
    expected = sorted(
        uuid for uuid, info in CACHES.items() if uuid != "null" and nova_ip_matches(info, ip, ip6)
    )
    if nova_ip_matches(CACHES["plain4"], ip, ip6):
        expected = sorted([*expected, DELETED_CACHE])
    assert got == expected, (ip, ip6)
