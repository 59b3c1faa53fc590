"""``scripts/devstack``'s layout: where everything lives under the base directory, which
port each component takes, the backend's database URLs, and ``state.env`` (stdlib only).

The environment is read once, by :meth:`Layout.from_env`:

- ``CELLGATE_DEVSTACK_DIR``: the base directory (default ``./.devstack``);
- ``CELLGATE_DEVSTACK_PORT_BASE``: the API database's port (default 26400); cellN's is
  base+N, Redis' base+99, cellN's delay proxy's base+100+N, Prometheus' base+199;
- ``CELLGATE_DEVSTACK_GATEWAY_PORT``: the gateway's port (default 8774);
- ``CELLGATE_DEVSTACK_WORKERS``: the gateway's processes (default 1; N > 1: ``cellgate
  serve --workers N``);
- ``CELLGATE_DEVSTACK_PROMETHEUS``: ``auto`` (default: start Prometheus when the
  ``prometheus`` binary exists, e.g. Debian's package) or ``off``;
- ``PYTHON``: the interpreter that runs the scripts and the gateway (default ``python3``).

The server scripts read ``CELLGATE_PG_BIN`` (PostgreSQL's binaries; default ``pg_config
--bindir``, or the newest ``/usr/lib/postgresql/*/bin``) and ``CELLGATE_MARIADB_BIN``
(MariaDB's; default the PATH, ``/usr/sbin``, ...): see ``scripts/pgserver.py`` and
``scripts/mariadbserver.py``.

``state.env`` is what ``scripts/outage`` sources and the tests read: ``KEY=VALUE`` lines,
each value plain when it is shell-safe and shell-quoted otherwise.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "REPO",
    "Backend",
    "Layout",
    "StackError",
    "fail",
    "is_uint",
    "read_state",
    "say",
    "write_state",
]

REPO = Path(__file__).resolve().parent.parent
_UINT = re.compile(r"[0-9]+")
_SHELL_SAFE = re.compile(r"[A-Za-z0-9_./:@,+=%-]*")


class StackError(Exception):
    """The devstack stops here: ``devstack: MESSAGE`` on stderr (nothing when the message
    is empty: a server script already said why), exit status 1."""


def say(message: str) -> None:
    print(f"devstack: {message}", flush=True)


def is_uint(value: str) -> bool:
    """Digits only (what bash's `[[ $1 =~ ^[0-9]+$ ]]` accepts)."""
    return _UINT.fullmatch(value) is not None


@dataclass(frozen=True)
class Layout:
    """Directories and ports of one stack (see the module's docstring)."""

    base_dir: Path
    port_base: int
    gateway_port: int
    workers: int
    prometheus: Literal["auto", "off"]
    python: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Layout:
        base = env.get("CELLGATE_DEVSTACK_DIR") or "./.devstack"
        port_base = env.get("CELLGATE_DEVSTACK_PORT_BASE") or "26400"
        gateway_port = env.get("CELLGATE_DEVSTACK_GATEWAY_PORT") or "8774"
        workers = env.get("CELLGATE_DEVSTACK_WORKERS") or "1"
        prometheus = env.get("CELLGATE_DEVSTACK_PROMETHEUS") or "auto"
        if not is_uint(port_base):
            raise StackError(f"CELLGATE_DEVSTACK_PORT_BASE must be a number, got '{port_base}'")
        if not is_uint(workers) or int(workers) < 1:
            raise StackError(f"CELLGATE_DEVSTACK_WORKERS must be 1 or more, got '{workers}'")
        if not is_uint(gateway_port):
            raise StackError(
                f"CELLGATE_DEVSTACK_GATEWAY_PORT must be a number, got '{gateway_port}'"
            )
        if prometheus not in ("auto", "off"):
            raise StackError(
                f"CELLGATE_DEVSTACK_PROMETHEUS must be auto or off, got '{prometheus}'"
            )
        return cls(
            base_dir=Path(os.path.realpath(base)),
            port_base=int(port_base),
            gateway_port=int(gateway_port),
            workers=int(workers),
            prometheus="auto" if prometheus == "auto" else "off",
            python=env.get("PYTHON") or "python3",
        )

    @property
    def state_file(self) -> Path:
        return self.base_dir / "state.env"

    @property
    def sock_dir(self) -> Path:
        return self.base_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.base_dir / "log"

    @property
    def pid_dir(self) -> Path:
        return self.base_dir / "pids"

    @property
    def delay_dir(self) -> Path:
        return self.base_dir / "delay"

    @property
    def redis_dir(self) -> Path:
        return self.base_dir / "redis"

    @property
    def prom_dir(self) -> Path:
        return self.base_dir / "prometheus"

    @property
    def seed_stamp(self) -> Path:
        return self.base_dir / "seed.stamp"

    @property
    def api_port(self) -> int:
        return self.port_base

    @property
    def redis_port(self) -> int:
        return self.port_base + 99

    @property
    def prom_port(self) -> int:
        return self.port_base + 199

    def cell_port(self, n: int) -> int:
        return self.port_base + n

    def proxy_port(self, n: int) -> int:
        return self.port_base + 100 + n

    def db_port(self, name: str) -> int:
        """The port of server ``name`` (``api`` or ``cellN``)."""
        return self.api_port if name == "api" else self.cell_port(int(name.removeprefix("cell")))


@dataclass(frozen=True)
class Backend:
    """The database servers' kind: its server script (``scripts/pgserver.py`` or
    ``scripts/mariadbserver.py``: the one way to start such a server), its system user,
    its data directory and binaries."""

    name: Literal["postgresql", "mariadb"]
    db_dir: Path
    bindir: str

    @property
    def script(self) -> str:
        return "pgserver.py" if self.name == "postgresql" else "mariadbserver.py"

    @property
    def user(self) -> str:
        return "postgres" if self.name == "postgresql" else "mysql"

    @property
    def kind(self) -> str:
        return "PostgreSQL" if self.name == "postgresql" else "MariaDB"

    def db_url(self, port: int, database: str) -> str:
        if self.name == "mariadb":
            return f"mysql+pymysql://root@127.0.0.1:{port}/{database}"
        return f"postgresql://{self.user}@127.0.0.1:{port}/{database}"

    def db_name(self, name: str) -> str:
        """The database of server ``name`` (``api``, ``cellN``): MariaDB cells get
        ``nova_cellN`` each, PostgreSQL cells ``nova_cell``."""
        if name == "api":
            return "nova_api"
        return f"nova_{name}" if self.name == "mariadb" else "nova_cell"

    def api_url(self, layout: Layout) -> str:
        return self.db_url(layout.api_port, "nova_api")

    def cell_url(self, layout: Layout, n: int) -> str:
        """Cell ``n`` through its delay proxy (what ``cell_mappings`` hold)."""
        return self.db_url(layout.proxy_port(n), self.db_name(f"cell{n}"))


def read_state(path: Path) -> dict[str, str] | None:
    """``state.env``'s values, or None when there is none."""
    if not path.is_file():
        return None
    state = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            parts = shlex.split(value)
            state[key] = parts[0] if parts else ""
    return state


def _kv(key: str, value: object) -> str:
    text = str(value)
    return f"{key}={text if _SHELL_SAFE.fullmatch(text) else shlex.quote(text)}\n"


def write_state(
    layout: Layout, backend: Backend, cells: int, instances: int, *, prometheus: bool
) -> None:
    """``state.env``, replaced atomically (``scripts/outage`` may be reading it)."""
    db, log, pid = backend.db_dir, layout.log_dir, layout.pid_dir
    lines = [
        "# written by scripts/devstack up; sourceable by bash, KEY=VALUE (shell-quoted)\n",
        _kv("DEVSTACK_DIR", layout.base_dir),
        _kv("REPO", REPO),
        _kv("BACKEND", backend.name),
        _kv("DB_BIN", backend.bindir),
        _kv("DB_USER", backend.user),
        _kv("DB_SOCKET_DIR", layout.sock_dir),
        _kv("PORT_BASE", layout.port_base),
        _kv("CELLS", cells),
        _kv("CELL_NAMES", ",".join(f"cell{i}" for i in range(1, cells + 1))),
        _kv("INSTANCES", instances),
        _kv("API_DB_PORT", layout.api_port),
        _kv("API_DB_DATA", db / "api"),
        _kv("API_DB_LOG", log / "api.log"),
        _kv("API_DATABASE_URL", backend.api_url(layout)),
    ]
    for i in range(1, cells + 1):
        direct = backend.db_url(layout.cell_port(i), backend.db_name(f"cell{i}"))
        lines += [
            _kv(f"CELL{i}_PORT", layout.cell_port(i)),
            _kv(f"CELL{i}_PROXY_PORT", layout.proxy_port(i)),
            _kv(f"CELL{i}_DATA", db / f"cell{i}"),
            _kv(f"CELL{i}_LOG", log / f"cell{i}.log"),
            _kv(f"CELL{i}_DELAY_FILE", layout.delay_dir / f"cell{i}"),
            _kv(f"CELL{i}_HANG_FILE", db / f"cell{i}.frozen"),
            _kv(f"CELL{i}_PROXY_PID_FILE", pid / f"proxy-cell{i}.pid"),
            _kv(f"CELL{i}_URL", backend.cell_url(layout, i)),
            _kv(f"CELL{i}_DIRECT_URL", direct),
        ]
    lines += [
        _kv("REDIS_PORT", layout.redis_port),
        _kv("REDIS_URL", f"redis://127.0.0.1:{layout.redis_port}/0"),
        _kv("REDIS_PID_FILE", pid / "redis.pid"),
        _kv("GATEWAY_PORT", layout.gateway_port),
        _kv("GATEWAY_URL", f"http://127.0.0.1:{layout.gateway_port}"),
        _kv("GATEWAY_PID_FILE", pid / "gateway.pid"),
        _kv("GATEWAY_LOG", log / "gateway.log"),
        _kv("GATEWAY_WORKERS", layout.workers),
    ]
    if prometheus:
        lines += [
            _kv("PROMETHEUS_PORT", layout.prom_port),
            _kv("PROMETHEUS_URL", f"http://127.0.0.1:{layout.prom_port}"),
        ]
    fd, tmp = tempfile.mkstemp(prefix=".state.", dir=layout.base_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    os.chmod(tmp, 0o644)
    os.replace(tmp, layout.state_file)


def fail(message: str) -> None:
    """``devstack: MESSAGE`` on stderr (for a job whose failure the caller reports)."""
    print(f"devstack: {message}", file=sys.stderr, flush=True)
