#!/usr/bin/env python3
"""The real nova-api (PyPI's ``nova``, the release of ``locks/nova.in``) on loopback, for the
differential tests and by hand.

    scripts/nova_api install
    scripts/nova_api serve --api-db URL --database URL [--port 18774] [--workers 2]
                           [--neutron-url URL] [--policy-file FILE] [--work-dir DIR]

``install`` builds the venv (every requirement of ``locks/nova.in``, pinned by
``locks/nova.txt``; rebuilt when either changes) and exits. ``serve`` does that if needed,
then writes in a work directory (a temporary one unless ``--work-dir``):

- ``nova.conf``: ``[api_database]`` is ``--api-db`` (the API database cellgate reads; its
  ``cell_mappings`` name the cells), ``[database]`` is ``--database`` (a database holding
  Nova's cell tables, where nova-api registers its own service row: not a listed cell),
  a fake RPC transport, ``[neutron] endpoint_override``, and ``[oslo_policy] policy_file``
  with ``--policy-file`` (else Nova's defaults);
- ``api-paste.ini``: Nova's own, without ``authtoken``. Nova 34 has no ``noauth2``; without
  ``authtoken`` its ``keystonecontext`` takes the caller from the ``X-User-Id``,
  ``X-Project-Id`` and ``X-Roles`` headers (send ``X-Auth-Token`` too: the detail view
  forwards it to Neutron);
- ``gunicorn.conf.py``: everything in the file and nothing on the command line, because
  oslo.config parses the server's ``sys.argv`` (``gunicorn`` alone: no arguments).

Nova's detail view asks Neutron for the page's ports (security groups). Without
``--neutron-url`` an empty Neutron is served in this process (every port and security
group list empty: Nova then omits ``security_groups``), so the answers do not depend on a
Neutron. URLs are plain ``postgresql://`` (psycopg2: SQLAlchemy is below 2.1 in the venv)
or ``mysql+pymysql://``. When nova-api answers, one JSON line goes to stdout (``url``,
``neutron_url``, ``work_dir``, ``workers``); it serves until SIGTERM or SIGINT. Logs stay
in the work directory (``nova-api.log``, ``gunicorn.log``).

Environment: ``CELLGATE_NOVA_VENV`` (default ``${XDG_CACHE_HOME:-$HOME/.cache}/cellgate/
nova-venv``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import gunicornproc
from venvs import LOCKS, ensure_venv, requirements, venv_dir

__all__ = ["NovaApi", "main", "packages", "serve_empty_neutron", "venv_path"]

REQUIREMENTS = LOCKS / "nova.in"
LOCK = LOCKS / "nova.txt"
READY_TIMEOUT_S = 120.0


def venv_path(env: Mapping[str, str]) -> Path:
    """Where the Nova venv lives (see the module docstring)."""
    return venv_dir(env, "CELLGATE_NOVA_VENV", "nova-venv")


def packages() -> list[str]:
    """The requirements of ``locks/nova.in`` (comments dropped)."""
    return requirements(REQUIREMENTS)


def install(env: Mapping[str, str]) -> Path:
    """The venv (built or rebuilt when the requirements or the lock changed)."""
    venv = venv_path(env)
    ensure_venv(venv, packages(), constraints=LOCK, label="nova-api")
    return venv


def _nova_conf(
    work: Path, api_db: str, database: str, neutron_url: str, policy_file: Path | None = None
) -> str:
    policy = f"[oslo_policy]\npolicy_file = {policy_file.resolve()}\n" if policy_file else ""
    return f"""[DEFAULT]
host = cellgate-nova-api
log_file = {work / "nova-api.log"}
use_stderr = false
transport_url = fake://
[api_database]
connection = {api_db}
[database]
connection = {database}
[neutron]
endpoint_override = {neutron_url}
[oslo_concurrency]
lock_path = {work}
[workarounds]
disable_compute_service_check_for_ffu = true
{policy}"""


def paste_without_authtoken(paste: str) -> str:
    """Nova's ``api-paste.ini`` with ``authtoken`` removed from every pipeline."""
    lines = []
    for line in paste.splitlines():
        if line.startswith("keystone =") or line.startswith("keystone="):
            line = " ".join(word for word in line.split(" ") if word != "authtoken")
        lines.append(line)
    return "\n".join(lines) + "\n"


