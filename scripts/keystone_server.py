#!/usr/bin/env python3
"""A real Keystone (PyPI's ``keystone``) on loopback, for development and tests.

    scripts/keystone install
    scripts/keystone serve http://127.0.0.1:8774/v2.1 [--port 35357] [--password PW]
                           [--work-dir DIR]

``install`` creates the venv (:data:`PACKAGES`, pinned) and exits; ``serve`` does that if
needed, then writes a ``keystone.conf`` (SQLite, fernet tokens) in a work directory (a
temporary one, removed at exit, unless ``--work-dir``), runs ``keystone-manage db_sync``,
``fernet_setup``, ``credential_setup`` and ``bootstrap``, and serves Keystone's WSGI app
with gunicorn on ``127.0.0.1:PORT`` until SIGTERM or SIGINT. Once serving it creates:

- the ``admin`` user in the ``admin`` project (``bootstrap``), and the identity endpoint
  ``http://127.0.0.1:PORT/v3`` (public, internal, admin) in region ``RegionOne``;
- a ``service`` project and a ``nova`` user holding the ``admin`` and ``service`` roles on
  it (the user a gateway validates tokens with);
- a ``demo`` project and a ``demo`` user with the ``member`` role on it;
- a ``compute`` service (``nova``) whose public endpoint is COMPUTE_URL.

All three users have the password ``--password`` (default ``cellgate-dev``). When
everything is up, one JSON line goes to stdout: ``auth_url``, ``region``, ``password``,
``projects`` and ``users`` (name → id), ``work_dir``. Logs stay in the work directory
(``keystone.log``, ``gunicorn.log``, ``manage.log``).

An outage on demand: SIGUSR1 stops the server (connections are refused), SIGUSR2 starts
it again on the same state, so tokens issued before stay valid.

Environment: ``CELLGATE_KEYSTONE_VENV`` (default
``${XDG_CACHE_HOME:-$HOME/.cache}/cellgate/keystone-venv``), ``CELLGATE_KEYSTONE_PACKAGES``
(space-separated pip requirements replacing :data:`PACKAGES`, installed without the lock).
The venv is installed under ``locks/keystone.txt`` (``scripts/lock``); a venv whose
packages or lock differ from the wanted ones is rebuilt; concurrent runs wait for each
other's install.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import gunicornproc
from keystone_catalog import REGION, provision
from venvs import LOCKS, ensure_venv, venv_dir

__all__ = ["PACKAGES", "Keystone", "main", "venv_path"]

PACKAGES = ("keystone==30.0.0", "gunicorn==23.0.0")
"""What the venv is asked for (``locks/keystone.in`` asks them too; its lock pins the rest)."""
LOCK = LOCKS / "keystone.txt"
READY_TIMEOUT_S = 60.0


def venv_path(env: Mapping[str, str]) -> Path:
    """Where the Keystone venv lives (see the module docstring)."""
    return venv_dir(env, "CELLGATE_KEYSTONE_VENV", "keystone-venv")


def _keystone_conf(work: Path) -> str:
    keys = work / "fernet-keys"
    return f"""[DEFAULT]
log_file = {work / "keystone.log"}
use_stderr = false
[database]
connection = sqlite:///{work / "keystone.db"}
[token]
provider = fernet
[fernet_tokens]
key_repository = {keys}
[fernet_receipts]
key_repository = {keys}
[credential]
key_repository = {work / "credential-keys"}
"""


def _gunicorn_conf(work: Path, port: int) -> str:
    # Everything in the file, nothing on the command line: Keystone's oslo.config parses
    # the server's sys.argv and rejects gunicorn's options.
    return f"""bind = "127.0.0.1:{port}"
