"""Resident memory of a process tree, from ``/proc`` (the gateway and its workers)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["process_parents", "tree_rss_kib", "vmrss_kib"]


def vmrss_kib(status: str) -> int:
    """``VmRSS`` of a ``/proc/PID/status`` text, in KiB (0 when absent: a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def process_parents() -> dict[int, int]:
    """Every process's parent pid, from ``/proc/PID/stat``."""
    parents = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                raw = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(raw[raw.rindex(")") + 2 :].split()[1])
    return parents


def tree_rss_kib(pid: int) -> int:
    """RSS of ``pid`` and all its descendants (uvicorn's workers), in KiB."""
    parents = process_parents()
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [c for c, p in parents.items() if p == parent and c not in tree]
        tree.update(children)
        frontier.extend(children)
    total = 0
    for p in tree:
        try:
            total += vmrss_kib(Path(f"/proc/{p}/status").read_text())
        except OSError:
            continue  # exited meanwhile
    return total
