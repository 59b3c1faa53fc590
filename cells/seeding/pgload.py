"""Bulk loading on PostgreSQL: secondary indexes and foreign keys built once, after COPY.

Nova's ``instances`` alone has eleven secondary indexes; maintaining them row by row makes
``COPY`` several times slower than building each index once at the end, and every
foreign-key check is a lookup per row where re-adding the constraint is one join. The
definitions are read from the catalog (``pg_get_indexdef``, ``pg_get_constraintdef``), so
whatever the tables had -- created by cellgate or by Nova's own models -- is recreated
exactly, with the same names. Everything runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = ["drop_secondary_structures"]

_INDEXES = text(
    """
    SELECT quote_ident(n.nspname) || '.' || quote_ident(ci.relname), pg_get_indexdef(i.indexrelid)
    FROM pg_index i
    JOIN pg_class ct ON ct.oid = i.indrelid
    JOIN pg_class ci ON ci.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = ci.relnamespace
    WHERE ct.relname = ANY(:tables) AND n.nspname = current_schema()
      AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
    ORDER BY ci.relname
    """
)
_FOREIGN_KEYS = text(
    """
    SELECT quote_ident(ct.relname), quote_ident(k.conname), pg_get_constraintdef(k.oid)
    FROM pg_constraint k
    JOIN pg_class ct ON ct.oid = k.conrelid
    JOIN pg_namespace n ON n.oid = ct.relnamespace
    WHERE k.contype = 'f' AND ct.relname = ANY(:tables) AND n.nspname = current_schema()
    ORDER BY ct.relname, k.conname
    """
)


async def drop_secondary_structures(conn: AsyncConnection, tables: Sequence[str]) -> list[str]:
    """Drop the secondary (non-constraint) indexes and the foreign keys of ``tables``;
    return the statements that recreate them, to run after the load."""
    names = list(tables)
    indexes = (await conn.execute(_INDEXES, {"tables": names})).all()
    foreign_keys = (await conn.execute(_FOREIGN_KEYS, {"tables": names})).all()
    for table, name, _ in foreign_keys:
        await conn.execute(text(f"ALTER TABLE {table} DROP CONSTRAINT {name}"))
    for name, _ in indexes:
        await conn.execute(text(f"DROP INDEX {name}"))
    recreate = [str(definition) for _, definition in indexes]
    recreate += [f"ALTER TABLE {t} ADD CONSTRAINT {n} {d}" for t, n, d in foreign_keys]
    return recreate
