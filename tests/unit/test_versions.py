"""Tests for gateway.versions: discovery documents and microversion negotiation."""

from __future__ import annotations

import pytest

from gateway.versions import (
    MAX_VERSION,
    MIN_VERSION,
    VersionNotAcceptable,
    echoed_version,
    is_compute_path,
    negotiate,
    version_document,
    version_headers,
    versions_document,
)

BASE = "http://127.0.0.1:8774"


def test_range() -> None:
    assert MIN_VERSION == (2, 1)
    assert MAX_VERSION == (2, 104)


def test_no_header_is_2_1() -> None:
    assert negotiate({}) == (2, 1)
    assert negotiate({"Accept": "application/json"}) == (2, 1)


@pytest.mark.parametrize(
    "headers",
    [
        {"OpenStack-API-Version": "compute 2.60"},
        {"openstack-api-version": "COMPUTE 2.60"},
        {"X-OpenStack-Nova-API-Version": "2.60"},
        {"x-openstack-nova-api-version": " 2.60 "},
    ],
)
def test_either_header(headers: dict[str, str]) -> None:
    assert negotiate(headers) == (2, 60)


def test_standard_header_wins_over_legacy() -> None:
    headers = {"OpenStack-API-Version": "compute 2.53", "X-OpenStack-Nova-API-Version": "2.10"}
    assert negotiate(headers) == (2, 53)


def test_standard_header_for_another_service_falls_back_to_legacy() -> None:
    assert negotiate({"OpenStack-API-Version": "volume 3.50"}) == (2, 1)
    headers = {"OpenStack-API-Version": "volume 3.50", "X-OpenStack-Nova-API-Version": "2.10"}
    assert negotiate(headers) == (2, 10)


def test_standard_header_with_several_services() -> None:
    assert negotiate({"OpenStack-API-Version": "volume 3.50, compute 2.75"}) == (2, 75)


@pytest.mark.parametrize(
    "headers",
    [{"OpenStack-API-Version": "compute latest"}, {"X-OpenStack-Nova-API-Version": "latest"}],
)
def test_latest(headers: dict[str, str]) -> None:
    assert negotiate(headers) == MAX_VERSION


@pytest.mark.parametrize("value", ["2.1", "2.90", "2.104"])
def test_bounds_are_inclusive(value: str) -> None:
    major, minor = value.split(".")
    assert negotiate({"X-OpenStack-Nova-API-Version": value}) == (int(major), int(minor))


@pytest.mark.parametrize("value", ["2.105", "2.0", "3.0", "1.1", "2.1000"])
def test_out_of_range(value: str) -> None:
    with pytest.raises(VersionNotAcceptable) as caught:
        negotiate({"OpenStack-API-Version": f"compute {value}"})
    assert caught.value.requested == value
    assert caught.value.version == tuple(int(part) for part in value.split("."))
    assert str(caught.value) == (
        f"Version {value} is not supported by the API. Minimum is 2.1 and maximum is 2.104."
    )


@pytest.mark.parametrize(
    "value", ["2", "abc", "2.x", "2.", ".1", "2.1.1", "2.01", "02.1", "2.-1", "", "Latest"]
)
def test_malformed(value: str) -> None:
    with pytest.raises(ValueError, match="invalid format"):
        negotiate({"X-OpenStack-Nova-API-Version": value})


def test_malformed_standard_header() -> None:
    with pytest.raises(ValueError, match="invalid format"):
        negotiate({"OpenStack-API-Version": "compute 2.a"})


def test_version_not_acceptable_is_not_a_value_error() -> None:
    # The caller maps ValueError to 400 and this to 406; they must not overlap.
    assert not issubclass(VersionNotAcceptable, ValueError)


@pytest.mark.parametrize(
    ("headers", "echoed"),
    [
        ({}, (2, 1)),
        ({"OpenStack-API-Version": "compute 2.60"}, (2, 60)),
        ({"OpenStack-API-Version": "compute latest"}, MAX_VERSION),
        # Nova sets the request's version before its range check fails; the fault echoes it.
        ({"OpenStack-API-Version": "compute 2.999"}, (2, 999)),
        ({"X-OpenStack-Nova-API-Version": "3.0"}, (3, 0)),
        # Malformed: Nova has no version to echo; cellgate names the default.
        ({"OpenStack-API-Version": "compute 2.x"}, MIN_VERSION),
        ({"X-OpenStack-Nova-API-Version": "2.01"}, MIN_VERSION),
    ],
)
def test_echoed_version(headers: dict[str, str], echoed: tuple[int, int]) -> None:
    assert echoed_version(headers) == echoed


@pytest.mark.parametrize(
    ("path", "compute"),
    [
        ("/v2.1", True),
        ("/v2.1/", True),
        ("/v2.1/servers", True),
        ("/v2.1/demo/servers/detail", True),
        ("/", False),
        ("/v2.10", False),
        ("/v2.1x/servers", False),
        ("/healthz", False),
        ("/identity/v3", False),
    ],
)
def test_is_compute_path(path: str, compute: bool) -> None:
    assert is_compute_path(path) is compute


def test_version_headers() -> None:
    assert version_headers((2, 47)) == {
        "OpenStack-API-Version": "compute 2.47",
        "X-OpenStack-Nova-API-Version": "2.47",
        "Vary": "OpenStack-API-Version, X-OpenStack-Nova-API-Version",
    }


def test_versions_document() -> None:
    assert versions_document(BASE) == {
        "versions": [
            {
                "id": "v2.1",
                "status": "CURRENT",
                "version": "2.104",
                "min_version": "2.1",
                "updated": "2013-07-23T11:33:21Z",
                "links": [{"rel": "self", "href": "http://127.0.0.1:8774/v2.1/"}],
            }
        ]
    }


def test_version_document() -> None:
    assert version_document(BASE + "/") == {
        "version": {
            "id": "v2.1",
            "status": "CURRENT",
            "version": "2.104",
            "min_version": "2.1",
            "updated": "2013-07-23T11:33:21Z",
            "links": [
                {"rel": "self", "href": "http://127.0.0.1:8774/v2.1/"},
                {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
            ],
            "media-types": [
                {
                    "base": "application/json",
                    "type": "application/vnd.openstack.compute+json;version=2.1",
                }
            ],
        }
    }


class _Response:
    headers: dict[str, str] = {}  # noqa: RUF012 - read-only stand-in
    text = ""

    def __init__(self, body: dict[str, object]) -> None:
        self._body = body

    def json(self) -> dict[str, object]:
        return self._body


class _Session:
    """Just enough of a keystoneauth session to hand a document to discovery."""

    def __init__(self, body: dict[str, object]) -> None:
        self._body = body

    def get(self, url: str, headers: dict[str, str], authenticated: bool | None) -> _Response:
        return _Response(self._body)


@pytest.mark.parametrize("document", [versions_document(BASE), version_document(BASE)])
def test_keystoneauth_reads_the_microversion_range(document: dict[str, object]) -> None:
    discover = pytest.importorskip("keystoneauth1.discover")
    found = discover.Discover(_Session(document), f"{BASE}/v2.1").version_data()
    assert len(found) == 1
    assert found[0]["version"] == (2, 1)
    assert found[0]["url"] == f"{BASE}/v2.1/"
    assert found[0]["min_microversion"] == (2, 1)
    assert found[0]["max_microversion"] == (2, 104)
