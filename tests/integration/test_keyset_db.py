"""Keyset SQL on real databases (SQLite files, the real PostgreSQL and MariaDB), against an
oracle.

Every walk (``WHERE after_position(...) ORDER BY order_by(...) LIMIT n``, then the next page
from the last row's position) and every multi-cell listing must return exactly what a
Python sort of all rows gives. The oracle compares rows with explicit per-key rules through
``functools.cmp_to_key``; it never calls :func:`cells.order.key_function`.

The PostgreSQL databases are created with an ICU ``en-US`` default collation (where
``"a" < "B"``) and columns without a collation (as Nova creates them), so the queries'
``COLLATE "C"`` is what makes SQL agree with Python. The MariaDB databases are
``utf8_general_ci`` with Nova's ``utf8`` tables (where ``'web' = 'Web' = 'web '``), so the
queries' ``CAST(col AS BINARY)`` does that there; their rows hold only what a ``utf8``
(utf8mb3) ``DATETIME`` column can: characters of the BMP, whole seconds.

Rows come from ``random.Random``; the seed is printed and can be pinned with
``CELLGATE_TEST_SEED=<n>``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import os
import random
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Select, event, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cells.client import CellClient
from cells.filters import SOFT_DELETED, InstanceFilters
from cells.keyset import after_position, order_by
from cells.listing import ListQuery, list_instances
from cells.order import Direction, SortSpec, SqlValue
from cells.registry import Cell, EngineOptions, create_engine_for, executor_for
from cells.schema import cell_metadata, instances
from cells.seeding import drop_database, reset_database
from cells.walk import CellCursor
from tests.support.oracle import regex_matches
from tests.support.services import MYSQL_BASE
from tests.support.sort_oracle import KIND_OF, oracle_sorted

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("CELLGATE_TEST_SEED") or random.SystemRandom().randrange(2**32))
ROWS = 100

OracleRow = Mapping[str, SqlValue]

KINDS: dict[str, str] = {
    name: KIND_OF[name]
    for name in (
        "uuid",
        "project_id",
        "display_name",
        "hostname",
        "host",
        "vm_state",
        "task_state",
        "power_state",
        "progress",
        "deleted",
        "locked",
        "launched_at",
        "created_at",
        "updated_at",
    )
}
SORT_COLUMNS = sorted(KINDS)


# --- the oracle -----------------------------------------------------------------------------


def matches(filters: InstanceFilters, row: OracleRow, mysql: bool = False) -> bool:
    """The filters this file uses, applied in Python (Nova's meaning, written out; regular
    expressions as Nova's on MySQL when ``mysql``)."""
    if filters.project_id is not None and row["project_id"] != filters.project_id:
        return False
    if filters.vm_states is not None and row["vm_state"] not in filters.vm_states:
        return False
    for column, pattern in filters.regex:
        value = row[column]
        if value is None or not regex_matches(pattern, str(value), mysql):
            return False
    soft_deleted = row["vm_state"] == SOFT_DELETED
    if filters.deleted is True:
        if filters.soft_deleted is False:  # Nova's soft_deleted filter, given empty
            return row["deleted"] != 0
        return row["deleted"] != 0 or soft_deleted
    if filters.deleted is False:
        shown = filters.include_soft_deleted or bool(filters.soft_deleted)
        return row["deleted"] == 0 and (shown or not soft_deleted)
    return True


def uuids_of(rows: Sequence[OracleRow]) -> list[SqlValue]:
    return [row["uuid"] for row in rows]


# --- random data ----------------------------------------------------------------------------

NAMES = [
    "web",
    "web ",
    "web  ",
    "wéb",
    "wÉb",
    "web-1",
    "Web",
    "WEB",
    "webby",
    "a-web-2",
    "db",
    "DB",
    "db-web",
    "alpha",
    "Alpha",
    "ab",
    "abc",
    "",
    "é",
    "É",
    "e\u0301",
    "日本",
    "😀 web",
    "zeta",
    "Zeta",
]
CHARS = "aAbBzZ_- .éÉ日😀\u00ff\uffff\U0010ffff"
HOSTS = ["compute1", "compute10", "compute2", "Compute1", "çompute", "compute1 "]
VM_STATES = ["active", "active", "stopped", "error", SOFT_DELETED, "building"]
TASK_STATES = ["spawning", "deleting", "rebooting", "powering-off"]
PROJECTS = ["p1", "p2", "P1", "p10"]
INSTANTS = [dt.datetime(2024, 1, 1) + dt.timedelta(hours=h) for h in range(6)]


def _bmp(text: str) -> bool:
    """Whether ``text`` fits utf8mb3 (MySQL's ``utf8``: the Basic Multilingual Plane)."""
    return all(ord(ch) <= 0xFFFF for ch in text)


def _random_text(rnd: random.Random, utf8mb3: bool = False) -> str:
    chars = [ch for ch in CHARS if _bmp(ch)] if utf8mb3 else CHARS
    return "".join(rnd.choice(chars) for _ in range(rnd.randint(0, 5)))


def _random_instant(rnd: random.Random, whole_seconds: bool = False) -> dt.datetime:
    if rnd.random() < 0.75:
        return rnd.choice(INSTANTS)  # ties
    instant = dt.datetime(2020, 1, 1) + dt.timedelta(microseconds=rnd.randrange(10**14))
    return instant.replace(microsecond=0) if whole_seconds else instant


def random_row(rnd: random.Random, mysql: bool = False) -> dict[str, SqlValue]:
    """A random row; with ``mysql`` only what Nova's ``utf8`` tables hold (BMP, seconds)."""

    def maybe(null_probability: float, value: SqlValue) -> SqlValue:
        return None if rnd.random() < null_probability else value

    names = [name for name in NAMES if _bmp(name)] if mysql else NAMES

    def random_text(rnd: random.Random) -> str:
        return _random_text(rnd, mysql)

    def random_instant(rnd: random.Random) -> dt.datetime:
        return _random_instant(rnd, mysql)

    return {
        "uuid": str(uuid.UUID(int=rnd.getrandbits(128), version=4)),
        "project_id": rnd.choice(PROJECTS),
        "user_id": rnd.choice(["u1", "u2"]),
        "display_name": maybe(0.15, rnd.choice(names) if rnd.random() < 0.7 else random_text(rnd)),
        "hostname": maybe(0.5, random_text(rnd)),
        "host": maybe(0.5, rnd.choice(HOSTS)),
        "vm_state": maybe(0.1, rnd.choice(VM_STATES)),
        "task_state": maybe(0.6, rnd.choice(TASK_STATES)),
        "power_state": maybe(0.3, rnd.choice([0, 1, 4])),
        "progress": maybe(0.5, rnd.choice([0, 50, 100])),
        "locked": maybe(0.3, rnd.random() < 0.5),
        "launched_at": maybe(0.5, random_instant(rnd)),
        "created_at": random_instant(rnd),
        "updated_at": maybe(0.3, random_instant(rnd)),
        "deleted": 0 if rnd.random() < 0.7 else rnd.randrange(1, 1000),
    }


def random_pairs(rnd: random.Random) -> list[tuple[str, Direction]]:
    return [
        (rnd.choice(SORT_COLUMNS), rnd.choice(list(Direction))) for _ in range(rnd.randint(1, 4))
    ]


FIXED_PAIRS: list[list[tuple[str, Direction]]] = [
    [("created_at", Direction.DESC)],  # Nova's default
    [("display_name", Direction.ASC)],
    [("display_name", Direction.DESC)],
    [("task_state", Direction.DESC), ("host", Direction.ASC)],
    [("locked", Direction.DESC), ("launched_at", Direction.ASC)],
    [("launched_at", Direction.DESC), ("created_at", Direction.ASC)],
    [("uuid", Direction.DESC)],
]


# --- databases ------------------------------------------------------------------------------


@dataclass
class Databases:
    """One table with every row, and three cells holding the same rows split (one empty)."""

    backend: str
    whole: AsyncEngine
    cells: list[CellClient]
    rows: list[dict[str, SqlValue]]
    icu_default_collation: bool = False


async def _pg_admin(base: str, *commands: str) -> None:
    conn = await asyncpg.connect(f"{base}/postgres", timeout=5)
    try:
        for command in commands:
            await conn.execute(command)
    finally:
        await conn.close()


async def _pg_create(base: str, name: str) -> bool:
    """Create an empty database; whether it got the ICU en-US default collation."""
    try:
        await _pg_admin(
            base,
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
            # An ICU en-US default (where "a" < "B") makes the schema's COLLATE "C" matter.
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'",
        )
    except asyncpg.PostgresError:  # no ICU in this server build: its default will do
        await _pg_admin(base, f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
        return False
    return True


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mariadb"])
def backend(request: pytest.FixtureRequest) -> str:
    # Each server's fixture fails under CI=true, else skips, when the server is down.
    if request.param == "postgresql":
        request.getfixturevalue("postgres")
    if request.param == "mariadb":
        request.getfixturevalue("mariadb")
    return str(request.param)


@pytest.fixture(scope="module")
async def dbs(backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Databases]:
    print(f"cellgate keyset test seed: CELLGATE_TEST_SEED={SEED}")
    rnd = random.Random(f"{SEED}-rows")
    rows = [random_row(rnd, mysql=backend == "mariadb") for _ in range(ROWS)]
    assert len({row["uuid"] for row in rows}) == ROWS
    split: list[list[dict[str, SqlValue]]] = [[], [], []]
    for row in rows:
        split[rnd.randrange(2)].append(row)  # the third cell stays empty

    pg_base = "postgresql://postgres@127.0.0.1:5432"
    if backend == "postgresql":
        names = [f"cg_keyset_test_{os.getpid()}_{i}" for i in range(4)]
        urls = [f"{pg_base}/{name}" for name in names]
        icu = all(await asyncio.gather(*(_pg_create(pg_base, name) for name in names)))
    elif backend == "mariadb":
        names, icu = [], False
        urls = [f"{MYSQL_BASE}/cg_keyset_test_{os.getpid()}_{i}" for i in range(4)]
        await asyncio.gather(*(reset_database(url) for url in urls))
    else:
        root: Path = tmp_path_factory.mktemp("keyset")
        names, icu = [], False
        urls = [f"sqlite:///{root / f'db{i}.db'}" for i in range(4)]
    engines = [
        create_engine_for(url, EngineOptions(), owner=f"db{i}") for i, url in enumerate(urls)
    ]
    try:
        for engine, content in zip(engines, [rows, *split], strict=True):
            async with engine.begin() as conn:
                await conn.run_sync(cell_metadata.create_all)
                if content:
                    await conn.execute(instances.insert(), content)
        cells = [
            CellClient(
                Cell(i + 1, str(uuid.UUID(int=i + 1)), f"cell{i + 1}", url),
                executor_for(engine),
                # Generous: these tests check rows and order, not deadlines (test_outages
                # does), and a loaded CI machine once stalled a tiny query past 5 s.
                timeout_s=60,
            )
            for i, (url, engine) in enumerate(zip(urls[1:], engines[1:], strict=True))
        ]
        yield Databases(backend, engines[0], cells, rows, icu)
    finally:
        for engine in engines:
            await engine.dispose()
        if names:
            await asyncio.gather(
                *(_pg_admin(pg_base, f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)') for n in names)
            )
        if backend == "mariadb":
            await asyncio.gather(*(drop_database(url) for url in urls))


# --- keyset walks ---------------------------------------------------------------------------


async def walk(
    conn: AsyncConnection,
    spec: SortSpec,
    page_size: int,
    position: tuple[SqlValue, ...] | None,
    total: int,
) -> list[SqlValue]:
    """Page through the table by keyset; each next page starts after the last row seen."""
    c = instances.c
    out: list[SqlValue] = []
    while True:
        statement = select(*(c[name] for name in spec.names))
        if position is not None:
            statement = statement.where(after_position(spec, c, position))
        statement = statement.order_by(*order_by(spec, c)).limit(page_size)
        page = (await conn.execute(statement)).mappings().all()
        out.extend(row["uuid"] for row in page)
        assert len(out) <= total, "the walk returned some row twice"
        if len(page) < page_size:
            return out
        position = spec.position_of(dict(page[-1]))


async def test_keyset_walks_match_the_oracle(dbs: Databases) -> None:
    rnd = random.Random(f"{SEED}-walk-{dbs.backend}")
    specs = [*FIXED_PAIRS, *(random_pairs(rnd) for _ in range(13))]
    async with dbs.whole.connect() as conn:
        for pairs in specs:
            spec = SortSpec.build(pairs)
            expected = uuids_of(oracle_sorted(dbs.rows, pairs))
            context = f"seed={SEED} backend={dbs.backend} sort={pairs}"
            for page_size in (1, 2, 7, 100):
                got = await walk(conn, spec, page_size, None, len(dbs.rows))
                assert got == expected, f"{context} page_size={page_size}"
            # Starting after a marker row, as a request with ?marker= does.
            start = rnd.choice(dbs.rows)
            got = await walk(conn, spec, 7, spec.position_of(start), len(dbs.rows))
            assert got == expected[expected.index(start["uuid"]) + 1 :], f"{context} from {start}"


async def test_rows_round_trip_unchanged(dbs: Databases) -> None:
    # The oracle sorts the rows as inserted; the database must hand back the same values.
    columns = [instances.c[name] for name in KINDS]
    async with dbs.whole.connect() as conn:
        stored = {
            row["uuid"]: dict(row) for row in (await conn.execute(select(*columns))).mappings()
        }
    assert stored == {row["uuid"]: {k: row[k] for k in KINDS} for row in dbs.rows}


async def test_postgres_columns_carry_no_collation_the_queries_do(dbs: Databases) -> None:
    if dbs.backend != "postgresql":
        pytest.skip("collations are PostgreSQL's")
    url = dbs.cells[0].cell.url
    conn = await asyncpg.connect(url)
    try:
        collations = dict(
            await conn.fetch(
                "SELECT column_name, collation_name FROM information_schema.columns "
                "WHERE table_name = 'instances' AND data_type = 'character varying'"
            )
        )
        default = await conn.fetchval(
            "SELECT string_agg(x, ',' ORDER BY x) FROM unnest(ARRAY['a', 'B']) AS x"
        )
    finally:
        await conn.close()
    # As Nova creates them: no column collation. The walks above agree with Python because
    # every ORDER BY and comparison on a string says COLLATE "C" itself.
    assert collations
    assert set(collations.values()) == {None}, collations
    spec = SortSpec.build([("display_name", Direction.ASC)])
    sql = str(
        select(instances.c.uuid)
        .where(after_position(spec, instances.c, ("x", "u")))
        .order_by(*order_by(spec, instances.c))
        .compile(dialect=postgresql.dialect())
    )
    assert sql.count('display_name COLLATE "C"') >= 4, sql
    assert 'uuid COLLATE "C"' in sql, sql
    if dbs.icu_default_collation:
        # Without the query's collation this database would sort "a" before "B".
        assert default == "a,B"


async def test_mariadb_collation_is_general_ci_the_queries_are_binary(dbs: Databases) -> None:
    if dbs.backend != "mariadb":
        pytest.skip("MariaDB's collations")
    async with dbs.whole.connect() as conn:
        collations = set(
            (
                await conn.exec_driver_sql(
                    "SELECT collation_name FROM information_schema.columns WHERE "
                    "table_schema = DATABASE() AND table_name = 'instances' "
                    "AND data_type = 'varchar'"
                )
            ).scalars()
        )
        same = (await conn.exec_driver_sql("SELECT 'web' = 'Web ', 'wéb' = 'WEB'")).one()
    # Nova's utf8 tables: the server's collation, where these names are all equal...
    assert collations == {"utf8mb3_general_ci"}, collations
    assert tuple(same) == (1, 1)
    # ...so the queries compare bytes (code points, no padding) instead.
    spec = SortSpec.build([("display_name", Direction.ASC)])
    sql = str(
        select(instances.c.uuid)
        .where(after_position(spec, instances.c, ("x", "u")))
        .order_by(*order_by(spec, instances.c))
        .compile(dialect=dbs.whole.dialect)
    )
    assert sql.count("CAST(instances.display_name AS BINARY)") >= 4, sql
    assert "NULLS" not in sql, sql


# --- the lister across cells ----------------------------------------------------------------

FILTERS = [
    InstanceFilters(),
    InstanceFilters(deleted=None),
    InstanceFilters(deleted=True),
    InstanceFilters(include_soft_deleted=True),
    InstanceFilters(soft_deleted=True),
    InstanceFilters(soft_deleted=False),
    InstanceFilters(deleted=True, soft_deleted=False),
    InstanceFilters(project_id="p1", deleted=None),
    InstanceFilters(project_id="P1"),
    InstanceFilters(vm_states=frozenset({"active", "error"})),
    InstanceFilters(regex=(("display_name", "web"),)),
    InstanceFilters(
        project_id="p2",
        vm_states=frozenset({"active", SOFT_DELETED}),
        regex=(("display_name", "web"),),
        deleted=None,
    ),
    InstanceFilters(vm_states=frozenset({SOFT_DELETED}), deleted=True),
]


@dataclass
class Captured:
    """What the cell engines were asked: statements as built, and as sent."""

    clauses: list[object] = field(default_factory=list)
    sent: list[tuple[str, tuple[object, ...]]] = field(default_factory=list)

    def before_execute(
        self, conn: Any, clause: Any, multiparams: Any, params: Any, options: Any
    ) -> None:
        self.clauses.append(clause)

    def before_cursor_execute(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        self.sent.append((statement, tuple(parameters)))

    def on_connect(self, dbapi_connection: Any, record: Any) -> None:
        # On PostgreSQL the lister runs pre-compiled SQL straight on asyncpg, past
        # SQLAlchemy's execute events; asyncpg's own query logger sees it.
        driver = getattr(dbapi_connection, "driver_connection", None)
        if driver is not None and hasattr(driver, "add_query_logger"):
            driver.add_query_logger(self.logged)

    def logged(self, query: Any) -> None:
        if "FROM instances" in query.query:
            self.sent.append((query.query, tuple(query.args)))


async def test_list_instances_pages_match_the_oracle(dbs: Databases) -> None:
    rnd = random.Random(f"{SEED}-lister-{dbs.backend}")
    captured = Captured()
    hooks: list[tuple[str, Callable[..., None]]] = [
        ("before_execute", captured.before_execute),
        ("before_cursor_execute", captured.before_cursor_execute),
        ("connect", captured.on_connect),
    ]
    for target in dbs.cells:
        await target.engine.dispose()  # new connections, so "connect" sees every one
        for name, hook in hooks:
            event.listen(target.engine.sync_engine, name, hook)
    try:
        for filters in FILTERS:
            wanted = [row for row in dbs.rows if matches(filters, row, dbs.backend == "mariadb")]
            for pairs in [FIXED_PAIRS[0], *(random_pairs(rnd) for _ in range(2))]:
                limit = rnd.choice([1, 2, 3, 7, 50, 1000])
                keep_rows = rnd.choice([None, 0, 1, 3, 100])
                await _page_through(dbs, filters, pairs, limit, keep_rows, wanted)
    finally:
        for target in dbs.cells:
            for name, hook in hooks:
                event.remove(target.engine.sync_engine, name, hook)
    # SQLite goes through SQLAlchemy's execute (clauses); PostgreSQL through asyncpg.
    assert captured.clauses or dbs.backend == "postgresql"
    assert captured.sent
    # Every lister statement, compiled for PostgreSQL, is a keyset query: LIMIT, no OFFSET.
    # On MariaDB the first key's bound (cells.plan) reads one value past the page from the
    # index, "LIMIT 1 OFFSET <the page's limit>": never an OFFSET over the listing.
    for clause in captured.clauses:
        assert isinstance(clause, Select)
        assert clause._offset_clause is None
        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's dialect classes are not annotated
        sql = str(clause.compile(dialect=dialect)).upper()
        assert "LIMIT" in sql
        offsets = re.findall(r"LIMIT (\S+) OFFSET (%\(\w+\)S)", sql)
        assert sql.count("OFFSET") == len(offsets), sql
        if dbs.backend == "mariadb":
            assert all(offset == "%(LIM)S" for _, offset in offsets), sql
        else:
            assert not offsets, sql
    for statement, parameters in captured.sent:
        sql = statement.upper()
        if dbs.backend == "postgresql":
            assert "LIMIT" in sql, statement
            assert "OFFSET" not in sql, statement
        elif dbs.backend == "mariadb":
            # MySQL spells an offset "LIMIT offset, count": only the bound's subqueries
            # (their offset is the page's limit, see above) have one.
            assert "LIMIT" in sql, statement
            assert "OFFSET" not in sql, statement
            assert sql.count("LIMIT %S, %S") == sql.count("LIMIT %S, %S)"), statement
        elif "OFFSET" in sql:
            # SQLAlchemy's SQLite dialect always spells "LIMIT ? OFFSET ?": it must be 0.
            assert sql.rstrip().endswith("OFFSET ?"), statement
            assert parameters[-1] == 0, statement


async def _page_through(
    dbs: Databases,
    filters: InstanceFilters,
    pairs: list[tuple[str, Direction]],
    limit: int,
    keep_rows: int | None,
    wanted: list[dict[str, SqlValue]],
) -> None:
    """Page with ``after`` = the last row's position, as a ``?marker=`` request does; with
    ``keep_rows`` set, also resume each page from the previous page's frontier."""
    spec = SortSpec.build(pairs)
    expected = uuids_of(oracle_sorted(wanted, pairs))
    context = (
        f"seed={SEED} backend={dbs.backend} filters={filters} sort={pairs} limit={limit} "
        f"keep_rows={keep_rows}"
    )
    got: list[SqlValue] = []
    after: tuple[SqlValue, ...] | None = None
    resume: dict[int, CellCursor] | None = None
    pages = 0
    while True:
        query = ListQuery(spec, filters, limit, after)
        result = await list_instances(dbs.cells, query, resume, keep_rows=keep_rows or 0)
        pages += 1
        assert result.unavailable == [], context
        assert len(result.rows) <= limit, context
        # The empty cell answers its first, short batch and is never asked again.
        assert result.stats[2].queries == (0 if resume else 1), context
        assert result.stats[2].rows_fetched == 0, context
        got.extend(row["uuid"] for row in result.rows)
        if not result.has_more:
            break
        assert len(result.rows) == limit, context
        assert pages <= len(wanted), context
        after = spec.position_of(result.rows[-1])
        if keep_rows is not None:
            assert result.frontier is not None, context
            resume = result.frontier
    assert got == expected, context
    # has_more is exact: no trailing empty page, no early stop.
    assert pages == max(1, math.ceil(len(expected) / limit)), context
