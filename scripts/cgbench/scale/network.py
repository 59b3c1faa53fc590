"""Cells on other hosts, on one machine: every cell database of a data set behind its own
:class:`~delayproxy.DelayProxy`, delaying each chunk each way, and the gateway pointed at
the proxies through static cells (``CELLGATE_CELLS``; ``cell_mappings`` stay as seeded).

Linux's ``netem`` would delay in the kernel, exactly and without CPU in user space, but this
machine's kernel has no ``sch_netem`` ("Specified qdisc kind is unknown"); the proxy's delay
line is exact to about 0.1-0.25 ms here (:func:`calibrate` measures it, and the report
prints it) and its CPU shares the two cores with the gateway. The same proxies freeze a
cell (its host stops answering) for the breaker figure.
"""

from __future__ import annotations

import contextlib
import json
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from delayproxy import DelayProxy

from cells.seed import cell_uuid
from cgbench.scale.data import DataSet
from gateway.settings import StaticCell

__all__ = ["Proxied", "calibrate", "proxied"]


@dataclass(frozen=True)
class Proxied:
    """A data set's cells behind proxies: how a gateway reaches them."""

    data: DataSet
    proxies: tuple[DelayProxy, ...]
    cells: tuple[StaticCell, ...]

    @property
    def env(self) -> dict[str, str]:
        """``cellgate serve``'s settings for these cells (and a deadline of ``timeout_s``)."""
        return {"CELLGATE_CELLS": json.dumps([c.model_dump() for c in self.cells])}


def _host_port(url: str) -> tuple[str, int, str]:
    base, _, database = url.rpartition("/")
    host, _, port = base.rpartition("@")[2].rpartition(":")
    return host, int(port or 5432), database


@contextlib.contextmanager
def proxied(data: DataSet, delay_s: float) -> Iterator[Proxied]:
    """A proxy per cell of ``data`` delaying ``delay_s`` each way; closed on exit."""
    proxies: list[DelayProxy] = []
    cells: list[StaticCell] = []
    try:
        for n, url in enumerate(data.cell_urls, 1):
            host, port, database = _host_port(url)
            proxy = DelayProxy(host, port, delay_s, both_ways=True).start()
            proxies.append(proxy)
            address = f"postgresql://postgres@127.0.0.1:{proxy.port}/{database}"
            cells.append(
                StaticCell(name=f"cell{n}", uuid=cell_uuid(f"cell{n}"), database_url=address)
            )
        yield Proxied(data, tuple(proxies), tuple(cells))
    finally:
        for proxy in proxies:
            proxy.close()


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
            for _ in range(2):
                conn, _ = listener.accept()
                with conn:
                    while data := conn.recv(4096):
                        conn.sendall(data)

        threading.Thread(target=echo, daemon=True).start()
        direct = rtt(port)
        proxy = DelayProxy("127.0.0.1", port, delay_s, both_ways=True).start()
        try:
            through = rtt(proxy.port)
        finally:
            proxy.close()
    return through - direct
