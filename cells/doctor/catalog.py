"""What a database says about itself, read-only, per backend: version, collation and the
indexes of ``instances``. Used by ``cellgate doctor`` (:mod:`cells.doctor.diagnosis`).

- PostgreSQL: ``server_version``; the database's ``datcollate`` or ICU/builtin locale;
  ``pg_index`` (each key's direction, NULLS placement and collation).
- MariaDB/MySQL: ``VERSION()``; the database's default collation and ``instances``' own
  (``information_schema.SCHEMATA``/``TABLES``); ``information_schema.STATISTICS`` (direction;
  a prefix key part orders nothing and reads as an expression; the collation is the
  column's, from ``COLUMNS``). A statement deadline for the session:
  ``max_statement_time`` (MariaDB, seconds) or ``max_execution_time`` (MySQL, ms).
- SQLite: ``sqlite_version()``; ``BINARY``; ``PRAGMA index_list``/``index_xinfo``.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from cells.doctor.indexes import Dialect, IndexColumn, TableIndex

__all__ = ["bound_statements", "dialect_of", "read_collation", "read_indexes", "read_version"]

_PG_INDEXES = text("""
SELECT i.relname AS index_name,
       ix.indisvalid AND ix.indpred IS NULL AS usable,
       a.attname AS column_name,
       (k.opt & 1) = 1 AS descending,
       (k.opt & 2) = 2 AS nulls_first,
       co.collname AS collation
FROM pg_index ix
JOIN pg_class i ON i.oid = ix.indexrelid
CROSS JOIN LATERAL unnest(ix.indkey::int2[], ix.indcollation::oid[], ix.indoption::int2[])
    WITH ORDINALITY AS k(attnum, coll, opt, ord)
LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum AND k.attnum > 0
LEFT JOIN pg_collation co ON co.oid = k.coll
WHERE ix.indrelid = to_regclass('instances') AND k.ord <= ix.indnkeyatts
ORDER BY i.relname, k.ord
""")

# Version-proof: PostgreSQL 15-16 say daticulocale, 17 says datlocale, before 15 neither.
_PG_COLLATION = text("""
SELECT to_jsonb(d) ->> 'datcollate',
       to_jsonb(d) ->> 'datlocprovider',
       coalesce(to_jsonb(d) ->> 'daticulocale', to_jsonb(d) ->> 'datlocale')
FROM pg_database d WHERE datname = current_database()
""")
_PROVIDERS = {"c": "libc", "i": "ICU", "b": "builtin"}

_MYSQL_INDEXES = text("""
SELECT s.INDEX_NAME AS index_name, s.INDEX_TYPE AS index_type, s.COLUMN_NAME AS column_name,
       s.COLLATION AS direction, s.SUB_PART AS sub_part, c.COLLATION_NAME AS collation
FROM information_schema.STATISTICS s
LEFT JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = s.TABLE_SCHEMA
    AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME
WHERE s.TABLE_SCHEMA = DATABASE() AND s.TABLE_NAME = 'instances'
ORDER BY s.INDEX_NAME, s.SEQ_IN_INDEX
""")

_MYSQL_COLLATION = text("""
SELECT s.DEFAULT_COLLATION_NAME AS database_collation, t.TABLE_COLLATION AS table_collation
FROM information_schema.SCHEMATA s
LEFT JOIN information_schema.TABLES t ON t.TABLE_SCHEMA = s.SCHEMA_NAME
    AND t.TABLE_NAME = 'instances'
WHERE s.SCHEMA_NAME = DATABASE()
""")


def dialect_of(conn: AsyncConnection) -> Dialect:
    """The connection's backend as :mod:`cells.doctor.indexes` names it."""
    name = conn.dialect.name
    if name == "sqlite":
        return "sqlite"
    return "mysql" if name in ("mysql", "mariadb") else "postgresql"


async def read_version(conn: AsyncConnection, dialect: Dialect) -> str:
    """The server's version string (SQLite's library version)."""
    query = {
        "postgresql": "SELECT current_setting('server_version')",
        "mysql": "SELECT VERSION()",
        "sqlite": "SELECT sqlite_version()",
    }[dialect]
    return str(await conn.scalar(text(query)))


async def bound_statements(conn: AsyncConnection, version: str, timeout_s: float) -> None:
    """A MariaDB/MySQL session's statement deadline (PostgreSQL's is a connect setting)."""
    if "mariadb" in version.lower():
        await conn.execute(text(f"SET SESSION max_statement_time = {max(timeout_s, 0.001):.3f}"))
    else:
        await conn.execute(
            text(f"SET SESSION max_execution_time = {max(1, round(timeout_s * 1000))}")
        )


async def read_collation(conn: AsyncConnection, dialect: Dialect) -> str:
    """The collation string keys meet by default: the database's (and, on MariaDB/MySQL,
    ``instances``' when it differs)."""
    if dialect == "sqlite":
        return "BINARY"
    if dialect == "mysql":
        row = (await conn.execute(_MYSQL_COLLATION)).one()
        database, table = row.database_collation, row.table_collation
        return database if table in (None, database) else f"{database} (instances: {table})"
    collate, provider, locale = (await conn.execute(_PG_COLLATION)).one()
    if provider == "i" or (provider == "b" and locale):
        return f"{locale} ({_PROVIDERS[provider]})"
    return f"{collate} ({_PROVIDERS.get(provider or 'c', provider)})"


async def read_indexes(conn: AsyncConnection, dialect: Dialect) -> list[TableIndex]:
    """The indexes of ``instances``, key columns in order."""
    if dialect == "sqlite":
        return await _sqlite_indexes(conn)
    if dialect == "mysql":
        return await _mysql_indexes(conn)
    return await _pg_indexes(conn)


async def _pg_indexes(conn: AsyncConnection) -> list[TableIndex]:
    found: dict[str, tuple[bool, list[IndexColumn]]] = {}
    for row in (await conn.execute(_PG_INDEXES)).all():
        _, columns = found.setdefault(row.index_name, (bool(row.usable), []))
        columns.append(IndexColumn(row.column_name, row.descending, row.nulls_first, row.collation))
    return [TableIndex(name, tuple(cols), usable) for name, (usable, cols) in found.items()]


async def _mysql_indexes(conn: AsyncConnection) -> list[TableIndex]:
    found: dict[str, tuple[bool, list[IndexColumn]]] = {}
    for row in (await conn.execute(_MYSQL_INDEXES)).all():
        _, columns = found.setdefault(row.index_name, (row.index_type == "BTREE", []))
        descending = row.direction == "D"
        # A prefix key part (col(10)) orders nothing beyond its prefix: an expression here.
        name = None if row.sub_part is not None else row.column_name
        columns.append(IndexColumn(name, descending, not descending, row.collation))
    return [TableIndex(name, tuple(cols), usable) for name, (usable, cols) in found.items()]


def _sqlite_quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def _sqlite_indexes(conn: AsyncConnection) -> list[TableIndex]:
    indexes: list[TableIndex] = []
    listed = await conn.exec_driver_sql("PRAGMA index_list('instances')")
    for entry in listed.mappings().all():  # seq, name, unique, origin, partial
        name = str(entry["name"])
        info = await conn.exec_driver_sql(f"PRAGMA index_xinfo({_sqlite_quote(name)})")
        columns = tuple(
            # NULL is SQLite's smallest value: first ascending, last descending.
            IndexColumn(col["name"], bool(col["desc"]), not col["desc"], col["coll"])
            for col in info.mappings().all()  # seqno, cid, name, desc, coll, key
            if col["key"]
        )
        indexes.append(TableIndex(name, columns, usable=not entry["partial"]))
    return indexes
