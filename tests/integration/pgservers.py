"""Private PostgreSQL servers for the integration tests, and a TCP delay proxy.

:class:`PgServers` is a thin helper over ``scripts/pgserver.py`` (the one way the project
starts PostgreSQL): ``n`` servers under a temporary root, on free loopback ports, each a copy
of one ``initdb`` template with the tests' settings (no durability, small memory). Each
:class:`PgServer` can be stopped (``stop("immediate")``: a crash, as far as clients can tell),
started again, frozen (``SIGSTOP`` to the postmaster and every descendant: a hung host) and
thawed (``SIGCONT``). :meth:`PgServers.close` thaws, stops (immediate) and deletes
everything; it is safe to call twice and after a partial start.

:class:`DelayProxy` is ``scripts/delayproxy.py``'s proxy (the one ``scripts/devstack`` runs
in front of every cell), re-exported: started with ``DelayProxy(host, port).start()`` it runs
its own event loop in a thread, so it keeps forwarding while the test's loop is busy; it
sleeps ``delay_s`` before forwarding each client→server chunk.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

_SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(_SCRIPTS) not in sys.path:
    sys.path.append(str(_SCRIPTS))

# scripts/ is not a package
from delayproxy import DelayProxy  # noqa: E402
from pgserver import PG_USER, PgError, PgServer, Template, find_bindir, own_dir  # noqa: E402
from serverproc import free_port  # noqa: E402

__all__ = ["DelayProxy", "PgServer", "PgServers", "find_pg_bindir", "pg_unavailable_reason"]

# A throwaway server: durability off, small memory.
SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "32MB",
    "max_connections": "60",
}


def find_pg_bindir() -> Path | None:
    """PostgreSQL's server binaries (:func:`pgserver.find_bindir`), or None."""
    try:
        return find_bindir()
    except PgError:
        return None


def pg_unavailable_reason() -> str | None:
    """Why private PostgreSQL servers cannot be started here, or ``None`` when they can."""
    if find_pg_bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found"
    if shutil.which("runuser") is None:
        return "runuser not found"
    try:
        import pwd

        pwd.getpwnam(PG_USER)
    except KeyError:
        return f"no {PG_USER!r} system user"
    if os.geteuid() != 0:
        return "starting servers as the postgres user needs root (runuser)"
    return None


@dataclass
class PgServers:
    """``n`` private servers (data directories ``pg1..pgN``) under one temporary root."""

    n: int
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cellgate-pg-")))
    servers: list[PgServer] = field(default_factory=list)

    def start(self) -> list[PgServer]:
        bindir = find_bindir()
        own_dir(self.root)  # the postgres user writes the data directories here
        template = Template(self.root / "template", SETTINGS, bindir)
        for i in range(1, self.n + 1):
            server = PgServer(
                datadir=self.root / f"pg{i}",
                port=free_port(),
                sockdir=own_dir(self.root / f"sock{i}"),
                logfile=self.root / f"pg{i}.log",
                bindir=bindir,
            )
            template.copy_to(server.datadir)
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

    def __enter__(self) -> PgServers:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
