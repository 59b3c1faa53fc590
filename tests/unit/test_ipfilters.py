"""gateway.ipfilters: ``ip``/``ip6`` through Neutron as Nova 34 asks it (one
``fixed_ips=ip_address_substr=...`` call per filter, device ids as the ``uuid`` filter,
added to a given one; no port: nothing listed), and a 503 when Neutron cannot answer.

An in-process transport plays Neutron; the live neutron-server test is in
tests/integration/test_neutron.py.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import cast

import httpx
import pytest

from cells.breaker import Breaker
from cells.filters import InstanceFilters
from gateway.errors import ServiceUnavailable
from gateway.ipfilters import ip_filters_by_neutron
from gateway.neutron import NOT_IN_CATALOG, Neutron, NeutronSource
from gateway.state import AppState

EXTENSION = "ip-substring-filtering"
PORTS = [
    {"device_id": "vm-a", "ips": ["10.0.0.5", "fd00::5"]},
    {"device_id": "vm-b", "ips": ["10.0.1.7"]},
    {"device_id": "", "ips": ["10.0.0.9"]},  # a port of no server
]


class FakeNeutron:
    def __init__(self, status: int = 200, extensions: tuple[str, ...] = (EXTENSION,)) -> None:
        self.status = status
        self.extensions = extensions
        self.asked: list[list[tuple[str, str]]] = []
        self.extension_lists = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2.0/extensions":
            self.extension_lists += 1
            aliases = [{"alias": a, "name": a} for a in ("security-group", *self.extensions)]
            return httpx.Response(200, json={"extensions": aliases})
        assert request.url.path == "/v2.0/ports"
        self.asked.append(list(request.url.params.multi_items()))
        if self.status != 200:
            return httpx.Response(self.status, json={"NeutronError": {"message": "no"}})
        [fixed] = request.url.params.get_list("fixed_ips")
        part = fixed.removeprefix("ip_address_substr=")
        ports = [{"device_id": p["device_id"]} for p in PORTS if any(part in i for i in p["ips"])]
        return httpx.Response(200, json={"ports": ports})


def _state(neutron: Neutron | None) -> AppState:
    return cast(
        AppState, SimpleNamespace(neutron=neutron, settings=SimpleNamespace(retry_after_s=7))
    )


def _neutron(fake: FakeNeutron) -> Neutron:
    return Neutron.at(
        "http://neutron.test:9696",
        timeout_s=5.0,
        breaker=Breaker(2, 60.0),
        transport=httpx.MockTransport(fake),
    )


async def test_one_call_per_filter_and_device_ids_as_uuids() -> None:
    fake = FakeNeutron()
    got = await ip_filters_by_neutron(
        _state(_neutron(fake)), InstanceFilters(ip="10.0.1", ip6="fd00")
    )
    assert got.uuids == frozenset({"vm-a", "vm-b"})
    assert (got.ip, got.ip6) == (None, None)
    assert fake.asked == [
        [("fixed_ips", "ip_address_substr=10.0.1"), ("fields", "device_id")],
        [("fixed_ips", "ip_address_substr=fd00"), ("fields", "device_id")],
    ]


async def test_a_given_uuid_filter_is_extended_as_nova_does() -> None:
    got = await ip_filters_by_neutron(
        _state(_neutron(FakeNeutron())), InstanceFilters(ip="10.0.1", uuids=frozenset({"vm-z"}))
    )
    assert got.uuids == frozenset({"vm-b", "vm-z"})


@pytest.mark.parametrize("ip", ["192.168", ""])
async def test_no_port_lists_nothing(ip: str) -> None:
    fake = FakeNeutron()
    filters = InstanceFilters(ip=ip, uuids=frozenset({"vm-a"}))
    got = await ip_filters_by_neutron(_state(_neutron(fake)), filters)
    assert got.matches_nothing
    assert len(fake.asked) == (1 if ip else 0)  # an empty value asks nothing (Nova)


async def test_a_failing_neutron_is_a_503() -> None:
    with pytest.raises(ServiceUnavailable) as raised:
        await ip_filters_by_neutron(_state(_neutron(FakeNeutron(500))), InstanceFilters(ip="10"))
    assert raised.value.status == 503


async def test_without_the_extension_the_cells_filter_as_nova() -> None:
    fake = FakeNeutron(extensions=())
    state = _state(_neutron(fake))
    filters = InstanceFilters(ip="10")
    assert await ip_filters_by_neutron(state, filters) is filters
    assert await ip_filters_by_neutron(state, filters) is filters
    assert (fake.extension_lists, fake.asked) == (1, [])  # the list is kept, as Nova keeps it


async def test_without_neutron_the_cells_filter() -> None:
    filters = InstanceFilters(ip="10", ip6="fd")
    assert await ip_filters_by_neutron(_state(None), filters) is filters

    async def absent() -> NeutronSource:
        raise NOT_IN_CATALOG

    no_catalog = Neutron(absent, timeout_s=5.0, breaker=Breaker(2, 60.0))
    assert await ip_filters_by_neutron(_state(no_catalog), filters) is filters
    await no_catalog.aclose()
