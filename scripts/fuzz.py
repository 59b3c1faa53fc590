#!/usr/bin/env python3
"""Fuzz a live gateway with schemathesis: every operation of its ``/openapi.json``, as an
administrator, as a user and without a token, with the checks the CI fuzz test runs
(tests/integration/test_fuzz.py) and all four schemathesis phases (examples, coverage,
fuzzing, stateful).

Without ``--url`` a gateway is started and stopped: ``cellgate serve`` on the cells of
``CELLGATE_API_DATABASE_URL`` when it is set, else ``cellgate demo`` (SQLite, seeded in a
temporary directory). Both run ``auth_mode=noauth``, since the identities are noauth
tokens (``user:project``). Prints the counts per identity and in total (test cases,
operations, failures by schemathesis failure code), keeps schemathesis' JSON reports and
logs in ``--report-dir`` (a new temporary directory by default), and exits 1 on any
failure.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
START_TIMEOUT_S = 300.0  # the demo seeds its cells first


@dataclass(frozen=True)
class Identity:
    name: str
    token: str | None


IDENTITIES = (
    Identity("admin", "admin:admin"),
    Identity("user", "demo:demo"),
    Identity("anonymous", None),
)


@dataclass
class Outcome:
    """What one schemathesis run reported."""

    identity: str
    test_cases: int = 0
    operations: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    exit_code: int = 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"fuzz: the gateway did not start (see {url})") from None
            time.sleep(0.2)


@contextmanager
def gateway(instances: int, log_path: Path) -> Iterator[str]:
    """A noauth gateway on a free loopback port: ``serve`` or ``demo`` (see the docstring)."""
    port = _free_port()
    env = {**os.environ, "CELLGATE_AUTH_MODE": "noauth", "CELLGATE_LOG_LEVEL": "WARNING"}
    with tempfile.TemporaryDirectory(prefix="cellgate-fuzz-") as data_dir:
        command = [sys.executable, "-m", "gateway.cli"]
        if env.get("CELLGATE_API_DATABASE_URL"):
            command += ["serve", "--port", str(port)]
        else:
            command += ["demo", "--port", str(port), "--data-dir", data_dir]
            command += ["--instances", str(instances)]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
            url = f"http://127.0.0.1:{port}"
            try:
                _wait_healthy(url, process)
                yield url
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(timeout=60)


def server_ids(url: str) -> list[str]:
    """A few servers the gateway shows, for the show routes."""
    request = urllib.request.Request(
        f"{url}/v2.1/servers?all_tenants=1&limit=20", headers={"X-Auth-Token": "admin:admin"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return [str(server["id"]) for server in json.load(response)["servers"]]


def write_config(path: Path, identity: Identity, servers: list[str]) -> None:
    """A schemathesis.toml aiming half the path parameters at what exists: the caller's
    own project (any other is a 400) and real servers (anything else is a 404)."""
    aims = {"server_id": servers}
    if identity.token is not None:
        aims["project_id"] = [identity.token.partition(":")[2]]
    lines = []
    for name, values in aims.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}", ""]
    lines.append("[parameters]")
    for name in aims:
        lines.append(f'"path.{name}" = {{ dictionary = "{name}", probability = 0.5 }}')
    path.write_text("\n".join(lines) + "\n")


def fuzz(
    url: str, identity: Identity, servers: list[str], args: argparse.Namespace, report_dir: Path
) -> Outcome:
    """One schemathesis run as ``identity``; its JSON report and log go to ``report_dir``."""
    report = report_dir / f"{identity.name}.json"
    config = report_dir / f"{identity.name}.toml"
    write_config(config, identity, servers)
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(args.examples),
        "--workers",
        str(args.workers),
        "--report",
        "json",
        "--report-json-path",
        str(report),
        "--suppress-health-check",
        "all",
    ]
    if identity.token is not None:
        command += ["--header", f"X-Auth-Token: {identity.token}"]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    started = time.monotonic()
    with (report_dir / f"{identity.name}.log").open("wb") as log:
        # In the report directory: schemathesis keeps its cache under the working directory.
        done = subprocess.run(command, cwd=report_dir, stdout=log, stderr=log, check=False)
    outcome = Outcome(identity.name, wall_s=time.monotonic() - started, exit_code=done.returncode)
    if not report.exists():
        return outcome
    body = json.loads(report.read_text())
    outcome.test_cases = int(body["test_cases"]["generated"])
    outcome.operations = int(body["operations"]["tested"])
    for failure in body["failures"]:
        outcome.failures[f"{failure['code']} {failure['title']}"] += int(failure["count"])
    for error in body["errors"]:
        outcome.failures[f"error: {error.get('title', error)}"] += 1
    return outcome


def _line(outcome: Outcome) -> str:
    failures = sum(outcome.failures.values())
    return (
        f"{outcome.identity:<10} {outcome.test_cases:>7} test cases  {outcome.operations:>3} "
        f"operations  {failures:>4} failures  {outcome.wall_s:7.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--url", help="fuzz this running gateway (noauth) instead of starting one")
    parser.add_argument(
        "--examples", type=int, default=100, help="fuzzing examples per operation and identity"
    )
    parser.add_argument("--workers", type=int, default=1, help="schemathesis workers")
    parser.add_argument("--seed", type=int, help="schemathesis seed (default: a fresh one)")
    parser.add_argument("--instances", type=int, default=3000, help="instances the demo seeds")
    parser.add_argument("--report-dir", help="JSON reports and logs (default: a new temp dir)")
    args = parser.parse_args(argv)
    if args.report_dir is None:
        report_dir = Path(tempfile.mkdtemp(prefix="cellgate-fuzz-report-"))
    else:
        report_dir = Path(args.report_dir).resolve()
        report_dir.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    outcomes: list[Outcome] = []
    if args.url is None:
        target = gateway(args.instances, report_dir / "gateway.log")
    else:
        target = _given(args.url)
    with target as url:
        print(f"fuzzing {url} ({', '.join(CHECKS)})", flush=True)
        servers = server_ids(url)
        for identity in IDENTITIES:
            outcomes.append(fuzz(url, identity, servers, args, report_dir))
            print(_line(outcomes[-1]), flush=True)

    total = Outcome("total", wall_s=time.monotonic() - started)
    for outcome in outcomes:
        total.test_cases += outcome.test_cases
        total.operations = max(total.operations, outcome.operations)
        total.failures.update(outcome.failures)
    print(_line(total))
    for name, count in sorted(total.failures.items()):
        print(f"  {count:>5}  {name}")
    print(f"reports and logs: {report_dir}")
    clean = not total.failures and all(o.exit_code == 0 for o in outcomes)
    return 0 if clean else 1


@contextmanager
def _given(url: str) -> Iterator[str]:
    yield url.rstrip("/")


if __name__ == "__main__":
    sys.exit(main())
