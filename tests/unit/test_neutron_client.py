"""gateway.neutron: Nova's two batched Neutron reads, the mapping to ``security_groups``, and
the cell rules (deadline, breaker, ``None`` for a Neutron that could not tell).

The integration test against a real neutron-server is tests/integration/test_neutron.py;
here an in-process transport plays Neutron to count and inspect the calls.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import httpx
import pytest

from cells.breaker import Breaker, BreakerState
from gateway.neutron import CHUNK, NOT_IN_CATALOG, Neutron, NeutronSource, neutron_for
from gateway.policy import READER_VIEW
from gateway.settings import Settings
from gateway.views import ViewContext, server_detail

GROUPS = {
    "g-web": {"id": "g-web", "name": "web"},
    "g-db": {"id": "g-db", "name": "db"},
    "g-anon": {"id": "g-anon", "name": ""},
}
"""The groups the caller may read (``g-hidden`` is on a port but not listed)."""


class FakeNeutron:
    """Ports per device and the groups above; records every request."""

    def __init__(self, ports: dict[str, list[list[str]]], status: int = 200) -> None:
        self.ports = ports
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status, json={"NeutronError": {"message": "no"}})
        query = request.url.params
        if request.url.path == "/v2.0/ports":
            assert query.get_list("fields") == ["device_id", "security_groups"]
            found = [
                {"device_id": device, "security_groups": groups}
                for device in query.get_list("device_id")
                for groups in self.ports.get(device, [])
            ]
            return httpx.Response(200, json={"ports": found})
        assert request.url.path == "/v2.0/security-groups"
        assert query.get_list("fields") == ["id", "name"]
        wanted = query.get_list("id")
        return httpx.Response(
            200, json={"security_groups": [GROUPS[i] for i in wanted if i in GROUPS]}
        )


def neutron(fake: FakeNeutron, breaker: Breaker | None = None) -> Neutron:
    return Neutron.at(
        "http://neutron.test:9696/",
        timeout_s=5.0,
        breaker=breaker or Breaker(2, 60.0),
        transport=httpx.MockTransport(fake),
    )


async def test_groups_per_port_in_order_as_nova() -> None:
    fake = FakeNeutron(
        {
            "a": [["g-web", "g-db"], ["g-web"]],  # two ports: one entry per port's group
            "b": [["g-anon", "g-hidden"]],  # nameless: its id; unreadable: left out
            "c": [[]],  # a port without groups
        }
    )
    groups = await neutron(fake).security_groups(["a", "b", "c", "d"])
    assert groups == {
        "a": [{"name": "web"}, {"name": "db"}, {"name": "web"}],
        "b": [{"name": "g-anon"}],
    }
    assert [r.url.path for r in fake.requests] == ["/v2.0/ports", "/v2.0/security-groups"]
    assert fake.requests[0].url.host == "neutron.test"


async def test_batches_of_150_ids() -> None:
    uuids = [f"server-{i}" for i in range(2 * CHUNK + 20)]
    fake = FakeNeutron({u: [["g-web"]] for u in uuids})
    groups = await neutron(fake).security_groups(uuids)
    assert isinstance(groups, dict)
    assert len(groups) == len(uuids)
    port_calls = [r for r in fake.requests if r.url.path == "/v2.0/ports"]
    assert [len(r.url.params.get_list("device_id")) for r in port_calls] == [150, 150, 20]
    group_calls = [r for r in fake.requests if r.url.path == "/v2.0/security-groups"]
    assert [r.url.params.get_list("id") for r in group_calls] == [["g-web"]]


async def test_nothing_to_ask() -> None:
    fake = FakeNeutron({})
    assert await neutron(fake).security_groups([]) == {}
    assert fake.requests == []


async def test_ports_404_is_no_ports() -> None:
    """Nova ignores PortNotFoundClient (a server deleted meanwhile)."""
    fake = FakeNeutron({}, status=404)
    assert await neutron(fake).security_groups(["a"]) == {}


async def test_errors_open_the_breaker_then_skip() -> None:
    fake = FakeNeutron({"a": [["g-web"]]}, status=500)
    breaker = Breaker(2, 60.0)
    client = neutron(fake, breaker)
    assert await client.security_groups(["a"]) is None
    assert not breaker.skipping
    assert await client.security_groups(["a"]) is None
    assert breaker.skipping
    asked = len(fake.requests)
    assert await client.security_groups(["a"]) is None  # skipped: Neutron not asked
    assert len(fake.requests) == asked


async def test_bad_body_is_a_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"ports": "nope"})

    breaker = Breaker(1, 60.0)
    client = Neutron.at(
        "http://n", timeout_s=5.0, breaker=breaker, transport=httpx.MockTransport(handler)
    )
    assert await client.security_groups(["a"]) is None
    assert breaker.state is BreakerState.OPEN


async def test_a_hung_neutron_misses_its_deadline_and_opens_the_breaker() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    breaker = Breaker(5, 60.0)
    client = Neutron.at(
        "http://n", timeout_s=0.05, breaker=breaker, transport=httpx.MockTransport(handler)
    )
    assert await client.security_groups(["a"]) is None
    assert breaker.state is BreakerState.OPEN  # a timeout opens it at once


@pytest.fixture
def view() -> ViewContext:
    return ViewContext("http://cg", None, (2, 1), READER_VIEW)


ROW = {"uuid": "a", "display_name": "a", "vm_state": "active", "project_id": "p"}


def test_view_without_neutron_keeps_default(view: ViewContext) -> None:
    assert server_detail(ROW, view)["security_groups"] == [{"name": "default"}]


def test_view_with_neutron_shows_its_groups(view: ViewContext) -> None:
    shown = replace(view, security_groups={"a": [{"name": "web"}]})
    assert server_detail(ROW, shown)["security_groups"] == [{"name": "web"}]


def test_view_omits_the_key_without_groups(view: ViewContext) -> None:
    """No port (or Neutron failed: the page says so in X-Neutron-Unavailable)."""
    shown = replace(view, security_groups={"b": [{"name": "web"}]})
    assert "security_groups" not in server_detail(ROW, shown)


def _settings(**fields: object) -> Settings:
    return Settings(api_database_url="postgresql://x/y", **fields)  # type: ignore[arg-type]  # pydantic validates **fields by name; mypy cannot type them


def test_not_configured_without_url_or_keystone() -> None:
    assert neutron_for(_settings(), None) is None


async def test_a_url_or_nova_confs_endpoint_override() -> None:
    for settings in (
        _settings(neutron_url="http://n:9696/"),
        _settings(neutron={"endpoint_override": "http://n:9696/"}),
    ):
        found = neutron_for(settings, None)
        assert found is not None
        source = await found._locate()
        assert source == NeutronSource("http://n:9696", {})
        await found.aclose()


class FakeSession:
    """keystoneauth1's ``Session`` as :func:`catalog_locate` uses it."""

    def __init__(self, endpoint: str | None) -> None:
        self.endpoint = endpoint
        self.asked: list[dict[str, object]] = []

    def get_endpoint(self, **filters: object) -> str | None:
        self.asked.append(filters)
        return self.endpoint

    def get_auth_headers(self) -> dict[str, str]:
        return {"X-Auth-Token": "service-token"}


async def test_the_keystone_catalog_with_the_service_token() -> None:
    session = FakeSession("http://catalog:9696/")
    found = neutron_for(_settings(keystone_region_name="R2"), session)
    assert found is not None
    source = await found._locate()
    assert source == NeutronSource("http://catalog:9696", {"X-Auth-Token": "service-token"})
    assert session.asked == [
        {"service_type": "network", "interface": "internal", "region_name": "R2"}
    ]
    await found.aclose()


async def test_no_network_endpoint_is_no_neutron() -> None:
    """Not a failure: the catalog says there is none (the view keeps "default")."""
    found = neutron_for(_settings(), FakeSession(None))
    assert found is not None
    assert await found.security_groups(["a"]) is NOT_IN_CATALOG
    assert not found.breaker.skipping
    await found.aclose()


async def test_keystone_failing_is_a_neutron_failure() -> None:
    session = FakeSession("http://catalog:9696")
    session.get_endpoint = lambda **filters: 1 / 0  # type: ignore[method-assign,assignment]  # a failing stand-in for the fake's method
    found = neutron_for(_settings(), session)
    assert found is not None
    assert await found.security_groups(["a"]) is None
    await found.aclose()
