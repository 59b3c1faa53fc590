"""A restarted cell server costs one failed call, not one per pooled connection.

The chaos run (issue #22) found a stopped-then-restarted cell kept out of listings for
~18 s after it was back, with a 5 s breaker cool-down: every idle pooled connection had
died with the old server, and each failed the probe that followed a cool-down, opening the
breaker again. Once one call finds the cell's connection lost, the executor drops the idle
connections handed out before (``Executor.distrust_idle``). A real private PostgreSQL
server, stopped (``immediate``: a crash) and started again.
"""

from __future__ import annotations

import pytest

from cells import CellFailed, CellRows, EngineOptions
from cells.registry import open_executor
from cells.session import CellSession
from tests.support.dbservers import PgServers, require_pg

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

POOLED = 3


async def test_a_restarted_server_costs_one_failed_call() -> None:
    require_pg()
    with PgServers(1) as servers:
        server = servers.servers[0]
        options = EngineOptions(pool_size=POOLED, max_overflow=0, command_timeout_s=5)
        executor = open_executor(server.database_url("postgres"), options, "cell1")
        try:
            warm = [CellSession("cell1", executor, 5.0) for _ in range(POOLED)]
            assert all([isinstance(await s.ping(), CellRows) for s in warm])
            for s in warm:
                await s.close()  # POOLED idle connections, all to the old server
            server.stop("immediate")
            server.start()
            outcomes = []
            for _ in range(POOLED):
                session = CellSession("cell1", executor, 5.0)
                outcomes.append(await session.ping())
                await session.close()
        finally:
            await executor.dispose()
    assert isinstance(outcomes[0], CellFailed)  # the first finds the connection lost
    assert [type(o) for o in outcomes[1:]] == [CellRows] * (POOLED - 1)
