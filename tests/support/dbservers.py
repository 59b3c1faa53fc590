"""Private database servers for the integration tests: PostgreSQL and MariaDB, over
``scripts/pgserver.py`` and ``scripts/mariadbserver.py`` (the one way the project starts
them), and a TCP delay proxy.

:class:`PgServers` and :class:`MariaDBServers` start ``n`` servers under a temporary root,
on free loopback ports, each a copy of one template data directory (``initdb`` with the
tests' settings: no durability, small memory; ``mariadb-install-db``). Each server can be
stopped (``stop("immediate")``: a crash, as far as clients can tell), started again on the
same data directory, frozen (``SIGSTOP`` to the main process and every descendant: a hung
host) and thawed (``SIGCONT``). ``close()`` thaws, stops (immediate) and deletes
everything; it is safe to call twice and after a partial start.

:func:`require_pg` and :func:`require_mariadb` skip a test where servers cannot be started,
and fail it under ``CI=true`` (CI must run it).

:class:`DelayProxy` is ``scripts/tcpproxy.py``'s proxy (the one ``scripts/devstack`` runs
in front of every cell), re-exported: started with ``DelayProxy(host, port).start()`` it runs
its own event loop in a thread, so it keeps forwarding while the test's loop is busy; it
sleeps ``delay_s`` before forwarding each client→server chunk.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Self, TypeVar

import mariadbserver
import pgserver
import pytest
from mariadbserver import MariaDBServer
from mariadbwire import greeting
from pgserver import PgServer
from servercli import PrivateServer
from serverproc import free_port
from tcpproxy import DelayProxy

__all__ = [
    "DelayProxy",
    "MariaDBServer",
    "MariaDBServers",
    "PgServer",
    "PgServers",
    "find_pg_bindir",
    "greeting",
    "mariadb_unavailable_reason",
    "pg_unavailable_reason",
    "query",
    "require_mariadb",
    "require_pg",
]

# A throwaway PostgreSQL server: durability off, small memory.
PG_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "60",
}

S = TypeVar("S", bound=PrivateServer)


def _system_user(name: str) -> str | None:
    """Why ``runuser -u name`` cannot work here, or None."""
    if shutil.which("runuser") is None:
        return "runuser not found"
    try:
        pwd.getpwnam(name)
    except KeyError:
        return f"no {name!r} system user"
    return None


def find_pg_bindir() -> Path | None:
    """PostgreSQL's server binaries (:func:`pgserver.find_bindir`), or None."""
    try:
        return pgserver.find_bindir()
    except pgserver.PgError:
        return None


def pg_unavailable_reason() -> str | None:
    """Why private PostgreSQL servers cannot be started here, or ``None`` when they can."""
    if find_pg_bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found"
    if (reason := _system_user(pgserver.PG_USER)) is not None:
        return reason
    if os.geteuid() != 0:
        return "starting servers as the postgres user needs root (runuser)"
    return None


def mariadb_unavailable_reason() -> str | None:
    """Why private MariaDB servers cannot be started here, or ``None`` when they can."""
    try:
        mariadbserver.find_binaries()
    except mariadbserver.MariaDBError as exc:
        return str(exc)
    if shutil.which("setsid") is None:
        return "setsid not found"
    if os.geteuid() == 0:
        return _system_user(mariadbserver.MARIADB_USER)
    return None


def _require(reason: str | None, what: str) -> None:
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} servers are required under CI=true: {reason}")
    pytest.skip(reason)


def require_pg() -> None:
    """Skip (fail under ``CI=true``) unless private PostgreSQL servers can be started."""
    _require(pg_unavailable_reason(), "PostgreSQL")


def require_mariadb() -> None:
    """Skip (fail under ``CI=true``) unless private MariaDB servers can be started."""
    _require(mariadb_unavailable_reason(), "MariaDB")


def query(
    port: int, sql: str, *, database: str = "", timeout_s: float = 10.0
) -> subprocess.CompletedProcess[str]:
    """``sql`` through the ``mariadb`` client to 127.0.0.1:``port`` as root (tab-separated,
    no headers), connecting within ``timeout_s``. Never raises on a failed connection."""
    return subprocess.run(
        [str(mariadbserver.find_binaries().client), "--no-defaults", "-h", "127.0.0.1",
         "-P", str(port), "-uroot", f"--connect-timeout={max(1, round(timeout_s))}", "-N",
         "-B", "-e", sql, *([database] if database else [])],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s + 10,
        check=False,
    )  # fmt: skip


@dataclass
class _Servers(Generic[S]):
    """``n`` private servers under one temporary root (see the module's docstring)."""

    n: int
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cellgate-db-")))
    servers: list[S] = field(default_factory=list)

    def _make(self) -> list[S]:
        """The servers, their data directories copied from the template (not started)."""
        raise NotImplementedError

    def start(self) -> list[S]:
        for server in self._make():
            self.servers.append(server)
            server.start()
        return self.servers

    def close(self) -> None:
        """Thaw, stop and delete every server (errors are collected, not raised early)."""
        errors: list[str] = []
        for server in self.servers:
            try:
                server.stop("immediate")  # thaws a frozen server first
            except Exception as exc:  # keep tearing the others down
                errors.append(f"{server.datadir.name}: {exc}")
        self.servers.clear()
        shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise RuntimeError("; ".join(errors))

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class PgServers(_Servers[PgServer]):
    """Data directories ``pg1..pgN``, each with its own socket directory."""

    def _make(self) -> list[PgServer]:
        bindir = pgserver.find_bindir()
        pgserver.own_dir(self.root)  # the postgres user writes the data directories here
        template = pgserver.Template(self.root / "template", PG_SETTINGS, bindir)
        made = []
        for i in range(1, self.n + 1):
            server = PgServer(
                datadir=self.root / f"pg{i}",
                port=free_port(),
                sockdir=pgserver.own_dir(self.root / f"sock{i}"),
                logfile=self.root / f"pg{i}.log",
                bindir=bindir,
            )
            template.copy_to(server.datadir)
            made.append(server)
        return made


@dataclass
class MariaDBServers(_Servers[MariaDBServer]):
    """Data directories ``db1..dbN``, ``options`` on top of the servers' defaults."""

    options: Mapping[str, str] = field(default_factory=dict)

    def _make(self) -> list[MariaDBServer]:
        binaries = mariadbserver.find_binaries()
        mariadbserver.own_dir(self.root)  # the mysql user writes data, sockets, pids, logs
        template = mariadbserver.Template(self.root / "template", binaries=binaries)
        made = []
        for i in range(1, self.n + 1):
            server = MariaDBServer(
                datadir=self.root / f"db{i}",
                port=free_port(),
                sockdir=self.root,
                logfile=self.root / f"db{i}.log",
                options=self.options,
                binaries=binaries,
            )
            template.copy_to(server.datadir)
            made.append(server)
        return made
