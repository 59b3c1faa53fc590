#!/usr/bin/env python3
"""A private Redis with Sentinel on loopback: a primary, a replica and three Sentinels
(Debian's ``redis-server`` and ``redis-sentinel``), each on a free port under one directory.

    scripts/redissentinel.py serve [--dir DIR] [--password PW]   # until SIGINT/SIGTERM

prints the tooz-style URL (what kolla writes) and the ``redis+sentinel://`` one, and the
``redis-cli`` command that fails the primary over (``SENTINEL FAILOVER``). The tests use
:class:`SentinelSet` directly. Like kolla's deployment, the Redis servers require the
password (``requirepass``/``masterauth``) and the Sentinels do not (they reach the primary
with ``auth-pass``).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import redis
from serverproc import ServerError, free_port, kill_and_wait

__all__ = ["SERVICE", "SentinelSet", "binaries_missing", "sentinel_set"]

SERVICE = "cellgate"
READY_TIMEOUT_S = 30.0
FAILOVER_TIMEOUT_S = 30.0


def binaries_missing() -> list[str]:
    """The Debian binaries this needs that are not on PATH."""
    return [name for name in ("redis-server", "redis-sentinel") if shutil.which(name) is None]


@dataclass
class _Node:
    name: str
    port: int
    process: subprocess.Popen[bytes]


@dataclass
class SentinelSet:
    """The five servers (see the module docstring), started by :meth:`start`."""

    root: Path
    password: str = "cellgate-sentinel"
    nodes: dict[str, _Node] = field(default_factory=dict)

    @property
    def sentinel_ports(self) -> list[int]:
        return [self.nodes[f"sentinel{i}"].port for i in (1, 2, 3)]

    def tooz_url(self) -> str:
        """kolla's form: the first Sentinel as host, the others as ``sentinel_fallback``."""
        first, *others = self.sentinel_ports
        fallback = "".join(f"&sentinel_fallback=127.0.0.1:{port}" for port in others)
        return (
            f"redis://default:{self.password}@127.0.0.1:{first}?sentinel={SERVICE}{fallback}&db=0"
        )

    def sentinel_url(self) -> str:
        """The ``redis+sentinel://`` form."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://:{self.password}@{hosts}/{SERVICE}/0"

    def _spawn(self, name: str, argv: list[str]) -> _Node:
        port = free_port()
        workdir = self.root / name
        workdir.mkdir(parents=True, exist_ok=True)
        log = (workdir / "log").open("ab")
        process = subprocess.Popen(
            [*argv, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        node = _Node(name, port, process)
        self.nodes[name] = node
        return node

    def client(self, name: str) -> redis.Redis:
        """A client of one server (Sentinels need no password)."""
        password = None if name.startswith("sentinel") else self.password
        return redis.Redis(port=self.nodes[name].port, password=password, socket_timeout=2)

    def start(self) -> None:
        """Start the primary, its replica and three Sentinels; return once the replica is in
        sync and every Sentinel knows the replica and the two other Sentinels."""
        auth = ["--requirepass", self.password, "--masterauth", self.password]
        # No persistence; a replica syncs at once (Redis 7 waits 5 s for more replicas).
        plain = ["--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0"]
        primary = self._spawn("primary", ["redis-server", *plain, *auth])
        self._wait(lambda: self._ping("primary"), "the primary to answer")
        self._spawn(
            "replica",
            ["redis-server", *plain, *auth, "--replicaof", "127.0.0.1", str(primary.port)],
        )
        self._wait(lambda: self._replication("replica") == "up", "the replica to sync")
        for i in (1, 2, 3):
            config = self.root / f"sentinel{i}.conf"
            config.write_text(
                f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 2\n"
                f"sentinel auth-pass {SERVICE} {self.password}\n"
                f"sentinel down-after-milliseconds {SERVICE} 2000\n"
                # Also how long the old primary stays one after a failover (kolla: 60 s).
                f"sentinel failover-timeout {SERVICE} 3000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self._spawn(f"sentinel{i}", ["redis-sentinel", str(config)])
        self._wait(self._sentinels_agree, "the Sentinels to see the replica and each other")

    def primary_port(self, sentinel: str = "sentinel1") -> int:
        """The primary's port, as ``sentinel`` tells it."""
        address = self.client(sentinel).sentinel_get_master_addr_by_name(SERVICE)
        if not isinstance(address, tuple):
            raise ServerError(f"{sentinel} knows no primary of {SERVICE}: {address!r}")
        return int(address[1])

    def role(self, name: str) -> str:
        info = self.client(name).info("replication")
        return str(info["role"])

    def failover(self) -> int:
        """``SENTINEL FAILOVER``, then wait until every Sentinel names the new primary, it
        answers as one and the old one replicates from it; the new primary's port."""
        before = self.primary_port()
        self.client("sentinel1").sentinel_failover(SERVICE)

        def done() -> bool:
            ports = {self.primary_port(f"sentinel{i}") for i in (1, 2, 3)}
            if len(ports) != 1 or before in ports:
                return False
            (after,) = ports
            new = next(n for n in self.nodes.values() if n.port == after).name
            old = next(n for n in self.nodes.values() if n.port == before).name
            return self.role(new) == "master" and self._replication(old) == "up"

        self._wait(done, "the failover", FAILOVER_TIMEOUT_S)
        return self.primary_port()

    def kill_primary(self) -> int:
        """SIGKILL the primary (a crash); wait until the Sentinels have promoted the replica
        (after ``down-after-milliseconds``) and it answers as primary; its port."""
        before = self.primary_port()
        victim = next(n for n in self.nodes.values() if n.port == before)
        kill_and_wait(victim.process.pid, signal.SIGKILL)
        victim.process.wait(timeout=10)
        del self.nodes[victim.name]  # gone for good: not restarted

        def promoted() -> bool:
            ports = {self.primary_port(f"sentinel{i}") for i in (1, 2, 3)}
            if len(ports) != 1 or before in ports:
                return False
            (after,) = ports
            new = next(n for n in self.nodes.values() if n.port == after).name
            return self.role(new) == "master"

        self._wait(promoted, "the promotion", FAILOVER_TIMEOUT_S)
        return self.primary_port()

    def close(self) -> None:
        """Kill every server (safe to call twice)."""
        for node in self.nodes.values():
            if node.process.poll() is None:
                kill_and_wait(node.process.pid, signal.SIGKILL)
            node.process.wait(timeout=10)
        self.nodes.clear()

    def _ping(self, name: str) -> bool:
        try:
            return bool(self.client(name).ping())
        except redis.RedisError:
            return False

    def _replication(self, name: str) -> str | None:
        try:
            info = self.client(name).info("replication")
        except redis.RedisError:
            return None
        if info.get("role") != "slave":
            return None
        return str(info.get("master_link_status"))

    def _sentinels_agree(self) -> bool:
        for i in (1, 2, 3):
            try:
                state = self.client(f"sentinel{i}").sentinel_master(SERVICE)
            except redis.RedisError:
                return False
            if not isinstance(state, dict):
                return False
            if int(state["num-slaves"]) < 1 or int(state["num-other-sentinels"]) < 2:
                return False
        return True

    def _wait(
        self, ready: Callable[[], bool], what: str, timeout_s: float = READY_TIMEOUT_S
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            for node in self.nodes.values():
                if node.process.poll() is not None:
                    log = (self.root / node.name / "log").read_text(errors="replace")
                    raise ServerError(f"{node.name} exited: {log[-2000:]}")
            if time.monotonic() > deadline:
                raise ServerError(f"timed out waiting for {what} ({timeout_s:g} s)")
            time.sleep(0.1)


@contextmanager
def sentinel_set(
    root: Path | None = None, password: str = "cellgate-sentinel"
) -> Iterator[SentinelSet]:
    """A started :class:`SentinelSet` (in a temporary directory unless ``root``), closed
    on exit."""
    with tempfile.TemporaryDirectory(prefix="cellgate-sentinel-") as tmp:
        servers = SentinelSet(root or Path(tmp), password)
        try:
            servers.start()
            yield servers
        finally:
            servers.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="start the five servers until SIGINT/SIGTERM")
    serve.add_argument("--dir", type=Path, help="where they keep their files (default: temp)")
    serve.add_argument("--password", default="cellgate-sentinel")
    args = parser.parse_args(argv)
    if missing := binaries_missing():
        print(f"missing {', '.join(missing)} (apt-get install redis-sentinel)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with sentinel_set(args.dir, args.password) as servers:
        print(f"CELLGATE_REDIS_URL='{servers.tooz_url()}'")
        print(f"CELLGATE_REDIS_URL='{servers.sentinel_url()}'")
        print(f"failover: redis-cli -p {servers.sentinel_ports[0]} SENTINEL FAILOVER {SERVICE}")
        sys.stdout.flush()
        with suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
