#!/usr/bin/env python3
"""The real neutron-server API (PyPI's ``neutron``, the release of ``locks/neutron.in``) on
loopback, for the ``security_groups`` tests and by hand.

    scripts/neutron_api install
    scripts/neutron_api serve --database URL [--port 19696] [--workers 1] [--work-dir DIR]

``install`` builds the venv (every requirement of ``locks/neutron.in``, pinned by
``locks/neutron.txt``; rebuilt when either changes) and exits. ``serve`` does that if
needed, then in a work directory (a temporary one unless ``--work-dir``):

- writes ``neutron.conf``: the ML2 core plugin with no mechanism driver and no agent (ports,
  networks and security groups are rows: nothing is wired), tenant networks of type
  ``vxlan``, no service plugins, ``auth_strategy = noauth`` (the caller is an admin; a
  resource's project is the ``project_id`` of its body), no Nova notifications, a fake RPC
  transport;
- creates or upgrades the schema of ``--database`` (``neutron-db-manage upgrade heads``:
  a ``mysql+pymysql://`` URL of an existing database, empty or Neutron's: Neutron 29's
  migrations are MySQL's only, PostgreSQL fails at ``ALTER TABLE ... CONVERT TO CHARACTER
  SET``);
- serves ``neutron.wsgi.api:application`` with gunicorn (``gunicorn.conf.py`` holds
  everything: oslo.config parses the server's ``sys.argv``).

When Neutron answers, one JSON line goes to stdout (``url``, ``work_dir``, ``pid``: the
gunicorn master's, whose process group a test may SIGSTOP); it serves until SIGTERM or
SIGINT. Logs stay in the work directory (``neutron.log``, ``gunicorn.log``).

Environment: ``CELLGATE_NEUTRON_VENV`` (default ``${XDG_CACHE_HOME:-$HOME/.cache}/cellgate/
neutron-venv``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import gunicornproc
from venvs import LOCKS, ensure_venv, requirements, venv_dir

__all__ = ["NeutronApi", "main", "packages", "venv_path"]

REQUIREMENTS = LOCKS / "neutron.in"
LOCK = LOCKS / "neutron.txt"
READY_TIMEOUT_S = 120.0


def venv_path(env: Mapping[str, str]) -> Path:
    """Where the Neutron venv lives (see the module docstring)."""
    return venv_dir(env, "CELLGATE_NEUTRON_VENV", "neutron-venv")


def packages() -> list[str]:
    """The requirements of ``locks/neutron.in`` (comments dropped)."""
    return requirements(REQUIREMENTS)


def install(env: Mapping[str, str]) -> Path:
    """The venv (built or rebuilt when the requirements or the lock changed)."""
    venv = venv_path(env)
    ensure_venv(venv, packages(), constraints=LOCK, label="neutron-api")
    return venv


def _neutron_conf(work: Path, venv: Path, database: str) -> str:
    return f"""[DEFAULT]
host = cellgate-neutron-api
core_plugin = ml2
service_plugins =
auth_strategy = noauth
api_paste_config = {venv / "etc" / "neutron" / "api-paste.ini"}
transport_url = fake://
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
log_file = {work / "neutron.log"}
use_stderr = false
[database]
connection = {database}
[ml2]
type_drivers = vxlan
tenant_network_types = vxlan
mechanism_drivers =
extension_drivers = port_security
[ml2_type_vxlan]
vni_ranges = 1:10000
[oslo_concurrency]
lock_path = {work}
[agent]
report_interval = 0
"""


def _gunicorn_conf(work: Path, port: int, workers: int) -> str:
    return f"""bind = "127.0.0.1:{port}"
workers = {workers}
threads = 4
timeout = 120
wsgi_app = "neutron.wsgi.api:application"
errorlog = "{work / "gunicorn.log"}"
raw_env = ["OS_NEUTRON_CONFIG_DIR={work}", "OS_NEUTRON_CONFIG_FILES=neutron.conf"]
"""


@dataclass(frozen=True)
class NeutronApi:
    """A configured work directory and the venv that serves it."""

    venv: Path
    work: Path
    port: int
    workers: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def configure(self, database: str) -> None:
        """Write the configuration and bring the database's schema to Neutron's heads."""
        conf = self.work / "neutron.conf"
        conf.write_text(_neutron_conf(self.work, self.venv, database))
        (self.work / "gunicorn.conf.py").write_text(
            _gunicorn_conf(self.work, self.port, self.workers)
        )
        manage = [str(self.venv / "bin" / "neutron-db-manage"), "--config-file", str(conf)]
        with open(self.work / "db-manage.log", "ab") as log:
            done = subprocess.run([*manage, "upgrade", "heads"], stdout=log, stderr=log)
        if done.returncode != 0:
            raise RuntimeError(f"neutron-db-manage failed; see {self.work / 'db-manage.log'}")

    def serve(self) -> subprocess.Popen[bytes]:
        """gunicorn in its own session (its workers die with it); wait until it answers."""
        return gunicornproc.serve(
            self.venv, self.work, f"{self.url}/v2.0/networks", "neutron", READY_TIMEOUT_S
        )


stop = gunicornproc.stop


def _serve(args: argparse.Namespace, venv: Path) -> int:
    gunicornproc.exit_on_signals()
    with tempfile.TemporaryDirectory(prefix="cellgate-neutron-api-") as tmp:
        work = Path(args.work_dir or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        neutron = NeutronApi(venv, work, args.port, args.workers)
        neutron.configure(args.database)
        proc = neutron.serve()
        try:
            info = {"url": neutron.url, "work_dir": str(work), "pid": proc.pid}
            print(json.dumps(info), flush=True)
            while proc.poll() is None:
                time.sleep(0.2)
            print(f"neutron-api: gunicorn exited with {proc.returncode}", file=sys.stderr)
            return 1
        finally:
            stop(proc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="build the venv and exit")
    serve = commands.add_parser("serve", help="serve until killed")
    serve.add_argument("--database", required=True, help="Neutron's database (created schema)")
    serve.add_argument("--port", type=int, default=19696)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--work-dir", help="keep state here (default: a temporary directory)")
    args = parser.parse_args(argv)
    return gunicornproc.install_then_serve(
        "neutron-api", args.command, lambda: install(os.environ), lambda venv: _serve(args, venv)
    )


if __name__ == "__main__":
    sys.exit(main())
