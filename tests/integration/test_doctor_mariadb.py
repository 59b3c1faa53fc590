"""``cellgate doctor`` on a MariaDB cell: the machine's MariaDB (127.0.0.1:3306, root without
a password), a database of its own in ``utf8mb3_general_ci`` with Nova's cell tables
(``create_all`` of :data:`cells.schema.cell_metadata`) and a few instances.

The doctor's session is read-only (an INSERT is refused, error 1792); it reports the server
version, the collation, the schema, the count, and which orders Nova's indexes serve. Its
verdicts are checked against MariaDB's own optimizer on the gateway's own ``ORDER BY``
(strings as ``CAST(col AS BINARY)``): ``EXPLAIN`` sorts (filesort) where the doctor says
partial, and still does once the recommended ``ALTER TABLE`` ran (run here by the test,
never by the doctor): no plain column index orders ``uuid`` by code point, and the doctor
says so (partial, not served).

Uses the gateway's own MySQL driver (:data:`cells.urls.MYSQL_DRIVER`, a dependency).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
from sqlalchemy import insert, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from cells.doctor import DatabaseReport, Diagnosis, examine_cell, read_only_engine_for
from cells.doctor.indexes import Serving, listing_orders
from cells.schema import cell_metadata, instances
from cells.urls import MYSQL_DRIVER
from gateway.doctor import render_text

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

SERVER = "127.0.0.1:3306"
TIMEOUT_S = 10.0


@pytest.fixture
async def cell_url() -> AsyncIterator[URL]:
    """A fresh utf8mb3_general_ci database holding Nova's cell tables and 3 instances."""
    name = f"cg_doctor_{uuid.uuid4().hex[:12]}"
    server = make_url(f"{MYSQL_DRIVER}://root@{SERVER}/")
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(
                text(f"CREATE DATABASE {name} CHARACTER SET utf8mb3 COLLATE utf8mb3_general_ci")
            )
    except (OSError, DBAPIError) as exc:
        await admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"MariaDB at {SERVER} is required under CI=true: {exc}")
        pytest.skip(f"no MariaDB at {SERVER}: {exc}")
    url = server.set(database=name)
    writer = create_async_engine(url)
    try:
        async with writer.begin() as conn:
            await conn.run_sync(cell_metadata.create_all)
            created = datetime(2026, 1, 1, 12, 0, 0)
            rows = [
                {"uuid": str(uuid.uuid4()), "display_name": n, "created_at": created, "deleted": d}
                for n, d in (("a", 0), ("B", 0), ("c", 7))
            ]
            await conn.execute(insert(instances), rows)
        yield url
    finally:
        await writer.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        await admin.dispose()


async def _explain_sorts(engine: AsyncEngine, index: str) -> bool:
    """Whether MariaDB sorts (filesort) the default listing read through ``index``."""
    query = (
        f"EXPLAIN SELECT id FROM instances FORCE INDEX ({index}) WHERE deleted = 0 "
        "ORDER BY created_at DESC, CAST(uuid AS BINARY) ASC LIMIT 10"
    )
    async with engine.connect() as conn:
        row = (await conn.execute(text(query))).mappings().one()
    return "filesort" in str(row["Extra"] or "")


async def _examine(url: URL) -> DatabaseReport:
    engine = read_only_engine_for(url, TIMEOUT_S)
    try:
        return await examine_cell(engine, "cell1", listing_orders(), TIMEOUT_S)
    finally:
        await engine.dispose()


async def test_doctor_on_a_mariadb_cell(cell_url: URL) -> None:
    report = await _examine(cell_url)
    print(render_text(Diagnosis(DatabaseReport("API database", reachable=True), (report,))))
    assert report.reachable
    assert report.errors == ()
    assert report.backend == "mysql"
    assert "MariaDB" in (report.version or "")
    assert report.collation == "utf8mb3_general_ci"
    assert report.schema_problems == ()
    assert report.instances == 2  # deleted = 0 only
    verdicts = {o.order: o for o in report.orders}
    default = verdicts["created_at desc"]
    assert default.coverage.serving is Serving.PARTIAL
    assert default.coverage.index == "instances_deleted_created_at_idx"
    assert all(o.coverage.serving is Serving.MISSING for o in report.orders[1:])
    assert all(
        (o.statement or "").startswith("ALTER TABLE instances ADD INDEX")
        and (o.statement or "").endswith("ALGORITHM=INPLACE, LOCK=NONE")
        for o in report.orders
    )

    # The optimizer agrees: partial means MariaDB sorts; under the listing's binary string
    # order the advice cannot remove the sort, and the doctor still says partial.
    writer = create_async_engine(cell_url, isolation_level="AUTOCOMMIT")
    try:
        assert await _explain_sorts(writer, "instances_deleted_created_at_idx")
        async with writer.connect() as conn:
            await conn.execute(text(default.statement or ""))
        assert await _explain_sorts(writer, "instances_deleted_created_at_desc_uuid_idx")
    finally:
        await writer.dispose()
    after = {o.order: o for o in (await _examine(cell_url)).orders}
    assert after["created_at desc"].coverage.serving is Serving.PARTIAL


async def test_the_doctors_session_cannot_write(cell_url: URL) -> None:
    engine = read_only_engine_for(cell_url, TIMEOUT_S)
    try:
        async with engine.connect() as conn:
            with pytest.raises(DBAPIError, match="1792"):
                await conn.execute(text("DELETE FROM instances"))
            assert await conn.scalar(text("SELECT count(*) FROM instances")) == 3
    finally:
        await engine.dispose()


async def test_an_unreachable_mariadb_cell_is_reported(cell_url: URL) -> None:
    closed = cell_url.set(port=1)  # nothing listens on port 1
    engine = read_only_engine_for(closed, 2.0)
    try:
        report = await examine_cell(engine, "cell9", listing_orders(), 2.0)
    finally:
        await engine.dispose()
    assert not report.reachable
    assert report.errors
    print(report.errors)
