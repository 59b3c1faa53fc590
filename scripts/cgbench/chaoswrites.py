"""The chaos run's writer: Nova's inserts and soft-deletes, in random cells, under the faults.

``scripts/chaos --writes R`` runs :func:`write` for the whole load: ``R`` writes a second,
half inserts, half soft-deletes, each in a random cell, straight to the cell's PostgreSQL
server (not through its delay proxy: the proxy is the gateway's path, and a slowed or cut
cell must not slow the writer down).

Written as the churn tests write (``tests/integration/test_nova_tables.py``, ``Writer``):

* an insert writes the ``instance_mappings`` row in the API database first (Nova's API
  does, before the cell has the instance), then, in one cell transaction, a clone of a live
  instance of that cell with a new uuid, name and hostname (half the time a new
  ``created_at``) and clones of its ``instance_extra`` and ``instance_info_caches`` rows;
* a soft-delete sets ``deleted = id``, ``deleted_at``, ``vm_state = 'deleted'`` and then
  queues the mapping for delete (the mapping stays).

Sort keys never change, so a row's place in the listing is fixed while it lives.

A write whose cell (or the API database) is stopped or frozen fails within
:data:`WRITE_TIMEOUT_S` and is recorded as failed, never retried: the run goes on. A failed
write may still have happened (a COMMIT sent to a server that froze before answering is
applied when it thaws); :mod:`cgbench.chaoschurn` decides from the cells' final state.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid as uuid_module
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Literal

import asyncpg

from cells.schema import instance_extra, instance_info_caches, instances
from cgbench.chaoscheck import Oracle, Row, read_instances

__all__ = ["Write", "WriteKind", "read_final", "write"]

WriteKind = Literal["insert", "delete"]
CONNECT_TIMEOUT_S = 1.0
WRITE_TIMEOUT_S = 2.5  # a frozen server costs this, once per write sent to it
MAX_IN_FLIGHT = 8
SHIFT_S = 86_400 * 30  # an insert's created_at moves up to this far from its source's

# Every column but the serial id; the cloned values are replaced by name (below).
_INSTANCE_COLUMNS = [c.name for c in instances.columns if c.name != "id"]
_REPLACED = {
    "uuid": "$2",
    "display_name": "$3",
    "hostname": "$3",
    "created_at": "created_at + make_interval(secs => $4)",
    "updated_at": "NULL",
}
_INSERT_INSTANCE = (
    f"INSERT INTO instances ({', '.join(_INSTANCE_COLUMNS)}) "
    f"SELECT {', '.join(_REPLACED.get(c, c) for c in _INSTANCE_COLUMNS)} "
    "FROM instances WHERE uuid = $1 AND deleted = 0"
)


def _clone_side(table: str, columns: list[str]) -> str:
    cols = [c for c in columns if c != "id"]
    values = ["$2" if c == "instance_uuid" else c for c in cols]
    return (
        f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(values)} "
        f"FROM {table} WHERE instance_uuid = $1 AND deleted = 0"
    )


_INSERT_SIDES = [
    _clone_side(t.name, [c.name for c in t.columns]) for t in (instance_extra, instance_info_caches)
]


@dataclass(frozen=True)
class Write:
    """One write attempted: its kind, instance and cell, when it was sent and when it
    ended (seconds from the start of the load), and why it failed (None: it committed)."""

    kind: WriteKind
    uuid: str
    cell: str
    start_s: float
    end_s: float
    error: str | None = None
    mapping_written: bool = False  # an insert's mapping row committed (even if the cell failed)


class _Writer:
    """What the writer knows: the live instances of each cell it may clone or delete."""

    def __init__(
        self, cells: Mapping[str, str], api_url: str, cell_ids: Mapping[str, int], oracle: Oracle
    ) -> None:
        self.cells = dict(cells)
        self.api_url = api_url
        self.cell_ids = dict(cell_ids)
        self.live: dict[str, list[str]] = {name: [] for name in cells}
        for r in oracle.rows:
            self.live[r.cell].append(r.uuid)
        self.done: list[Write] = []

    def _pick(self, rng: random.Random) -> tuple[str, str] | None:
        cells = [c for c, uuids in self.live.items() if uuids]
        if not cells:
            return None
        cell = rng.choice(cells)
        return cell, rng.choice(self.live[cell])

    async def insert(self, rng: random.Random, clock: _Clock) -> None:
        picked = self._pick(rng)
        if picked is None:
            return
        cell, source = picked
        new = str(uuid_module.UUID(int=rng.getrandbits(128), version=4))
        name = f"chaos-{new[:8]}"
        shift = float(rng.randint(-SHIFT_S, SHIFT_S)) if rng.random() < 0.5 else 0.0
        start, mapped = clock(), False
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                async with _connected(self.cells[cell]) as conn:
                    # The mapping's created_at is the instance's, as seeding writes it:
                    # a 2.69 stub is placed by it, where the instance's row would be.
                    owner = await conn.fetchrow(
                        "SELECT project_id, user_id, created_at + make_interval(secs => $2) "
                        "AS created_at FROM instances WHERE uuid = $1 AND deleted = 0",
                        source, shift,
                    )  # fmt: skip
                    if owner is None:
                        raise LookupError(f"source {source} deleted meanwhile")
                    await self._map(new, cell, owner)
                    mapped = True
                    async with conn.transaction():
                        done = await conn.execute(_INSERT_INSTANCE, source, new, name, shift)
                        if done != "INSERT 0 1":  # its source was deleted since
                            raise LookupError(f"source {source}: {done}")
                        for side in _INSERT_SIDES:
                            await conn.execute(side, source, new)
        except (OSError, TimeoutError, asyncpg.PostgresError, LookupError) as exc:
            self.done.append(Write("insert", new, cell, start, clock(), _why(exc), mapped))
            return
        self.live[cell].append(new)
        self.done.append(Write("insert", new, cell, start, clock(), None, True))

    async def _map(self, uuid: str, cell: str, owner: asyncpg.Record) -> None:
        async with _connected(self.api_url) as api:
            await api.execute(
                "INSERT INTO instance_mappings (instance_uuid, cell_id, project_id, user_id, "
                "queued_for_delete, created_at) VALUES ($1, $2, $3, $4, false, $5)",
                uuid, self.cell_ids[cell], owner["project_id"], owner["user_id"],
                owner["created_at"],
            )  # fmt: skip

    async def delete(self, rng: random.Random, clock: _Clock) -> None:
        picked = self._pick(rng)
        if picked is None:
            return
        cell, victim = picked
        # Out of the live list first: no second write picks it while this one runs. A
        # failed delete leaves it out too: it may yet be applied (see the module's doc).
        self.live[cell].remove(victim)
        start = clock()
        try:
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                async with _connected(self.cells[cell]) as conn:
                    await conn.execute(
                        "UPDATE instances SET deleted = id, deleted_at = now(), "
                        "updated_at = now(), vm_state = 'deleted', task_state = NULL "
                        "WHERE uuid = $1 AND deleted = 0",
                        victim,
                    )
                async with _connected(self.api_url) as api:
                    await api.execute(
                        "UPDATE instance_mappings SET queued_for_delete = true, "
                        "updated_at = now() WHERE instance_uuid = $1",
                        victim,
                    )
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            self.done.append(Write("delete", victim, cell, start, clock(), _why(exc)))
            return
        self.done.append(Write("delete", victim, cell, start, clock()))


class _Clock:
    def __init__(self, t0: float) -> None:
        self.t0 = t0

    def __call__(self) -> float:
        return time.monotonic() - self.t0


@asynccontextmanager
async def _connected(url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection for one write: closed after it, dropped (never waited on) after a
    failure, since its server may be frozen."""
    # devstack's servers run with synchronous_commit off: a cell stopped (-m immediate)
    # right after a COMMIT would lose a write we count as done. On for the writer's own.
    conn = await asyncpg.connect(
        url, timeout=CONNECT_TIMEOUT_S, command_timeout=WRITE_TIMEOUT_S,
        server_settings={"synchronous_commit": "on"},
    )  # fmt: skip
    try:
        yield conn
    except BaseException:
        conn.terminate()
        raise
    await conn.close(timeout=CONNECT_TIMEOUT_S)


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


