#!/usr/bin/env python3
"""Private MariaDB servers: the one way cellgate starts, stops, freezes and thaws them.

``scripts/devstack --backend mariadb``, ``scripts/outage`` and the integration tests use
this module (stdlib only; what it shares with ``scripts/pgserver.py`` is in
``scripts/serverproc.py``). As root, ``mariadb-install-db`` runs as the ``mysql`` user
(``runuser``) and ``mariadbd`` gets ``--user=mysql`` (it drops root itself: a ``runuser``
parent would stop itself when its frozen child stops, and stay stopped).

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
from serverproc import FreezeRecord, ServerError, alive, cmdline, kill_and_wait

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
class MariaDBServer:
    """One private server: ``datadir`` served on 127.0.0.1:``port`` and on a socket in
    ``sockdir``, logging to ``logfile``, with :data:`DEFAULTS` and ``options`` on top."""

    datadir: Path
    port: int
    sockdir: Path
    logfile: Path
    options: Mapping[str, str] = field(default_factory=dict)
    binaries: Binaries = field(default_factory=find_binaries)

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

    @property
    def frozen_file(self) -> Path:
        return self.datadir.with_name(self.datadir.name + ".frozen")

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

    @property
    def running(self) -> bool:
        return self.pid is not None

    @property
    def frozen_pids(self) -> list[int]:
        return FreezeRecord(self.frozen_file).pids

    @property
    def frozen(self) -> bool:
        return FreezeRecord(self.frozen_file).frozen

    def start(self, timeout_s: float = TIMEOUT_S) -> bool:
        """Start ``mariadbd`` detached and wait until it greets; False when it already runs
        on :attr:`port` (MariaDBError on another port)."""
        if (running_port := self.running_port) is not None:
            if running_port != self.port:
                raise MariaDBError(f"{self.datadir} already runs on port {running_port}")
            return False
        if not 0 < self.port < 65536:
            raise MariaDBError(f"port {self.port} out of range")
        if len(os.fsencode(self.socket)) > MAX_SOCKET_PATH:
            raise MariaDBError(f"socket path too long (max {MAX_SOCKET_PATH}): {self.socket}")
        self.thaw()  # pids recorded by a freeze that outlived its server
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

    def freeze(self) -> list[int]:
        """SIGSTOP the server (one process: every thread stops); the stopped pids."""
        if self.frozen:
            return self.frozen_pids
        pid = self.pid
        if pid is None:
            raise MariaDBError(f"{self.datadir} is not running")
        return FreezeRecord(self.frozen_file).freeze(pid)

    def thaw(self) -> bool:
        """SIGCONT what :meth:`freeze` stopped; False when nothing was frozen."""
        return FreezeRecord(self.frozen_file).thaw()

    def restore(self) -> None:
        """Back to normal whatever happened: thawed and running."""
        self.thaw()
        self.start()

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


def _status_line(server: MariaDBServer) -> str:
    pid = server.pid
    if pid is None:
        return "stopped - - -"
    frozen = ",".join(str(p) for p in server.frozen_pids)
    return f"{'frozen' if frozen else 'running'} {server.running_port} {pid} {frozen or '-'}"


def _setting(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not OPTION_NAME.match(name):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _parser() -> argparse.ArgumentParser:
    binaries = argparse.ArgumentParser(add_help=False)
    binaries.add_argument("--bindir", type=Path, help="MariaDB binaries (default: found)")
    settings = argparse.ArgumentParser(add_help=False)
    settings.add_argument("-c", dest="settings", type=_setting, action="append", default=[],
                          metavar="NAME=VALUE", help="a server option (repeatable)")  # fmt: skip
    parser = argparse.ArgumentParser(
        prog="mariadbserver.py", description=(__doc__ or "").split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("bindir", parents=[binaries], help="print mariadbd's directory")
    template = commands.add_parser("template", parents=[binaries, settings], help="install once")
    template.add_argument("template", type=Path)
    template.add_argument("datadirs", type=Path, nargs="*", help="copies to make if missing")
    for name in ("start", "stop", "status", "freeze", "thaw"):
        server = commands.add_parser(name, parents=[binaries, settings])
        server.add_argument("datadir", type=Path)
        server.add_argument("--port", type=int, default=0, help="required by start")
        server.add_argument("--sockdir", type=Path, help="default: beside the data directory")
        server.add_argument("--log", type=Path, help="default: DATADIR.log")
        server.add_argument("--mode", choices=get_args(StopMode), default="fast")
        server.add_argument("--database", dest="databases", action="append", default=[],
                            metavar="NAME", help="start: create it if missing")  # fmt: skip
    return parser


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    given = {"CELLGATE_MARIADB_BIN": str(args.bindir)} if args.bindir else None
    binaries = find_binaries(given)
    if args.command == "bindir":
        print(binaries.server.parent)
        return 0
    settings = dict(args.settings)
    if args.command == "template":
        template = Template(args.template, settings, binaries)
        template.ensure()
        for copy in args.datadirs:
            if template.copy_to(copy):
                print(copy)
        return 0
    datadir: Path = args.datadir
    if args.command == "start" and not args.port:
        parser.error("start needs --port")
    server = MariaDBServer(
        datadir,
        args.port,
        args.sockdir or datadir.parent,
        args.log or datadir.with_name(datadir.name + ".log"),
        settings,
        binaries,
    )
    match args.command:
        case "start":
            done = server.start()
            server.create_databases(args.databases)
        case "stop":
            done = server.stop(args.mode)
        case "freeze":
            done = not server.frozen
            server.freeze()
        case "thaw":
            done = server.thaw()
        case _:
            done = server.running
    if args.command in ("start", "status", "freeze"):
        print(_status_line(server))
    return 0 if done else 3


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    try:
        return _run(parser, parser.parse_args(argv))
    except (ServerError, OSError, ValueError) as exc:
        print(f"mariadbserver: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
