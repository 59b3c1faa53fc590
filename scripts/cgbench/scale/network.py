"""Cells on other hosts, on one machine: every cell database of a data set behind its own
:class:`~delayproxy.DelayProxy`, delaying each chunk each way, and the gateway pointed at
the proxies through static cells (``CELLGATE_CELLS``; ``cell_mappings`` stay as seeded).

Linux's ``netem`` would delay in the kernel, exactly and without CPU in user space, but this
machine's kernel has no ``sch_netem`` ("Specified qdisc kind is unknown"); the proxy's delay
line is exact to about 0.1-0.25 ms here (:func:`calibrate` measures it, and the report
prints it) and its CPU shares the two cores with the gateway. Each proxy is a process of
its own: in a thread it would share the GIL of whatever the run measures in-process. The
same proxies freeze a cell (SIGUSR1: its host stops answering) for the breaker figure.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from cells.seeding import cell_uuid
from cgbench import REPO
from cgbench.procs import stop_process
from cgbench.scale.data import DataSet
from cgbench.servers import free_port
from gateway.settings import StaticCell

__all__ = ["Proxied", "calibrate", "proxied"]

_START_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Proxied:
    """A data set's cells behind proxies (one process each): how a gateway reaches them."""

    data: DataSet
    processes: tuple[subprocess.Popen[bytes], ...]
    cells: tuple[StaticCell, ...]

    @property
    def env(self) -> dict[str, str]:
        """``cellgate serve``'s settings for these cells."""
        return {"CELLGATE_CELLS": json.dumps([c.model_dump() for c in self.cells])}

    def freeze(self, index: int) -> None:
        """Cell ``index``'s proxy stops forwarding (its host hangs)."""
        self.processes[index].send_signal(signal.SIGUSR1)

    def thaw(self, index: int) -> None:
        self.processes[index].send_signal(signal.SIGUSR2)


def _host_port(url: str) -> tuple[str, int, str]:
    base, _, database = url.rpartition("/")
    host, _, port = base.rpartition("@")[2].rpartition(":")
    return host, int(port or 5432), database


def _proxy(target: tuple[str, int], delay_s: float) -> tuple[subprocess.Popen[bytes], int]:
    """``scripts/delayproxy.py`` in a process of its own (so its CPU is not the GIL of the
    process measuring), once it accepts connections."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "delayproxy.py"), "--listen",
         f"127.0.0.1:{port}", "--target", f"{target[0]}:{target[1]}",
         "--delay", str(delay_s), "--both-ways"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"delay proxy to {target} did not start") from None
            time.sleep(0.05)


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGUSR2)  # thaw, so its connections can close
        stop_process(process)


@contextlib.contextmanager
def proxied(data: DataSet, delay_s: float) -> Iterator[Proxied]:
    """A proxy per cell of ``data`` delaying ``delay_s`` each way; stopped on exit."""
    processes: list[subprocess.Popen[bytes]] = []
    cells: list[StaticCell] = []
    try:
        for n, url in enumerate(data.cell_urls, 1):
            host, port, database = _host_port(url)
            process, listen = _proxy((host, port), delay_s)
            processes.append(process)
            address = f"postgresql://postgres@127.0.0.1:{listen}/{database}"
            name = f"cell{n}"
            cells.append(StaticCell(name=name, uuid=cell_uuid(name), database_url=address))
        yield Proxied(data, tuple(processes), tuple(cells))
    finally:
        _stop(processes)


def calibrate(delay_s: float, rounds: int = 300) -> float:
    """The round trip a proxy delaying ``delay_s`` each way adds, measured (p50, ms), over
    the direct one: small packets to a loopback echo server."""

    def rtt(port: int) -> float:
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                conn.sendall(b"x" * 64)
                conn.recv(4096)
                times.append(time.perf_counter() - started)
        return statistics.median(times) * 1000

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]

        def echo() -> None:
            for _ in range(3):  # the direct client, the proxy's start probe, the proxy
                conn, _ = listener.accept()
                with conn:
                    while data := conn.recv(4096):
                        conn.sendall(data)

        threading.Thread(target=echo, daemon=True).start()
        direct = rtt(port)
        process, listen = _proxy(("127.0.0.1", port), delay_s)
        try:
            through = rtt(listen)
        finally:
            _stop([process])
    return through - direct