async def _cell_ids(api_url: str) -> dict[str, int]:
    conn = await asyncpg.connect(api_url, timeout=30)
    try:
        found = await conn.fetch("SELECT id, name FROM cell_mappings")
        return {r["name"]: int(r["id"]) for r in found}
    finally:
        await conn.close()


async def write(
    rate: float,
    cells: Mapping[str, str],
    api_url: str,
    oracle: Oracle,
    seed: int,
    t0: float,
    stop: asyncio.Event,
) -> list[Write]:
    """Write ``rate`` times a second to ``cells`` (name → direct URL) and the API database
    until ``stop`` is set; every write attempted, in the order they ended."""
    writer = _Writer(cells, api_url, await _cell_ids(api_url), oracle)
    rng = random.Random(seed * 7919 + 1)
    clock = _Clock(t0)
    slots = asyncio.Semaphore(MAX_IN_FLIGHT)
    tasks: set[asyncio.Task[None]] = set()

    async def one(kind: WriteKind) -> None:
        async with slots:
            if kind == "insert":
                await writer.insert(rng, clock)
            else:
                await writer.delete(rng, clock)

    n = 0
    while not stop.is_set():
        task = asyncio.create_task(one("insert" if rng.random() < 0.5 else "delete"))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        n += 1
        # Paced from t0, not from the last write: a slow write does not slow the rate.
        due = t0 + n / rate
        with suppress(TimeoutError):  # not stopped yet: time for the next write
            await asyncio.wait_for(stop.wait(), max(0.0, due - time.monotonic()))
    await asyncio.gather(*tasks)
    return writer.done


async def read_final(cells: Mapping[str, str]) -> dict[str, tuple[Row, bool]]:
    """Every instance of ``cells`` after the run, deleted ones too: uuid → (row, live)."""
    return {row.uuid: (row, live) for row, live in await read_instances(cells)}