def _gunicorn_conf(work: Path, port: int, workers: int) -> str:
    return f"""bind = "127.0.0.1:{port}"
workers = {workers}
threads = 4
timeout = 120
graceful_timeout = 5
wsgi_app = "nova.wsgi.osapi_compute:application"
errorlog = "{work / "gunicorn.log"}"
raw_env = ["OS_NOVA_CONFIG_DIR={work}", "OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf"]
"""


@dataclass(frozen=True)
class NovaApi:
    """A configured work directory and the venv that serves it."""

    venv: Path
    work: Path
    port: int
    workers: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configure(
        self, api_db: str, database: str, neutron_url: str, policy_file: Path | None = None
    ) -> None:
        paste = (self.venv / "etc" / "nova" / "api-paste.ini").read_text()
        (self.work / "api-paste.ini").write_text(paste_without_authtoken(paste))
        conf = _nova_conf(self.work, api_db, database, neutron_url, policy_file)
        (self.work / "nova.conf").write_text(conf)
        conf = _gunicorn_conf(self.work, self.port, self.workers)
        (self.work / "gunicorn.conf.py").write_text(conf)

    def serve(self) -> subprocess.Popen[bytes]:
        """gunicorn in its own session (its workers die with it); wait until it answers."""
        return gunicornproc.serve(
            self.venv, self.work, f"{self.url}/v2.1/", "nova-api", READY_TIMEOUT_S
        )


class _EmptyNeutron(BaseHTTPRequestHandler):
    """Every list Nova asks for is empty (``{"ports": []}``, ``{"security_groups": []}``)."""

    def do_GET(self) -> None:
        collection = self.path.partition("?")[0].rstrip("/").rsplit("/", 1)[-1]
        body = json.dumps({collection.replace("-", "_"): []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def serve_empty_neutron() -> ThreadingHTTPServer:
    """An empty Neutron on a free loopback port, served by a daemon thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EmptyNeutron)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _port(server: ThreadingHTTPServer | None) -> int:
    assert server is not None
    return int(server.server_address[1])


stop = gunicornproc.stop


def _serve(args: argparse.Namespace, venv: Path) -> int:
    gunicornproc.exit_on_signals()
    with tempfile.TemporaryDirectory(prefix="cellgate-nova-api-") as tmp:
        work = Path(args.work_dir or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        neutron = None if args.neutron_url else serve_empty_neutron()
        neutron_url = args.neutron_url or f"http://127.0.0.1:{_port(neutron)}"
        nova = NovaApi(venv, work, args.port, args.workers)
        nova.configure(args.api_db, args.database, neutron_url, args.policy_file)
        proc = nova.serve()
        try:
            info = {"url": nova.url, "neutron_url": neutron_url, "workers": args.workers}
            print(json.dumps({**info, "work_dir": str(work)}), flush=True)
            while proc.poll() is None:
                time.sleep(0.2)
            print(f"nova-api: gunicorn exited with {proc.returncode}", file=sys.stderr)
            return 1
        finally:
            stop(proc)
            if neutron is not None:
                neutron.shutdown()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="build the venv and exit")
    serve = commands.add_parser("serve", help="serve until killed")
    serve.add_argument("--api-db", required=True, help="the API database (nova_api)")
    serve.add_argument("--database", required=True, help="a database with Nova's cell tables")
    serve.add_argument("--port", type=int, default=18774)
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--neutron-url", help="a real Neutron (default: an empty one)")
    serve.add_argument("--policy-file", type=Path, help="[oslo_policy] policy_file")
    serve.add_argument("--work-dir", help="keep state here (default: a temporary directory)")
    args = parser.parse_args(argv)
    return gunicornproc.install_then_serve(
        "nova-api", args.command, lambda: install(os.environ), lambda venv: _serve(args, venv)
    )


if __name__ == "__main__":
    sys.exit(main())
