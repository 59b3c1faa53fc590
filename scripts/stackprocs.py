"""Ports and processes for ``scripts/devstack`` (stdlib only): whether a port is taken,
waiting for a listener, live pids from pid files, stopping a process, starting one detached.

Port checks never connect: a probe's closed connection leaves its (ephemeral) source port
in TIME_WAIT, and the default ports lie inside Linux's ephemeral range (32768-60999), so
probing could itself block a server we are about to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from stackconf import StackError

__all__ = [
    "check_free",
    "guard_ports",
    "live_pid",
    "pid_alive",
    "port_bindable",
    "port_listening",
    "spawn",
    "stop_pid",
    "wait_port",
]

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column
_SHARED_PORTS = (5432, 3306, 6379)  # the machine's own PostgreSQL, MariaDB, Redis


def port_listening(port: int) -> bool:
    """Some socket listens on ``port`` (``/proc/net/tcp`` and ``tcp6``, state 0A)."""
    suffix = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _LISTEN and fields[1].endswith(suffix):
                return True
    return False


def port_bindable(port: int) -> bool:
    """A server (``SO_REUSEADDR``, as PostgreSQL, Redis and asyncio set it) could bind it."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def check_free(port: int, what: str, port_base: int) -> None:
    if port_listening(port):
        raise StackError(
            f"port {port} ({what}) is in use by another process; set "
            "CELLGATE_DEVSTACK_PORT_BASE / CELLGATE_DEVSTACK_GATEWAY_PORT"
        )
    if not port_bindable(port):
        raise StackError(
            f"port {port} ({what}) cannot be bound (held by a connection, e.g. in TIME_WAIT:"
            f" ports {port_base}.. lie in the ephemeral range); retry in a minute or set"
            " CELLGATE_DEVSTACK_PORT_BASE"
        )


def wait_port(port: int, seconds: float) -> bool:
    """Whether something listens on ``port`` within ``seconds``."""
    deadline = time.monotonic() + seconds
    while not port_listening(port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def guard_ports(ports: Iterable[int]) -> None:
    """Refuse the machine's shared services' ports, and ports out of range."""
    for port in ports:
        if port in _SHARED_PORTS:
            raise StackError(
                f"port {port} belongs to the machine's shared services; pick another"
                " CELLGATE_DEVSTACK_PORT_BASE"
            )
        if not 0 < port < 65536:
            raise StackError(f"port {port} out of range")


def pid_alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie (exited children may wait a while for a reaper)."""
    try:
        os.kill(pid, 0)
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def live_pid(pid_file: Path, pattern: str) -> int | None:
    """The pid in ``pid_file``, if that process is alive and its command line contains
    ``pattern``."""
    try:
        first = pid_file.read_text().splitlines()[0].strip()
        pid = int(first)
    except (OSError, IndexError, ValueError):
        return None
    if not pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return None
    return pid if pattern.encode() in cmdline else None


def stop_pid(pid: int, name: str) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        return
    for _ in range(100):
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    print(
        f"devstack: {name} (pid {pid}) ignored SIGTERM for 10 s; sending SIGKILL",
        file=sys.stderr,
        flush=True,
    )
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def spawn(
    argv: Sequence[str],
    log: Path,
    pid_file: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """``argv`` in a session of its own (it outlives the devstack), output appended to
    ``log``, its pid written to ``pid_file``."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid
