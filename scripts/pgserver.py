#!/usr/bin/env python3
"""Private PostgreSQL servers: the one way cellgate starts, stops, freezes and thaws them.

``scripts/devstack``, ``scripts/outage``, the integration tests and the benchmark all use
this module (stdlib only; what it shares with ``scripts/mariadbserver.py`` is in
``scripts/serverproc.py`` and ``scripts/servercli.py``). PostgreSQL refuses to run as
root, so as root every PostgreSQL command runs as the ``postgres`` user (``runuser``);
otherwise as the caller.

- :func:`find_bindir`: ``$CELLGATE_PG_BIN``, else ``pg_config --bindir``, else the newest
  ``/usr/lib/postgresql/*/bin``.
- :class:`Template`: ``initdb`` once (trust auth, UTF8, locale C, its settings appended to
  ``postgresql.conf``); every server's data directory is a copy of it (initdb takes
  seconds, a copy a fraction of one).
- :class:`PgServer`: ``pg_ctl`` start/stop on 127.0.0.1:PORT with a private socket
  directory, ``-c NAME=VALUE`` options on top; freeze (SIGSTOP to the postmaster, then its
  descendants: a hung host) and thaw (SIGCONT). The frozen pids live in ``DATADIR.frozen``
  beside the data directory, so the shell and Python see one state.

Command line (exit status 0: done; 3: nothing to do, or stopped; 1: error; 2: usage)::

    pgserver.py bindir
    pgserver.py template TEMPLATE [DATADIR ...] [-c NAME=VALUE ...]  (prints the copies made)
    pgserver.py start|stop|status|freeze|thaw DATADIR [--port P] [--sockdir DIR] [--log FILE]
        [-c NAME=VALUE ...] [--mode smart|fast|immediate] [--bindir DIR]

``start``, ``status`` and ``freeze`` print ``STATE PORT PID FROZEN_PIDS``: STATE is running,
frozen or stopped, FROZEN_PIDS comma-separated, ``-`` where nothing applies.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import serverproc
from servercli import PrivateServer, ServerCli
from serverproc import ServerError, alive, run_as, user_argv

__all__ = [
    "PG_USER",
    "PgError",
    "PgServer",
    "StopMode",
    "Template",
    "as_postgres",
    "conf_block",
    "find_bindir",
    "own_dir",
    "parse_postmaster_pid",
    "postgres_argv",
    "server_options",
]

PG_USER = "postgres"
LIB_ROOT = Path("/usr/lib/postgresql")
TIMEOUT_S = 60.0
StopMode = Literal["smart", "fast", "immediate"]
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


class PgError(ServerError):
    """A PostgreSQL command failed, or a server is not in the state an operation needs."""


def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("initdb", "pg_ctl"))


def _version(bindir: Path) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in bindir.parent.name.split("."))
    except ValueError:
        return (-1,)


def find_bindir(
    environ: Mapping[str, str] | None = None,
    *,
    pg_config: str = "pg_config",
    lib_root: Path = LIB_ROOT,
) -> Path:
    """The directory of ``initdb`` and ``pg_ctl``: ``$CELLGATE_PG_BIN``, else
    ``pg_config --bindir``, else the newest ``LIB_ROOT/*/bin`` holding them."""
    env = os.environ if environ is None else environ
    if env.get("CELLGATE_PG_BIN"):
        bindir = Path(env["CELLGATE_PG_BIN"])
        if not _has_server_binaries(bindir):
            raise PgError(f"no initdb/pg_ctl in {bindir} (CELLGATE_PG_BIN)")
        return bindir
    candidates: list[Path] = []
    executable = shutil.which(pg_config)
    if executable is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                [executable, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            if done.stdout.strip():
                candidates.append(Path(done.stdout.strip()))
    candidates += sorted(lib_root.glob("*/bin"), key=_version, reverse=True)
    for bindir in candidates:
        if _has_server_binaries(bindir):
            return bindir
    raise PgError("no PostgreSQL server binaries (initdb, pg_ctl) found; set CELLGATE_PG_BIN")


def postgres_argv(argv: Sequence[str | os.PathLike[str]], *, euid: int | None = None) -> list[str]:
    """``argv`` run as the ``postgres`` user when (and only when) the caller is root."""
    return user_argv(PG_USER, argv, euid=euid)


def as_postgres(argv: Sequence[str | os.PathLike[str]], *, timeout_s: float = TIMEOUT_S) -> str:
    """Run ``argv`` as the ``postgres`` user (see :func:`postgres_argv`); its stdout."""
    return run_as(PG_USER, argv, timeout_s=timeout_s, error=PgError)


def own_dir(path: Path, mode: int = 0o755) -> Path:
    """``path`` as a directory the server's user owns (chowned to ``postgres`` when root)."""
    return serverproc.own_dir(path, PG_USER, mode)


def _setting_name(name: str) -> str:
    if not _SETTING_NAME.match(name):
        raise ValueError(f"not a PostgreSQL setting name: {name!r}")
    return name


def conf_block(settings: Mapping[str, str]) -> str:
    """``settings`` as lines to append to ``postgresql.conf`` (every value quoted)."""
    lines = ["", "# written by scripts/pgserver.py"]
    for name, value in settings.items():
        quoted = value.replace("\\", "\\\\").replace("'", "''")
        lines.append(f"{_setting_name(name)} = '{quoted}'")
    return "\n".join(lines) + "\n"


