"""cellgate benchmark: one run, one data set, every baseline side by side.

    scripts/bench            # the real run (400k instances, < 15 minutes on 2 cores)
    scripts/bench --quick    # a smoke run (4k instances, well under a minute)

What it does, in order (all against 127.0.0.1 only; every phase is bounded in time):

1. Seeds the *same* instances twice with one ``SeedPlan`` seed: into 8 cell databases
   (``<prefix>8_cell1..8`` + ``<prefix>_api8``) and into ONE cell database
   (``<prefix>1_cell1`` + ``<prefix>_api1``). The generator draws every value from one
   ``Random(seed)`` whatever the cell count, so both sets hold identical instances (uuids,
   timestamps, projects...; only the per-cell autoincrement ``id`` differs). The walks
   below check that both answer the same uuids in the same order.
2. In-process pair (no HTTP, no rendering): the sharded gateway's ``list_page`` vs a
   Nova-style lister (serial per-cell batches of ``max(min(int(limit/k*1.1), limit), 100)``
   rows, marker re-resolution per page, ``heapq.merge``-style merge with a cmp-style Python
   comparison), both on the same engines; plus the unsharded gateway for reference.
3. OFFSET vs keyset: ``ORDER BY created_at DESC, uuid LIMIT n OFFSET m`` on the unsharded
   cell vs the keyset query starting at the same depth.
4. Two ``cellgate serve`` subprocesses (sharded, unsharded) on free ports: first-page latency
   (requests alternate between the two servers), 20-page walks, throughput at a fixed
   concurrency, per-request cell queries/rows from ``/metrics``, CPU per request, a locust
   cross-check (``scripts/locustfile.py``) and a py-spy profile of the sharded server.
5. Writes ``docs/bench/single-host.md`` and PNG plots beside it (``--quick`` writes to a
   temporary directory unless ``--out`` is given), stops the servers, drops the databases
   (``--keep`` keeps them; ``--reuse`` skips seeding when kept databases match).

Modules: ``profiles`` (what a run does), ``datasets`` (seeding), ``httpconn`` and
``metrics`` (talking to a gateway), ``servers`` (``cellgate serve`` subprocesses),
``novastyle`` (the Nova-style lister), ``inprocess``, ``offset`` and ``phases`` (the
measurements), ``load`` and ``pyspy`` (closed-loop load, locust, profiles), ``results``
(typed results), ``ratios``, ``plots``, ``environment`` and ``report``
(docs/bench/single-host.md; BENCHMARKS.md is ``scripts/scalebench``'s, :mod:`cgbench.scale`).
"""

from pathlib import Path

__all__ = ["REPO"]

REPO = Path(__file__).resolve().parents[2]
