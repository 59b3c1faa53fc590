"""schemathesis against a live ``cellgate serve`` on the seeded PostgreSQL cells.

The schema is the one the server publishes (``/openapi.json``). Every operation gets
:data:`EXAMPLES_PER_OPERATION` generated requests (schemathesis' positive and negative
modes, plus the documented examples), as an administrator, as a user and without a token;
on the project-scoped routes the path names the caller's own project half the time, and
the show route asks for real servers half the time, so those paths reach the listing and
not only its 400s and 404s. Each response must be no 5xx, and conform to the document in
status, content type, headers and body. scripts/fuzz runs the same checks with more
examples and schemathesis' coverage and stateful phases.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.cellsets import CellSet
from tests.support.liveserver import free_port

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = 40
TOKENS = ("admin:admin", "demo:demo", None)  # noauth mode: user:project
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
START_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def gateway_url(pg_cells: CellSet) -> Iterator[str]:
    """``cellgate serve`` on the seeded cells, as an operator runs it (its own process)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CELLGATE_")}
    env.update(
        CELLGATE_API_DATABASE_URL=pg_cells.api_url,
        CELLGATE_AUTH_MODE="noauth",
        CELLGATE_LOG_LEVEL="WARNING",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("cellgate serve did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server_ids(gateway_url: str) -> list[str]:
    """A few real servers, for the show route."""
    response = httpx.get(
        f"{gateway_url}/v2.1/servers?all_tenants=1&limit=20",
        headers={"X-Auth-Token": "admin:admin"},
    )
    return [server["id"] for server in response.json()["servers"]]


@pytest.fixture
def api_schema(gateway_url: str) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "seed": 20_251_129,  # reproducible in CI; scripts/fuzz draws a fresh seed
            "cache": {"enabled": False},
            "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
            "generation": {"max-examples": EXAMPLES_PER_OPERATION, "mode": "all"},
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
        }
    )
    return schemathesis.openapi.from_url(f"{gateway_url}/openapi.json", config=config)


@pytest.fixture(scope="module")
def sent(gateway_url: str) -> Iterator[Counter[str]]:
    """Requests sent per operation; every operation must have had its share."""
    counts: Counter[str] = Counter()
    yield counts
    paths = httpx.get(f"{gateway_url}/openapi.json").json()["paths"]
    labels = {f"GET {path}" for path in paths}
    assert labels == set(counts), "an operation was not fuzzed"
    assert min(counts.values()) >= EXAMPLES_PER_OPERATION, counts


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@schema.given(token=st.sampled_from(TOKENS), aim=st.booleans(), pick=st.integers(0, 19))
def test_every_operation_conforms(
    case: schemathesis.Case,
    token: str | None,
    aim: bool,
    pick: int,
    server_ids: list[str],
    sent: Counter[str],
) -> None:
    if case.headers is not None:
        case.headers.pop("X-Auth-Token", None)
    headers = {} if token is None else {"X-Auth-Token": token}
    if aim and case.path_parameters:
        project = (token or "nobody").partition(":")[2]
        for name in case.path_parameters:
            real = project if name == "project_id" else server_ids[pick % len(server_ids)]
            case.path_parameters[name] = real
    sent[case.operation.label] += 1
    case.call_and_validate(headers=headers, checks=CHECKS)
