"""CPU seconds from /proc: one process, the PostgreSQL backends of some databases, the
whole machine, this process."""

from __future__ import annotations

import os
from pathlib import Path

_CLK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    rest = raw[raw.rindex(")") + 2 :].split()
    return (int(rest[11]) + int(rest[12])) / _CLK


def pg_backends_cpu_s(dbnames: frozenset[str]) -> float:
    """CPU seconds of the PostgreSQL backends connected to ``dbnames`` (live ones)."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        if not title.startswith(b"postgres: "):
            continue
        tokens = title.decode("latin-1").replace("\x00", " ").split()
        if any(t in dbnames for t in tokens[2:5]):
            total += proc_cpu_s(int(entry.name))
    return total


def machine_busy_s() -> float:
    """CPU seconds all processes of the machine have used (from /proc/stat)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _CLK


def self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system
