#!/usr/bin/env python3
"""Private MariaDB servers: the one way cellgate starts, stops, freezes and thaws them.

``scripts/devstack --backend mariadb``, ``scripts/outage`` and the integration tests use
this module (stdlib only; what it shares with ``scripts/pgserver.py`` is in
``scripts/serverproc.py`` and ``scripts/servercli.py``). As root, ``mariadb-install-db``
runs as the ``mysql`` user (``runuser``) and ``mariadbd`` gets ``--user=mysql`` (it drops
root itself: a ``runuser`` parent would stop itself when its frozen child stops, and stay
stopped).

- ``scripts/mariadbinstall.py`` (re-exported here): the binaries, the options
  (:data:`DEFAULTS`) and the :class:`Template` data directory every server copies.
- :class:`MariaDBServer`: ``mariadbd --no-defaults`` on 127.0.0.1:PORT only, its socket in
  a socket directory, its pid file ``DATADIR.pid``, its error log; kolla's server defaults
  (``utf8mb3``, ``utf8mb3_general_ci``) and a small throwaway configuration
  (:data:`DEFAULTS`), ``-c NAME=VALUE`` on top. Ready once its port sends the handshake
  greeting. Stop (``fast``: SIGTERM, a clean shutdown; ``immediate``: SIGKILL, a crash),
  freeze (SIGSTOP: a hung host) and thaw (SIGCONT), the frozen pids in ``DATADIR.frozen``.

Command line (exit status 0: done; 3: nothing to do, or stopped; 1: error; 2: usage)::

    mariadbserver.py bindir
    mariadbserver.py template TEMPLATE [DATADIR ...] [-c NAME=VALUE ...]  (prints the copies)
    mariadbserver.py start|stop|status|freeze|thaw DATADIR [--port P] [--sockdir DIR]
        [--log FILE] [-c NAME=VALUE ...] [--mode fast|immediate] [--database NAME ...]
        [--bindir DIR]

``start``, ``status`` and ``freeze`` print ``STATE PORT PID FROZEN_PIDS`` as pgserver.py
does. ``start --database NAME`` also creates each database that is missing, in the server's
default character set and collation (as kolla creates Nova's), running or not before.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

from mariadbinstall import (
    DEFAULTS,
    MARIADB_USER,
    OPTION_NAME,
    Binaries,
    MariaDBError,
    Template,
    find_binaries,
    option_words,
    own_dir,
)
from mariadbwire import GreetingError, greeting
from servercli import PrivateServer, ServerCli
from serverproc import alive, cmdline, kill_and_wait

__all__ = [
    "DEFAULTS",
    "MARIADB_USER",
    "Binaries",
    "MariaDBError",
    "MariaDBServer",
    "StopMode",
    "Template",
    "find_binaries",
    "option_words",
    "own_dir",
]

TIMEOUT_S = 60.0
# A Unix socket's path holds at most 107 bytes.
MAX_SOCKET_PATH = 107
StopMode = Literal["fast", "immediate"]
_DATABASE_NAME = re.compile(r"[A-Za-z0-9_]{1,64}\Z")


@dataclass(frozen=True)
class MariaDBServer(PrivateServer):
    """One private server: ``datadir`` served on 127.0.0.1:``port`` and on a socket in
    ``sockdir``, logging to ``logfile``, with :data:`DEFAULTS` and ``options`` on top."""

    datadir: Path
    port: int
    sockdir: Path
    logfile: Path
    options: Mapping[str, str] = field(default_factory=dict)
    binaries: Binaries = field(default_factory=find_binaries)
    error = MariaDBError

    def __post_init__(self) -> None:
        # The pid is told apart by its --datadir: one spelling everywhere.
        for name in ("datadir", "sockdir", "logfile"):
            object.__setattr__(self, name, Path(os.path.abspath(getattr(self, name))))

    @property
    def url(self) -> str:
        """The server's URL without a database (root, no password)."""
        return f"mysql+pymysql://root@127.0.0.1:{self.port}"

    def database_url(self, database: str) -> str:
        return f"{self.url}/{database}"

    @property
    def socket(self) -> Path:
        return self.sockdir / f"{self.datadir.name}.sock"

    @property
    def pid_file(self) -> Path:
        return self.datadir.with_name(self.datadir.name + ".pid")

    def argv(self, *, euid: int | None = None) -> list[str]:
        """The server's command line (``--user`` only as root)."""
        root = (os.geteuid() if euid is None else euid) == 0
        return [
            str(self.binaries.server),
            "--no-defaults",  # must come first
            *([f"--user={MARIADB_USER}"] if root else []),
            f"--datadir={self.datadir}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.socket}",
            f"--pid-file={self.pid_file}",
            f"--log-error={self.logfile}",
            "--skip-name-resolve",
            *option_words({**DEFAULTS, **self.options}),
        ]

    def _owns(self, pid: int) -> bool:
        return f"--datadir={self.datadir}" in cmdline(pid)

    @property
    def pid(self) -> int | None:
        """The live server's pid (also while frozen), else None."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if alive(pid) and self._owns(pid) else None

    @property
    def running_port(self) -> int | None:
        """The port the live server listens on (maybe not :attr:`port`), else None."""
        pid = self.pid
        if pid is None:
            return None
        ports = [w.removeprefix("--port=") for w in cmdline(pid) if w.startswith("--port=")]
        return int(ports[-1]) if ports else None

    def start(self, timeout_s: float = TIMEOUT_S) -> bool:
        """Start ``mariadbd`` detached and wait until it greets; False when it already runs
        on :attr:`port` (MariaDBError on another port)."""
        if len(os.fsencode(self.socket)) > MAX_SOCKET_PATH:
            raise MariaDBError(f"socket path too long (max {MAX_SOCKET_PATH}): {self.socket}")
        if not self.needs_start():
            return False
        offset = self.logfile.stat().st_size if self.logfile.exists() else 0
        # setsid -f: the server is nobody's child here (no zombie, no Popen to reap).
        done = subprocess.run(
            ["setsid", "-f", *self.argv()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=30,
            check=False,
        )
        if done.returncode != 0:
            raise MariaDBError(f"setsid -f {self.binaries.server} failed ({done.returncode})")
        self._wait_ready(time.monotonic() + timeout_s, offset)
        return True

    def _wait_ready(self, deadline: float, log_offset: int) -> None:
        while True:
            if self.pid is not None:
                try:
                    greeting(self.port, timeout_s=1.0)
                    return
                except (OSError, GreetingError):
                    pass
            log = self._log_since(log_offset)
            if "Aborting" in log or time.monotonic() > deadline:
                raise MariaDBError(f"{self.datadir} did not start\n{self.logfile}:\n{log}")
            time.sleep(0.05)

    def _log_since(self, offset: int, lines: int = 20) -> str:
        try:
            with self.logfile.open("rb") as log:
                log.seek(offset)
                text = log.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, mode: StopMode = "fast", timeout_s: float = TIMEOUT_S) -> bool:
        """``fast``: SIGTERM, a clean shutdown; ``immediate``: SIGKILL (crash recovery at
        the next start). A frozen server is thawed first. False when it was not running."""
        self.thaw()
        pid = self.pid
        if pid is None:
            return False
        if mode == "immediate":
            kill_and_wait(pid, signal.SIGKILL, timeout_s)
            self.pid_file.unlink(missing_ok=True)
        else:
            kill_and_wait(pid, signal.SIGTERM, timeout_s)
        return True

    def create_databases(self, names: Sequence[str], timeout_s: float = 30.0) -> None:
        """``CREATE DATABASE IF NOT EXISTS`` each name, in the server's defaults."""
        for name in names:
            if not _DATABASE_NAME.match(name):
                raise MariaDBError(f"not a database name cellgate creates: {name!r}")
        if not names:
            return
        sql = "".join(f"CREATE DATABASE IF NOT EXISTS `{name}`;" for name in names)
        try:
            subprocess.run(
                [self.binaries.client, "--no-defaults", f"--socket={self.socket}", "-uroot",
                 "--connect-timeout=10", "-e", sql],
                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s,
                check=True,
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise MariaDBError(f"{sql}: {(exc.stdout + exc.stderr).strip()}") from exc
        except subprocess.TimeoutExpired as exc:
            raise MariaDBError(f"{sql}: no answer within {timeout_s:g} s") from exc


def _database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", dest="databases", action="append", default=[],
                        metavar="NAME", help="start: create it if missing")  # fmt: skip


def _create_databases(server: MariaDBServer, args: argparse.Namespace) -> None:
    server.create_databases(args.databases)


CLI = ServerCli(
    prog="mariadbserver.py",
    doc=__doc__ or "",
    bin_env="CELLGATE_MARIADB_BIN",
    find=find_binaries,
    bindir_of=lambda binaries: binaries.server.parent,
    template=Template,
    server=MariaDBServer,
    setting_name=OPTION_NAME,
    stop_modes=get_args(StopMode),
    helps={
        "binaries": "MariaDB binaries (default: found)",
        "bindir": "print mariadbd's directory",
        "template": "install once",
        "setting": "a server option (repeatable)",
    },
    server_arguments=_database_argument,
    after_start=_create_databases,
)


def main(argv: list[str] | None = None) -> int:
    return CLI.main(argv)


if __name__ == "__main__":
    sys.exit(main())