workers = 1
threads = 8
wsgi_app = "keystone.wsgi.api:application"
errorlog = "{work / "gunicorn.log"}"
raw_env = ["OS_KEYSTONE_CONFIG_FILES={work / "keystone.conf"}"]
"""


@dataclass(frozen=True)
class Keystone:
    """A configured work directory and the venv that serves it."""

    venv: Path
    work: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v3"

    def configure(self) -> None:
        (self.work / "keystone.conf").write_text(_keystone_conf(self.work))
        (self.work / "gunicorn.conf.py").write_text(_gunicorn_conf(self.work, self.port))

    def _manage(self, *args: str) -> subprocess.Popen[bytes]:
        command = [str(self.venv / "bin" / "keystone-manage"), "--config-file"]
        with open(self.work / "manage.log", "ab") as log:
            return subprocess.Popen(
                [*command, str(self.work / "keystone.conf"), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait(self, *procs: subprocess.Popen[bytes]) -> None:
        for proc in procs:
            if proc.wait() != 0:
                tail = (self.work / "manage.log").read_text()[-2000:]
                raise RuntimeError(f"keystone-manage {proc.args!r} failed:\n{tail}")

    def bootstrap(self, password: str) -> None:
        """Schema, keys (in parallel: each command is mostly interpreter start-up), then
        the admin user, roles, region and identity endpoints."""
        owner = ["--keystone-user", pwd.getpwuid(os.getuid()).pw_name]
        owner += ["--keystone-group", grp.getgrgid(os.getgid()).gr_name]
        self._wait(
            self._manage("db_sync"),
            self._manage("fernet_setup", *owner),
            self._manage("credential_setup", *owner),
        )
        endpoints = [f"--bootstrap-{kind}-url={self.url}" for kind in ("admin", "internal")]
        self._wait(
            self._manage(
                "bootstrap",
                f"--bootstrap-password={password}",
                f"--bootstrap-public-url={self.url}",
                *endpoints,
                f"--bootstrap-region-id={REGION}",
            )
        )

    def serve(self) -> subprocess.Popen[bytes]:
        """gunicorn in its own session (its workers die with it); wait until it answers."""
        return gunicornproc.serve(self.venv, self.work, self.url, "Keystone", READY_TIMEOUT_S)


class _Outage:
    """SIGUSR1 asks for the server down, SIGUSR2 for it up again (see the docstring)."""

    def __init__(self) -> None:
        self.up = True
        signal.signal(signal.SIGUSR1, self._on_signal)
        signal.signal(signal.SIGUSR2, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.up = signum == signal.SIGUSR2


def _supervise(keystone: Keystone, proc: subprocess.Popen[bytes]) -> int:
    """Serve until a signal ends us or gunicorn dies; stop and restart it on request."""
    outage = _Outage()
    running: subprocess.Popen[bytes] | None = proc
    try:
        while True:
            if running is not None and running.poll() is not None:
                print(f"keystone: gunicorn exited with {running.returncode}", file=sys.stderr)
                return 1
            if running is not None and not outage.up:
                gunicornproc.stop(running)
                running = None
                print("keystone: stopped (SIGUSR1)", file=sys.stderr, flush=True)
            elif running is None and outage.up:
                running = keystone.serve()
                print("keystone: serving again (SIGUSR2)", file=sys.stderr, flush=True)
            time.sleep(0.1)
    finally:
        if running is not None:
            gunicornproc.stop(running)


def _serve(args: argparse.Namespace, venv: Path) -> int:
    # SIGTERM unwinds like SIGINT, so the finally clauses stop gunicorn and clean up.
    gunicornproc.exit_on_signals()
    with tempfile.TemporaryDirectory(prefix="cellgate-keystone-") as tmp:
        work = Path(args.work_dir or tmp).resolve()
        work.mkdir(parents=True, exist_ok=True)
        keystone = Keystone(venv, work, args.port)
        keystone.configure()
        keystone.bootstrap(args.password)
        proc = keystone.serve()
        try:
            created = provision(keystone.url, args.password, args.compute_url)
        except urllib.error.HTTPError as exc:
            gunicornproc.stop(proc)
            print(f"keystone: {exc.url}: {exc.code} {exc.read()[:500]!r}", file=sys.stderr)
            return 1
        except BaseException:
            gunicornproc.stop(proc)
            raise
        info = {"auth_url": keystone.url, "region": REGION, "password": args.password}
        print(json.dumps({**info, **created, "work_dir": str(work)}), flush=True)
        return _supervise(keystone, proc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="create the venv and exit")
    serve = commands.add_parser("serve", help="bootstrap and serve until killed")
    serve.add_argument("compute_url", help="the compute endpoint (cellgate's /v2.1 URL)")
    serve.add_argument("--port", type=int, default=35357)
    serve.add_argument("--password", default="cellgate-dev")
    serve.add_argument("--work-dir", help="keep state here (default: a temporary directory)")
    args = parser.parse_args(argv)
    override = os.environ.get("CELLGATE_KEYSTONE_PACKAGES", "").split()
    venv = venv_path(os.environ)

    def install() -> Path:
        if override:
            ensure_venv(venv, override, label="keystone")
        else:
            ensure_venv(venv, PACKAGES, constraints=LOCK, label="keystone")
        return venv

    return gunicornproc.install_then_serve(
        "keystone", args.command, install, lambda built: _serve(args, built)
    )


if __name__ == "__main__":
    sys.exit(main())
