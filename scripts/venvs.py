"""One way to build the private virtual environments the scripts run foreign code in
(Keystone for the auth tests, Nova for the schema conformance check).

Each is installed under a lock of ``locks/`` (``scripts/lock`` re-resolves them), so a fresh
machine builds exactly what CI tested, whatever PyPI released since.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["LOCKS", "ensure_venv", "requirements", "venv_dir"]

LOCKS = Path(__file__).resolve().parent.parent / "locks"
"""The repository's lock files (``locks/*.txt``)."""


def ensure_venv(
    venv: Path,
    packages: Sequence[str],
    *,
    constraints: Path | None = None,
    no_deps: bool = False,
    label: str = "venv",
) -> Path:
    """``venv`` holding exactly ``packages`` (rebuilt when it holds another list); its python.

    A marker file records what was installed (the packages and the text of
    ``constraints``, a pip constraints file such as a lock), and a lock beside the venv
    makes concurrent callers (pytest workers, two scripts) wait for one build instead of
    racing. ``no_deps`` installs only the packages named (the caller pins the whole set).
    """
    venv.parent.mkdir(parents=True, exist_ok=True)
    pinned = ["-c", str(constraints)] if constraints is not None else []
    wanted = "\n".join(packages)
    if constraints is not None:
        wanted += "\n# constraints\n" + constraints.read_text()
    marker = venv / "cellgate-packages.txt"
    python = venv / "bin" / "python"
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.is_file() and marker.read_text() == wanted:
            return python
        shutil.rmtree(venv, ignore_errors=True)
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *(["--no-deps"] if no_deps else []), *pinned, *packages], check=True)
        marker.write_text(wanted)
        elapsed = time.monotonic() - started
        print(f"{label}: installed {' '.join(packages)} in {elapsed:.0f} s", file=sys.stderr)
    return python


def venv_dir(env: Mapping[str, str], variable: str, name: str) -> Path:
    """Where a service's venv lives: ``$variable`` if set, else
    ``${XDG_CACHE_HOME:-$HOME/.cache}/cellgate/<name>``."""
    if explicit := env.get(variable):
        return Path(explicit)
    cache = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "cellgate" / name


def requirements(path: Path) -> list[str]:
    """The requirement lines of a ``locks/*.in`` file (comments and blank lines dropped)."""
    lines = (line.partition("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]
