"""Processes of private database servers, whatever the database (stdlib only).

What ``scripts/pgserver.py`` and ``scripts/mariadbserver.py`` share: running a command as
the server's system user when root (``runuser``), a directory that user owns, the state of
a process from ``/proc`` (a zombie counts as gone), its descendants, SIGKILL-and-wait, a
free loopback port, and freezing a server (SIGSTOP to its main process, then to every
descendant: a hung host) with the frozen pids recorded in a file beside its data directory,
so that the shell scripts and Python see one state; thawing sends SIGCONT to them.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "FreezeRecord",
    "ServerError",
    "alive",
    "cmdline",
    "descendants",
    "free_port",
    "kill_and_wait",
    "own_dir",
    "run_as",
    "signal_all",
    "user_argv",
    "wait_gone",
]

TIMEOUT_S = 60.0
# A child forked just before its parent stopped shows up on the next pass.
FREEZE_PASSES = 3


class ServerError(RuntimeError):
    """A server command failed, or a server is not in the state an operation needs."""


def user_argv(
    user: str, argv: Sequence[str | os.PathLike[str]], *, euid: int | None = None
) -> list[str]:
    """``argv`` run as ``user`` when (and only when) the caller is root."""
    words = [os.fspath(word) for word in argv]
    if (os.geteuid() if euid is None else euid) == 0:
        return ["runuser", "-u", user, "--", *words]
    return words


def run_as(
    user: str,
    argv: Sequence[str | os.PathLike[str]],
    *,
    timeout_s: float = TIMEOUT_S,
    error: type[ServerError] = ServerError,
) -> str:
    """Run ``argv`` as ``user`` (see :func:`user_argv`) to completion; its stdout.
    Failures raise ``error`` with the command and its output."""
    command = user_argv(user, argv)
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise error(f"{shlex.join(command)} took over {timeout_s:g} s") from exc
    except OSError as exc:
        raise error(f"{shlex.join(command)}: {exc}") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise error(f"{shlex.join(command)} failed ({done.returncode}): {output}")
    return done.stdout


def own_dir(path: Path, user: str, mode: int = 0o755) -> Path:
    """``path`` as a directory ``user`` owns (chowned when root)."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _stat(pid: int, tid: int | None = None) -> list[str] | None:
    """``/proc/PID/stat``'s fields after the command name (state, ppid, ...); with ``tid``,
    that thread's."""
    path = Path(f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a container may have no reaper). A killed
    multi-threaded process (mariadbd) shows its leader as a zombie while its other threads
    still exit, holding its sockets: it is alive until every thread is gone."""
    fields = _stat(pid)
    if fields is None:
        return False
    if fields[0] != "Z":
        return True
    try:
        tasks = [int(entry.name) for entry in Path(f"/proc/{pid}/task").iterdir()]
    except (OSError, ValueError):
        return False
    return any((task := _stat(pid, tid)) is not None and task[0] != "Z" for tid in tasks)


def cmdline(pid: int) -> list[str]:
    """The process's argv (empty when it is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [word.decode(errors="replace") for word in raw.split(b"\0") if word]


def descendants(pid: int) -> list[int]:
    """Every descendant of ``pid``, parents first."""
    parent_of: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parent_of[int(entry.name)] = int(fields[1])
    found: list[int] = []
    parents = [pid]
    while parents:
        children = sorted(child for child, parent in parent_of.items() if parent in parents)
        found += children
        parents = children
    return found


def signal_all(pids: Sequence[int], signum: signal.Signals) -> None:
    """Send ``signum`` to each pid; one already gone is skipped."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Poll until ``pid`` is gone (or a zombie); False when it outlived ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def kill_and_wait(pid: int, signum: signal.Signals, timeout_s: float = TIMEOUT_S) -> None:
    """``signum`` to ``pid``, then wait until it is gone; ServerError when it is not."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
    if not wait_gone(pid, timeout_s):
        raise ServerError(f"pid {pid} still runs {timeout_s:g} s after {signum.name}")


@dataclass(frozen=True)
class FreezeRecord:
    """The pids one freeze stopped, in ``path`` (one a line); it exists while frozen."""

    path: Path

    @property
    def pids(self) -> list[int]:
        try:
            return [int(word) for word in self.path.read_text().split()]
        except (OSError, ValueError):
            return []

    @property
    def frozen(self) -> bool:
        return self.path.exists()

    def freeze(self, root: int) -> list[int]:
        """SIGSTOP ``root`` (so that it forks no more), then every descendant; the stopped
        pids (already frozen: the recorded ones)."""
        if self.frozen:
            return self.pids
        os.kill(root, signal.SIGSTOP)
        pids = [root]
        self._write(pids)
        for _ in range(FREEZE_PASSES):
            new = [pid for pid in descendants(root) if pid not in pids]
            if not new:
                break
            signal_all(new, signal.SIGSTOP)
            pids += new
        self._write(pids)
        return pids

    def _write(self, pids: list[int]) -> None:
        scratch = self.path.with_name(self.path.name + ".tmp")
        scratch.write_text("".join(f"{pid}\n" for pid in pids))
        scratch.chmod(0o644)
        scratch.replace(self.path)

    def thaw(self) -> bool:
        """SIGCONT every recorded pid (children first); False when none was frozen."""
        if not self.frozen:
            return False
        signal_all(list(reversed(self.pids)), signal.SIGCONT)
        self.path.unlink(missing_ok=True)
        return True
