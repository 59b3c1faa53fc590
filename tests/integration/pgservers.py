"""Real PostgreSQL servers for outage tests (one per cell), and a TCP delay proxy.

:class:`PgServers` runs ``initdb`` once (as the ``postgres`` user: PostgreSQL refuses to
run as root) into a template data directory, copies it for every server, and starts each
server with ``pg_ctl`` on a free loopback port and a private socket directory. Each
:class:`PgServer` can be stopped (``pg_ctl stop -m immediate``: a crash, as far as clients
can tell), started again, frozen (``SIGSTOP`` to the postmaster and every descendant: a hung
host) and thawed (``SIGCONT``). :meth:`PgServers.close` thaws, stops and deletes everything;
it is safe to call twice and after a partial start.

:class:`DelayProxy` is ``scripts/delayproxy.py``'s proxy (the one ``scripts/devstack`` runs
in front of every cell), re-exported: started with ``DelayProxy(host, port).start()`` it runs
its own event loop in a thread, so it keeps forwarding while the test's loop is busy; it
sleeps ``delay_s`` before forwarding each client→server chunk.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

_SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"
if str(_SCRIPTS) not in sys.path:
    sys.path.append(str(_SCRIPTS))

from delayproxy import DelayProxy  # noqa: E402 - scripts/ is not a package

__all__ = ["DelayProxy", "PgServer", "PgServers", "find_pg_bindir", "pg_unavailable_reason"]

_PG_USER = "postgres"
_SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off -c shared_buffers=32MB -c max_connections=60"
)


def find_pg_bindir() -> Path | None:
    """PostgreSQL's server binaries: ``pg_config --bindir``, else the newest
    ``/usr/lib/postgresql/*/bin`` holding ``initdb``."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
            )
            candidates.append(Path(out.stdout.strip()))

    def version(path: Path) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in path.parent.name.split("."))
        except ValueError:
            return (0,)

    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True))
    for bindir in candidates:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    return None


def pg_unavailable_reason() -> str | None:
    """Why private PostgreSQL servers cannot be started here, or ``None`` when they can."""
    if find_pg_bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) not found"
    if shutil.which("runuser") is None:
        return "runuser not found"
    try:
        import pwd

        pwd.getpwnam(_PG_USER)
    except KeyError:
        return f"no {_PG_USER!r} system user"
    if os.geteuid() != 0:
        return "starting servers as the postgres user needs root (runuser)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(*argv: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    command = ["runuser", "-u", _PG_USER, "--", *(str(a) for a in argv)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
    return done


def _chown_tree(path: Path) -> None:
    subprocess.run(["chown", "-R", f"{_PG_USER}:", str(path)], check=True, timeout=60)


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (``pgrep -P``, recursively), parents first."""
    done = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False, timeout=10
    )
    found: list[int] = []
    for line in done.stdout.split():
        child = int(line)
        found.append(child)
        found.extend(_children(child))
    return found


@dataclass
class PgServer:
    """One private PostgreSQL server."""

    name: str
    port: int
    datadir: Path
    sockdir: Path
    logfile: Path
    bindir: Path
    frozen: bool = False
    running: bool = False

    @property
    def url(self) -> str:
        """The server URL without a database (trust auth as ``postgres``)."""
        return f"postgresql://{_PG_USER}@127.0.0.1:{self.port}"

    def database_url(self, database: str) -> str:
        return f"{self.url}/{database}"

    def start(self) -> None:
        """``pg_ctl start`` and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.sockdir} {_SERVER_OPTIONS}"
        _as_postgres(
            self.bindir / "pg_ctl", "-D", self.datadir, "-l", self.logfile, "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip
        self.running = True

    def stop(self, mode: str = "immediate") -> None:
        """``pg_ctl stop -m MODE`` (a frozen server is thawed first)."""
        if self.frozen:
            self.thaw()
        _as_postgres(self.bindir / "pg_ctl", "-D", self.datadir, "-m", mode, "-w", "stop")
        self.running = False

    def postmaster_pid(self) -> int | None:
        try:
            first = (self.datadir / "postmaster.pid").read_text().split("\n", 1)[0]
        except OSError:
            return None
        return int(first) if first.strip().isdigit() else None

    def _processes(self) -> list[int]:
        pid = self.postmaster_pid()
        if pid is None:
            raise RuntimeError(f"{self.name} is not running")
        return [pid, *_children(pid)]

    def freeze(self) -> None:
        """SIGSTOP the postmaster, then (so that it can fork no more) every descendant."""
        pid = self.postmaster_pid()
        if pid is None:
            raise RuntimeError(f"{self.name} is not running")
        os.kill(pid, signal.SIGSTOP)
        self.frozen = True
        for child in _children(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT every process of the server."""
        pid = self.postmaster_pid()
        if pid is None:
            self.frozen = False
            return
        for process in reversed(self._processes()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(process, signal.SIGCONT)
        self.frozen = False

    def restore(self) -> None:
        """Back to normal whatever happened: thawed and running."""
        if self.frozen:
            self.thaw()
        if not self.running:
            self.start()


@dataclass
class PgServers:
    """``n`` private servers named ``pg1..pgN`` under one temporary root."""

    n: int
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cellgate-pg-")))
    servers: list[PgServer] = field(default_factory=list)

    def start(self) -> list[PgServer]:
        bindir = find_pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found")
        self.root.chmod(0o755)
        _chown_tree(self.root)
        template = self.root / "template"
        _as_postgres(
            bindir / "initdb", "-D", template, "--auth=trust", "-U", _PG_USER,
            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        for i in range(1, self.n + 1):
            datadir = self.root / f"pg{i}"
            sockdir = self.root / f"sock{i}"
            subprocess.run(["cp", "-a", str(template), str(datadir)], check=True, timeout=60)
            sockdir.mkdir()
            _chown_tree(datadir)
            _chown_tree(sockdir)
            logfile = self.root / f"pg{i}.log"
            logfile.touch()
            _chown_tree(logfile)
            server = PgServer(f"pg{i}", _free_port(), datadir, sockdir, logfile, bindir)
            self.servers.append(server)
            server.start()
        return self.servers

    def close(self) -> None:
        """Thaw, stop and delete every server (errors are collected, not raised early)."""
        errors: list[str] = []
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.thaw()
            if server.postmaster_pid() is not None:
                try:
                    server.stop("immediate")
                except Exception as exc:  # keep tearing the others down
                    errors.append(f"{server.name}: {exc}")
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
