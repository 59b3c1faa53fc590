"""``scripts/devstack``'s database servers: one for the API database and one per cell,
each started, stopped and inspected by the backend's server script (``scripts/pgserver.py``
or ``scripts/mariadbserver.py``, which run the servers as ``postgres`` or ``mysql`` when
root; exit status 0: done, 3: nothing to do or, for status, stopped).

initdb (mariadb-install-db) runs once, into a template that every server's data directory
is copied from (it takes seconds, a copy a fraction of one).
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass

from stackconf import REPO, Backend, Layout, StackError, say
from stackprocs import check_free

__all__ = ["DbServers", "ServerStatus", "backend_of", "stack_backend"]

NOTHING_TO_DO = 3
# A throwaway development server: durability off, small memory (MariaDB's are
# scripts/mariadbinstall.py's defaults).
_PG_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "shared_buffers=32MB",
    "max_connections=200",
    "log_min_messages=warning",
)


@dataclass(frozen=True)
class ServerStatus:
    """A server script's status line: ``STATE PORT PID FROZEN_PIDS``."""

    state: str  # running, frozen or stopped
    port: str
    pid: str

    @classmethod
    def parse(cls, line: str) -> ServerStatus:
        fields = [*line.split(), "", "", ""]
        return cls(fields[0], fields[1], fields[2])


def _script(
    layout: Layout, script: str, *args: str, capture: bool
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [layout.python, str(REPO / "scripts" / script), *args],
        stdout=subprocess.PIPE if capture else None,
        text=True,
        check=False,
    )


def backend_of(layout: Layout, name: str) -> Backend:
    """The backend ``name`` (``postgresql`` or ``mariadb``), its binaries found by its
    server script (which says why when it cannot)."""
    if name not in ("postgresql", "mariadb"):
        raise StackError(f"--backend must be postgresql or mariadb, got '{name}'")
    script = "pgserver.py" if name == "postgresql" else "mariadbserver.py"
    done = _script(layout, script, "bindir", capture=True)
    if done.returncode != 0:
        raise StackError("")
    db_dir = layout.base_dir / ("pg" if name == "postgresql" else "mariadb")
    return Backend(
        "postgresql" if name == "postgresql" else "mariadb", db_dir, done.stdout.rstrip("\n")
    )


def stack_backend(layout: Layout, state: dict[str, str] | None) -> str:
    """The backend of the stack in the base directory: state.env's, else its data
    directory's."""
    if state and state.get("BACKEND"):
        return state["BACKEND"]
    return "mariadb" if (layout.base_dir / "mariadb").is_dir() else "postgresql"


@dataclass(frozen=True)
class DbServers:
    """The stack's database servers (``api``, ``cell1``..) of one backend."""

    layout: Layout
    backend: Backend

    def _run(self, *args: str, capture: bool = True) -> subprocess.CompletedProcess[str]:
        return _script(self.layout, self.backend.script, *args, capture=capture)

    def _on(
        self, command: str, name: str, *args: str, capture: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """The server script's ``command`` on server ``name``."""
        layout = self.layout
        return self._run(
            command,
            str(self.backend.db_dir / name),
            "--bindir",
            self.backend.bindir,
            "--port",
            str(layout.db_port(name)),
            "--sockdir",
            str(layout.sock_dir),
            "--log",
            str(layout.log_dir / f"{name}.log"),
            *args,
            capture=capture,
        )

    def prepare_dirs(self) -> None:
        layout, user = self.layout, self.backend.user
        db_dir = self.backend.db_dir
        for path in (
            layout.base_dir,
            db_dir,
            layout.sock_dir,
            layout.log_dir,
            layout.pid_dir,
            layout.delay_dir,
            layout.redis_dir,
        ):
            path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam(user)
            except KeyError:
                raise StackError(f"no '{user}' user to run {self.backend.kind} as") from None
            for path in (layout.base_dir, db_dir, layout.sock_dir, layout.log_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
            layout.base_dir.chmod(0o755)
            db_dir.chmod(0o700)
            layout.sock_dir.chmod(0o775)
            reach = subprocess.run(
                [
                    "runuser",
                    "-u",
                    user,
                    "--",
                    "test",
                    "-w",
                    str(db_dir),
                    "-a",
                    "-w",
                    str(layout.sock_dir),
                    "-a",
                    "-w",
                    str(layout.log_dir),
                ],
                check=False,
            )
            if reach.returncode != 0:
                raise StackError(
                    f"the {user} user cannot reach {layout.base_dir} (a parent directory is"
                    " not traversable?); use a CELLGATE_DEVSTACK_DIR it can reach, e.g. under"
                    " /tmp"
                )
        # A unix socket path is limited to 107 bytes.
        if len(str(layout.sock_dir)) > 90:
            raise StackError(
                f"base directory path too long for {self.backend.kind}'s unix socket:"
                f" {layout.sock_dir}"
            )

    def status(self, name: str) -> ServerStatus:
        """``STATE PORT PID``: running, frozen or stopped."""
        done = self._on("status", name)
        if done.returncode not in (0, NOTHING_TO_DO):
            raise StackError(f"cannot tell whether {name} runs")
        return ServerStatus.parse(done.stdout)

    def running(self, name: str) -> bool:
        """Whether server ``name`` runs (a frozen server runs)."""
        return self.status(name).state != "stopped"

    def create(self, names: list[str]) -> None:
        """Data directories for the servers that have none (copies of the template); a
        new one makes the next ``up`` seed again."""
        settings: list[str] = []
        if self.backend.name == "postgresql":
            for setting in _PG_SETTINGS:
                settings += ["-c", setting]
        done = self._run(
            "template",
            str(self.backend.db_dir / ".template"),
            *(str(self.backend.db_dir / name) for name in names),
            "--bindir",
            self.backend.bindir,
            *settings,
        )
        if done.returncode != 0:
            raise StackError(f"could not create the {self.backend.kind} data directories")
        if done.stdout.strip():
            self.layout.seed_stamp.unlink(missing_ok=True)

    def start(self, name: str) -> None:
        port = self.layout.db_port(name)
        # MariaDB: the database, in the server's defaults, as a deployer creates Nova's.
        create = (
            ["--database", self.backend.db_name(name)] if self.backend.name == "mariadb" else []
        )
        now = self.status(name)
        if now.state != "stopped":
            if now.port != str(port):
                raise StackError(
                    f"{name} already runs on port {now.port}, not {port} (run 'scripts/devstack"
                    " down' first)"
                )
            say(f"{name} already running (port {port}, pid {now.pid})")
            return
        check_free(port, name, self.layout.port_base)
        done = self._on("start", name, *create)
        if done.returncode != 0:
            raise StackError(f"{name} did not start (log: {self.layout.log_dir / name}.log)")
        say(f"{name} started (port {port}, pid {ServerStatus.parse(done.stdout).pid})")

    def stop(self, name: str) -> None:
        """Stop server ``name`` (a frozen server is thawed first: it cannot shut down frozen)."""
        done = self._on("stop", name, "--mode", "fast", capture=False)
        if done.returncode == 0:
            say(f"{name} stopped")
        elif done.returncode != NOTHING_TO_DO:
            raise StackError(f"could not stop {name}")
