"""deploy/haproxy/cellgate.cfg: which requests its ACLs send to cellgate (the regex, read
from the file, evaluated with Python's re: HAProxy's PCRE reads it the same way)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

SNIPPET = (Path(__file__).parents[2] / "deploy" / "haproxy" / "cellgate.cfg").read_text()
PATH_RE = re.compile(re.search(r"acl cellgate_path path_reg (\S+)", SNIPPET)[1])  # type: ignore[index]  # the snippet is known to match; no match fails the test
METHODS = set(re.search(r"acl cellgate_method method (.+)", SNIPPET)[1].split())  # type: ignore[index]  # the snippet is known to match; no match fails the test
UUID = "6e0a4c3e-1f5b-4d0e-9a8b-3f1c2d4e5f60"
PROJECT = "9f1b8c1e6c3a4f0e8d2b7a6c5d4e3f21"


@pytest.mark.parametrize(
    "path",
    [
        "/v2.1/servers",
        "/v2.1/servers/",
        "/v2.1/servers/detail",
        f"/v2.1/servers/{UUID}",
        f"/v2.1/{PROJECT}/servers",
        f"/v2.1/{PROJECT}/servers/detail",
        f"/v2.1/{PROJECT}/servers/{UUID}",
    ],
)
def test_listings_and_show_go_to_cellgate(path: str) -> None:
    assert PATH_RE.match(path)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v2.1",
        "/v2.1/",
        "/v2.1/flavors",
        "/v2.1/flavors/detail",
        f"/v2.1/servers/{UUID}/action",
        f"/v2.1/servers/{UUID}/ips",
        f"/v2.1/servers/{UUID}/os-interface",
        f"/v2.1/{PROJECT}/servers/{UUID}/metadata",
        f"/v2.1/os-hypervisors/{UUID}/servers",
        "/v2/servers",
        "/v2.10/servers",
    ],
)
def test_everything_else_stays_with_nova_api(path: str) -> None:
    assert not PATH_RE.match(path)


def test_only_reads_go_to_cellgate() -> None:
    assert sorted(METHODS) == ["GET", "HEAD"]
    assert "/readyz" in SNIPPET
