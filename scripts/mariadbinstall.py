"""What a private MariaDB server is made of: its binaries, its options and the data
directory it starts from (stdlib only; used by ``scripts/mariadbserver.py``).

- :func:`find_binaries`: ``mariadbd``, ``mariadb-install-db`` and the ``mariadb`` client in
  ``$CELLGATE_MARIADB_BIN``, else on the PATH, else in ``/usr/sbin``, ``/usr/bin``, ...
- :data:`DEFAULTS` and :func:`option_words`: kolla's server character set and collation and
  a small throwaway configuration, as ``--NAME=VALUE`` words.
- :class:`Template`: ``mariadb-install-db`` once (root with an empty password, no test
  database), as the ``mysql`` user when root; every server's data directory is a copy.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import serverproc
from serverproc import ServerError, run_as

__all__ = [
    "DEFAULTS",
    "MARIADB_USER",
    "OPTION_NAME",
    "Binaries",
    "MariaDBError",
    "Template",
    "find_binaries",
    "option_words",
    "own_dir",
]

MARIADB_USER = "mysql"
TIMEOUT_S = 60.0
SEARCH_DIRS = tuple(Path(d) for d in ("/usr/sbin", "/usr/bin", "/usr/libexec", "/usr/local/bin"))
DEFAULTS: Mapping[str, str] = {
    # kolla-ansible's server defaults: Nova's tables and databases inherit them.
    "character_set_server": "utf8mb3",
    "collation_server": "utf8mb3_general_ci",
    # A throwaway development server: small memory, no flush per commit, no doublewrite.
    "innodb_buffer_pool_size": "64M",
    "innodb_log_file_size": "16M",
    "innodb_flush_log_at_trx_commit": "2",
    "innodb_doublewrite": "0",
    "max_connections": "200",
}
OPTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


class MariaDBError(ServerError):
    """A MariaDB command failed, or a server is not in the state an operation needs."""


@dataclass(frozen=True)
class Binaries:
    """The server, its installer and the command-line client."""

    server: Path
    install_db: Path
    client: Path


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def _find(name: str, first: Path | None, search: Sequence[Path]) -> Path | None:
    if first is not None and _executable(first / name):
        return first / name
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    return next((d / name for d in search if _executable(d / name)), None)


def find_binaries(
    environ: Mapping[str, str] | None = None, *, search: Sequence[Path] = SEARCH_DIRS
) -> Binaries:
    """``mariadbd`` (in ``$CELLGATE_MARIADB_BIN`` when set), ``mariadb-install-db`` and
    ``mariadb`` (there first, else on the PATH, else in ``search``)."""
    env = os.environ if environ is None else environ
    first = Path(env["CELLGATE_MARIADB_BIN"]) if env.get("CELLGATE_MARIADB_BIN") else None
    if first is not None and not _executable(first / "mariadbd"):
        raise MariaDBError(f"no mariadbd in {first} (CELLGATE_MARIADB_BIN)")
    server = _find("mariadbd", first, search)
    install_db = _find("mariadb-install-db", first, search)
    client = _find("mariadb", first, search) or _find("mysql", first, search)
    if server is None or install_db is None or client is None:
        found = {"mariadbd": server, "mariadb-install-db": install_db, "mariadb": client}
        missing = ", ".join(name for name, path in found.items() if path is None)
        raise MariaDBError(f"not found: {missing}; set CELLGATE_MARIADB_BIN")
    return Binaries(server, install_db, client)


def own_dir(path: Path, mode: int = 0o755) -> Path:
    """``path`` as a directory the ``mysql`` user owns (chowned when root)."""
    return serverproc.own_dir(path, MARIADB_USER, mode)


def option_words(settings: Mapping[str, str]) -> list[str]:
    """``--NAME=VALUE`` for each setting (``--NAME`` alone for an empty value)."""
    words = []
    for name, value in settings.items():
        if not OPTION_NAME.match(name):
            raise ValueError(f"not a MariaDB option name: {name!r}")
        words.append(f"--{name}={value}" if value else f"--{name}")
    return words


@dataclass(frozen=True)
class Template:
    """A data directory ``mariadb-install-db`` makes once; servers get copies."""

    path: Path
    settings: Mapping[str, str] = field(default_factory=dict)
    binaries: Binaries = field(default_factory=find_binaries)

    def ensure(self, timeout_s: float = TIMEOUT_S) -> bool:
        """Make the template unless it exists; True when it ran ``mariadb-install-db``."""
        if (self.path / "mysql").is_dir():
            return False
        # A half-made template never looks finished: it is made aside, then renamed.
        scratch = self.path.with_name(self.path.name + ".new")
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(self.path, ignore_errors=True)
        run_as(
            MARIADB_USER,
            [self.binaries.install_db, "--no-defaults", f"--datadir={scratch.absolute()}",
             "--auth-root-authentication-method=normal", "--skip-test-db",
             "--skip-name-resolve", *option_words({**DEFAULTS, **self.settings})],
            timeout_s=timeout_s,
            error=MariaDBError,
        )  # fmt: skip
        scratch.rename(self.path)
        return True

    def copy_to(self, datadir: Path) -> bool:
        """A copy of the template at ``datadir`` unless one exists; True when it copied."""
        if (datadir / "mysql").is_dir():
            return False
        self.ensure()
        shutil.rmtree(datadir, ignore_errors=True)
        run_as(MARIADB_USER, ["cp", "-a", self.path, datadir], error=MariaDBError)
        return True
