"""Replicas (and workers) that share what they learn: "this cell is failing", through Redis.

Without it, N gateway processes each pay a dead cell's deadline before their own breaker
opens, and once more per cool-down. With Redis configured, every process runs one
:class:`SharedBreakers` loop that:

1. publishes what its own breakers found out (:data:`cells.BreakerEvent`: ``open`` after a
   failed call or probe, ``probe`` when one starts, ``close`` when one succeeded) as a
   short-lived key per cell (:func:`cache.breaker_key`, value ``<process id>:<events>:
   <event>``, expiring after the cell's cool-down) — at once: the breaker wakes the loop;
2. every ``interval_s``, reads every cell's key in one ``MGET``, and gives each value it
   has not seen yet, written by another process, to that cell's client
   (:meth:`cells.CellClient.peer_news`): a peer's ``open`` opens this process's breaker
   (the cell is skipped at once, no deadline paid), its ``probe`` holds this process's
   own probe off for a cool-down, its ``close`` makes this process's next call its own
   probe. A peer never closes a breaker: each process still probes on its own.

A key, not pub/sub: one ``MGET`` per interval works the same on a single Redis, Sentinel's
primary and a cluster (the keys share a hash tag), a process that starts or reconnects
late still finds a failure less than one cool-down old, and the calls go through the
store's timeout and are skipped while its breaker is open (with Redis down each process
stays on its own, as without Redis); they never move that breaker nor count in the Redis
metrics, which describe the requests. A peer's ``close`` never
closes a breaker: a stale "it works again" would send requests into a dead cell, whereas
a probe sooner costs at most one deadline; a stale "it is failing" costs at most one
cool-down of a cell skipped.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from cache import breaker_key
from cells import BreakerEvent, CellClient

__all__ = ["PeerStore", "ShareDirection", "SharedBreakers"]

log = logging.getLogger(__name__)

ShareDirection = Literal["sent", "received"]
_EVENTS: dict[bytes, BreakerEvent] = {b"open": "open", b"probe": "probe", b"close": "close"}


class PeerStore(Protocol):
    """What sharing needs of a store (:class:`cache.RedisStore`; :class:`cache.MemoryStore`
    in unit tests, standing for one Redis seen by several processes)."""

    async def read_shared(self, keys: list[str]) -> list[bytes | None] | None: ...

    async def write_shared(self, key: str, value: bytes, ttl_s: float) -> None: ...


class SharedBreakers:
    """One process's side of the sharing: :meth:`tick` once, :meth:`run` forever."""

    def __init__(
        self,
        store: PeerStore,
        clients: Sequence[CellClient],
        prefix: str,
        interval_s: float,
        on_share: Callable[[str, ShareDirection], None] | None = None,
        process_id: str | None = None,
    ) -> None:
        self.store = store
        self.clients = list(clients)
        self.interval_s = interval_s
        self.process_id = process_id or uuid.uuid4().hex
        self._on_share = on_share or (lambda label, direction: None)
        self._keys = [breaker_key(prefix, c.cell.uuid) for c in self.clients]
        # Nothing published yet: what start-up found (a cell that did not answer) goes too.
        self._published = [0] * len(self.clients)
        self._seen: list[bytes | None] = [None] * len(self.clients)
        self._wake = asyncio.Event()
        for client in self.clients:
            client.watch_breaker(self._wake.set)

    async def publish(self) -> None:
        """Publish what this process's breakers found out since the last time."""
        for i, client in enumerate(self.clients):
            events, event = client.breaker_news
            if events == self._published[i] or event is None:
                continue
            self._published[i] = events
            value = f"{self.process_id}:{events}:{event}".encode()
            self._seen[i] = value
            await self.store.write_shared(self._keys[i], value, client.breaker_cooldown_s)
            self._on_share(client.cell.label, "sent")

    async def tick(self) -> None:
        """Publish this process's news, then take in the news of its peers."""
        await self.publish()
        values = await self.store.read_shared(self._keys)
        if values is None:  # Redis did not answer: stay on our own until it does
            return
        own = f"{self.process_id}:".encode()
        for i, found in enumerate(values):
            if found is None or found == self._seen[i]:
                continue
            self._seen[i] = found
            event = _EVENTS.get(found.rpartition(b":")[2])
            client = self.clients[i]
            if event is None or found.startswith(own) or not client.peer_news(event):
                continue
            self._on_share(client.cell.label, "received")
            if event == "open":
                log.warning("cell %s: breaker opened, a peer found it failing", client.cell.label)

    async def run(self) -> None:
        """:meth:`tick` every ``interval_s``, and :meth:`publish` as soon as a breaker has
        news, until cancelled; an error is logged, never fatal (the next tick tries
        again)."""
        while True:
            try:
                await self.tick()
            except Exception:
                log.exception("sharing breaker state failed")
            deadline = asyncio.get_running_loop().time() + self.interval_s
            while (left := deadline - asyncio.get_running_loop().time()) > 0:
                try:
                    async with asyncio.timeout(left):
                        await self._wake.wait()
                except TimeoutError:
                    break
                self._wake.clear()
                try:
                    await self.publish()
                except Exception:
                    log.exception("sharing breaker state failed")
