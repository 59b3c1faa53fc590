"""Private MariaDB servers for the integration tests, over ``scripts/mariadbserver.py`` (the one
way the project starts MariaDB).

:class:`MariaDBServers` starts ``n`` servers under a temporary root on free loopback ports,
each a copy of one ``mariadb-install-db`` template; each can be stopped (``stop
("immediate")``: SIGKILL, a crash as far as clients can tell), started again on the same
data directory, frozen (SIGSTOP: a hung host) and thawed. :meth:`MariaDBServers.close`
thaws, kills and deletes everything; it is safe to call twice and after a partial start.

:func:`require_mariadb` skips a test where servers cannot be started, and fails it under
``CI=true`` (CI must run it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

_SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(_SCRIPTS) not in sys.path:
    sys.path.append(str(_SCRIPTS))

# scripts/ is not a package
from mariadbserver import (  # noqa: E402
    MARIADB_USER,
    Binaries,
    MariaDBError,
    MariaDBServer,
    Template,
    find_binaries,
    own_dir,
)
from mariadbwire import greeting  # noqa: E402
from serverproc import free_port  # noqa: E402

__all__ = [
    "MariaDBServer",
    "MariaDBServers",
    "greeting",
    "mariadb_unavailable_reason",
    "query",
    "require_mariadb",
]


def mariadb_unavailable_reason() -> str | None:
    """Why private MariaDB servers cannot be started here, or ``None`` when they can."""
    try:
        find_binaries()
    except MariaDBError as exc:
        return str(exc)
    if shutil.which("setsid") is None:
        return "setsid not found"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "runuser not found"
        try:
            import pwd

            pwd.getpwnam(MARIADB_USER)
        except KeyError:
            return f"no {MARIADB_USER!r} system user"
    return None


def require_mariadb() -> None:
    """Skip (fail under ``CI=true``) unless private MariaDB servers can be started."""
    reason = mariadb_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"MariaDB servers are required under CI=true: {reason}")
    pytest.skip(reason)


def query(
    port: int, sql: str, *, database: str = "", timeout_s: float = 10.0
) -> subprocess.CompletedProcess[str]:
    """``sql`` through the ``mariadb`` client to 127.0.0.1:``port`` as root (tab-separated,
    no headers), connecting within ``timeout_s``. Never raises on a failed connection."""
    return subprocess.run(
        [str(find_binaries().client), "--no-defaults", "-h", "127.0.0.1", "-P", str(port),
         "-uroot", f"--connect-timeout={max(1, round(timeout_s))}", "-N", "-B", "-e", sql,
         *([database] if database else [])],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s + 10,
        check=False,
    )  # fmt: skip


@dataclass
class MariaDBServers:
    """``n`` private servers (data directories ``db1..dbN``) under one temporary root."""

    n: int
    options: Mapping[str, str] = field(default_factory=dict)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cellgate-mdb-")))
    servers: list[MariaDBServer] = field(default_factory=list)

    def start(self) -> list[MariaDBServer]:
        binaries: Binaries = find_binaries()
        own_dir(self.root)  # the mysql user writes data, sockets, pid files and logs here
        template = Template(self.root / "template", binaries=binaries)
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
            self.servers.append(server)
            server.start()
        return self.servers

    def close(self) -> None:
        """Thaw, kill and delete every server (errors are collected, not raised early)."""
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

    def __enter__(self) -> MariaDBServers:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