def server_options(port: int, sockdir: Path, settings: Mapping[str, str]) -> str:
    """``pg_ctl -o``'s string: loopback only, ``settings`` last (pg_ctl hands it to ``sh``)."""
    words = ["-p", str(port), "-k", str(sockdir), "-c", "listen_addresses=127.0.0.1"]
    for name, value in settings.items():
        words += ["-c", f"{_setting_name(name)}={value}"]
    return shlex.join(words)


def parse_postmaster_pid(text: str) -> tuple[int, int] | None:
    """(pid, port) from a ``postmaster.pid`` file's text; None while it is incomplete."""
    lines = text.splitlines()
    if len(lines) < 4 or not lines[0].strip().isdigit() or not lines[3].strip().isdigit():
        return None
    return int(lines[0]), int(lines[3])


@dataclass(frozen=True)
class Template:
    """A data directory ``initdb`` makes once, with ``settings`` in its ``postgresql.conf``;
    servers get copies. Settings apply when the template is made, not to an existing one."""

    path: Path
    settings: Mapping[str, str] = field(default_factory=dict)
    bindir: Path = field(default_factory=find_bindir)

    def ensure(self, timeout_s: float = TIMEOUT_S) -> bool:
        """Make the template unless it exists; True when it ran ``initdb``."""
        if (self.path / "PG_VERSION").is_file():
            return False
        # initdb and the settings go to a scratch directory first: a half-made template
        # never looks finished.
        scratch = self.path.with_name(self.path.name + ".new")
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(self.path, ignore_errors=True)
        as_postgres(
            [self.bindir / "initdb", "-D", scratch, "--auth=trust", "-U", PG_USER,
             "-E", "UTF8", "--locale=C", "--no-sync"],
            timeout_s=timeout_s,
        )  # fmt: skip
        with (scratch / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(conf_block(self.settings))
        scratch.rename(self.path)
        return True

    def copy_to(self, datadir: Path) -> bool:
        """A copy of the template at ``datadir`` unless one exists; True when it copied."""
        if (datadir / "PG_VERSION").is_file():
            return False
        self.ensure()
        shutil.rmtree(datadir, ignore_errors=True)
        as_postgres(["cp", "-a", self.path, datadir])
        return True


@dataclass(frozen=True)
class PgServer(PrivateServer):
    """One private server: ``datadir`` served on 127.0.0.1:``port`` and in ``sockdir``,
    logging to ``logfile``, with ``options`` as ``-c NAME=VALUE`` on the command line.
    Freeze, thaw, restore and the start checks are :class:`servercli.PrivateServer`'s."""

    datadir: Path
    port: int
    sockdir: Path
    logfile: Path
    options: Mapping[str, str] = field(default_factory=dict)
    bindir: Path = field(default_factory=find_bindir)
    error = PgError

    @property
    def url(self) -> str:
        """The server's URL without a database (trust auth as ``postgres``)."""
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}"

    def database_url(self, database: str) -> str:
        return f"{self.url}/{database}"

    def _postmaster(self) -> tuple[int, int] | None:
        try:
            found = parse_postmaster_pid((self.datadir / "postmaster.pid").read_text())
        except OSError:
            return None
        return found if found is not None and alive(found[0]) else None

    @property
    def pid(self) -> int | None:
        """The live postmaster's pid (also while frozen), else None."""
        found = self._postmaster()
        return None if found is None else found[0]

    @property
    def running_port(self) -> int | None:
        """The port the live postmaster listens on (maybe not :attr:`port`), else None."""
        found = self._postmaster()
        return None if found is None else found[1]

    def start(self, timeout_s: float = TIMEOUT_S) -> bool:
        """``pg_ctl start``, waiting until it accepts connections; False when it already
        runs on :attr:`port` (PgError on another port)."""
        if not self.needs_start():
            return False
        if not self.sockdir.is_dir():
            own_dir(self.sockdir)
        options = server_options(self.port, self.sockdir, self.options)
        try:
            as_postgres(
                [self.bindir / "pg_ctl", "-D", self.datadir, "-o", options, "-l", self.logfile,
                 "-w", "-t", str(round(timeout_s)), "start"],
                timeout_s=timeout_s + 10,
            )  # fmt: skip
        except PgError as exc:
            raise PgError(f"{exc}\n{self.logfile}:\n{self._log_tail()}") from exc
        return True

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, mode: StopMode = "fast", timeout_s: float = TIMEOUT_S) -> bool:
        """``pg_ctl stop -m MODE`` (a frozen server is thawed first: it cannot shut down
        frozen); False when it was not running."""
        self.thaw()
        if not self.running:
            return False
        as_postgres(
            [self.bindir / "pg_ctl", "-D", self.datadir, "-m", mode,
             "-w", "-t", str(round(timeout_s)), "stop"],
            timeout_s=timeout_s + 10,
        )  # fmt: skip
        return True


CLI = ServerCli(
    prog="pgserver.py",
    doc=__doc__ or "",
    bin_env="CELLGATE_PG_BIN",
    find=find_bindir,
    bindir_of=lambda bindir: bindir,
    template=Template,
    server=PgServer,
    setting_name=_SETTING_NAME,
    stop_modes=get_args(StopMode),
    helps={
        "binaries": "PostgreSQL binaries (default: found)",
        "bindir": "print the binaries' directory",
        "template": "initdb once",
        "setting": "a server setting (repeatable)",
    },
)


def main(argv: list[str] | None = None) -> int:
    return CLI.main(argv)


if __name__ == "__main__":
    sys.exit(main())
