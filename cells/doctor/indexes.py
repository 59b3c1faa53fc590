"""Which listing orders an ``instances`` index serves, and the index that would; pure.

Used by ``cellgate doctor`` (:mod:`cells.doctor.diagnosis`), which reads a cell's indexes and
prints the statements; nothing here touches a database.

**The serving rule** (:func:`coverage`). A listing query is ``WHERE <scope equalities>
ORDER BY <keys>`` (scope: ``deleted = 0``, plus ``project_id = $1`` for a project). A valid,
non-partial B-tree index serves it when

1. its first columns are exactly the scope's equality columns, in any order (PostgreSQL can
   still use an index that filters a project's rows out of every project's, but that is
   the slow case Nova's ``(deleted, created_at)`` gives a small project);
2. the next columns are the sort keys, in order, each with the query's direction and NULLS
   placement (:mod:`cells.keyset`: nullable keys ``NULLS FIRST`` ascending, ``NULLS LAST``
   descending; others PostgreSQL's default) — or all of them reversed (a backward scan);
3. every string key has collation ``"C"``, because the query says ``COLLATE "C"`` and the
   planner matches collations exactly: an index in the database's own collation (even
   ``C.UTF-8``) does not serve code-point order. On SQLite the column's ``BINARY``.

``served`` means all keys, ``uuid`` included; ``partial`` means a prefix (PostgreSQL
finishes the ties with an incremental sort: cheap when ties are rare, as with
``created_at``); ``missing`` means none. Indexes on expressions and partial indexes are
not considered.

**MariaDB/MySQL** (dialect ``mysql``). NULLs are the smallest value (first ascending, last
descending: cellgate's NULL rule, no ``NULLS`` clause). An index cannot name a collation:
each string column sorts in its own (Nova's take the server's, kolla's
``utf8mb3_general_ci``). So the advice is plain column indexes, built online
(``ALTER TABLE ... ADD INDEX ..., ALGORITHM=INPLACE, LOCK=NONE``), and it serves string keys
only if the listing sorts strings in the column's collation: :data:`MYSQL_STRING_COLLATION`
says which one the listing's ``ORDER BY`` names (``None``: the column's own). Prefix
(``col(10)``) and non-B-tree indexes do not order rows and are not considered. ``DESC``
key parts need MariaDB 10.8 or MySQL 8.0 (older servers ignore the word).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from cells.order import Direction, SortSpec
from cells.schema import instances
from cells.sqltypes import IPAddress

__all__ = [
    "DEFAULT_STRING_KEYS",
    "MYSQL_STRING_COLLATION",
    "Coverage",
    "Dialect",
    "IndexColumn",
    "ListingOrder",
    "Serving",
    "TableIndex",
    "coverage",
    "create_statement",
    "listing_orders",
    "mysql_note",
    "needed_columns",
]

Dialect = Literal["postgresql", "sqlite", "mysql"]

DEFAULT_STRING_KEYS = ("display_name", "hostname", "host")
"""String sort keys checked unless the operator names others."""

MYSQL_STRING_COLLATION: str | None = "binary"
"""The collation the MySQL listing's ``ORDER BY`` names for string keys (e.g.
``utf8mb3_bin``), or ``None`` when it sorts each string column in its own collation. The
listing's order (:mod:`cells.order`) owns that choice; this must say the same, so that the
doctor's verdicts describe the queries the gateway runs. The listing compares strings as
``CAST(col AS BINARY)`` (code points, :func:`cells.sqltypes.code_point`; README, "MariaDB/
MySQL cells" says why), so no plain column index serves a string key there."""

_CODE_POINT = {"postgresql": "C", "sqlite": "BINARY"}


def _string_collation(dialect: Dialect) -> str | None:
    """The collation the listing's query names for string keys (None: the column's)."""
    return MYSQL_STRING_COLLATION if dialect == "mysql" else _CODE_POINT[dialect]


@dataclass(frozen=True, slots=True)
class IndexColumn:
    """One key column of an index (``name`` is ``None`` for an expression)."""

    name: str | None
    descending: bool = False
    nulls_first: bool = False
    collation: str | None = None


@dataclass(frozen=True, slots=True)
class TableIndex:
    """An index of ``instances``; ``usable`` is false when invalid or partial."""

    name: str
    columns: tuple[IndexColumn, ...]
    usable: bool = True


@dataclass(frozen=True, slots=True)
class ListingOrder:
    """One listing order: the scope's equality columns and the sort."""

    label: str
    equality: tuple[str, ...]
    spec: SortSpec


class Serving(StrEnum):
    """How well the best index serves an order."""

    SERVED = "served"
    PARTIAL = "partial"
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Coverage:
    """The best index for an order and how many sort keys it delivers in order."""

    serving: Serving
    index: str | None = None
    keys: int = 0
    note: str | None = None


def listing_orders(string_keys: Sequence[str] = DEFAULT_STRING_KEYS) -> list[ListingOrder]:
    """The orders the doctor checks: the default (all projects and one project), and each
    of ``string_keys`` ascending and descending. Raises ``ValueError`` for a key that is not
    a plain string column (``access_ip_*`` and ``locked_by`` sort by an expression)."""
    default = SortSpec.build([("created_at", Direction.DESC)])
    orders = [
        ListingOrder("created_at desc", ("deleted",), default),
        ListingOrder("project: created_at desc", ("project_id", "deleted"), default),
    ]
    for key in string_keys:
        column = instances.c.get(key)
        if column is None or isinstance(column.type, IPAddress) or key == "locked_by":
            raise ValueError(f"{key!r} is not a plain string column of instances")
        for direction in Direction:
            spec = SortSpec.build([(key, direction)])
            if spec.keys[0].kind != "str":
                raise ValueError(f"{key!r} is not a plain string column of instances")
            orders.append(ListingOrder(f"{key} {direction}", ("deleted",), spec))
    return orders


def needed_columns(order: ListingOrder, dialect: Dialect) -> tuple[IndexColumn, ...]:
    """The index columns the order's ``ORDER BY`` asks for, after the equality columns."""
    columns: list[IndexColumn] = []
    for key in order.spec.keys:
        descending = key.direction is Direction.DESC
        if dialect in ("sqlite", "mysql"):
            nulls_first = not descending  # their only NULL placement: NULL is smallest
        elif key.nullable:
            nulls_first = not descending  # cellgate's NULL rule, spelled in the query
        else:
            nulls_first = descending  # PostgreSQL's default, no NULLS clause
        collation = _string_collation(dialect) if key.kind == "str" else None
        columns.append(IndexColumn(key.name, descending, nulls_first, collation))
    return tuple(columns)


def _reversed(column: IndexColumn) -> IndexColumn:
    return IndexColumn(column.name, not column.descending, not column.nulls_first, column.collation)


def _matches(have: IndexColumn, want: IndexColumn) -> bool:
    if have.name != want.name or have.descending != want.descending:
        return False
    return have.nulls_first == want.nulls_first and (
        want.collation is None or have.collation == want.collation
    )


def _served(index: TableIndex, equality: tuple[str, ...], need: tuple[IndexColumn, ...]) -> int:
    lead = index.columns[: len(equality)]
    if sorted(c.name or "" for c in lead) != sorted(equality):
        return 0
    rest = index.columns[len(equality) :]
    best = 0
    for flip in (False, True):
        n = 0
        for have, want in zip(rest, need, strict=False):
            if not _matches(have, _reversed(want) if flip else want):
                break
            n += 1
        best = max(best, n)
    return best


def _collation_note(index: TableIndex, equality: tuple[str, ...], want: IndexColumn) -> str | None:
    nxt = index.columns[len(equality) : len(equality) + 1]
    if nxt and nxt[0].name == want.name and want.collation and nxt[0].collation != want.collation:
        return (
            f"{index.name} has {want.name} in collation {nxt[0].collation or 'default'!r}, "
            f'not "{want.collation}"'
        )
    return None


def coverage(order: ListingOrder, indexes: Sequence[TableIndex], dialect: Dialect) -> Coverage:
    """How the best usable index serves ``order`` (the rule is in the module docstring)."""
    need = needed_columns(order, dialect)
    best: tuple[int, str | None] = (0, None)
    note: str | None = None
    for index in indexes:
        if not index.usable:
            continue
        n = _served(index, order.equality, need)
        if n > best[0]:
            best = (n, index.name)
        elif n == 0 and note is None:
            note = _collation_note(index, order.equality, need[0])
    n, name = best
    if n == len(need):
        return Coverage(Serving.SERVED, name, n)
    if n > 0:
        return Coverage(Serving.PARTIAL, name, n)
    return Coverage(Serving.MISSING, note=note)


def _render_column(column: IndexColumn, dialect: Dialect) -> str:
    out = column.name or ""
    if dialect == "postgresql" and column.collation:
        out += f' COLLATE "{column.collation}"'
    if column.descending:
        out += " DESC"
    if dialect == "postgresql" and column.nulls_first != column.descending:
        out += " NULLS FIRST" if column.nulls_first else " NULLS LAST"
    return out


def _index_name(order: ListingOrder) -> str:
    parts = [*order.equality]
    for key in order.spec.keys:
        parts.append(key.name + ("_desc" if key.direction is Direction.DESC else ""))
    name = "instances_" + "_".join(parts) + "_idx"
    return name[:63]


def create_statement(order: ListingOrder, dialect: Dialect) -> str:
    """The index that fully serves ``order``: ``CREATE INDEX CONCURRENTLY`` on PostgreSQL
    (no table lock; run it outside a transaction), an online ``ALTER TABLE ... ADD INDEX``
    on MariaDB/MySQL, a plain ``CREATE INDEX`` on SQLite."""
    columns = [
        *order.equality,
        *(_render_column(c, dialect) for c in needed_columns(order, dialect)),
    ]
    if dialect == "mysql":
        return (
            f"ALTER TABLE instances ADD INDEX {_index_name(order)} ({', '.join(columns)}), "
            "ALGORITHM=INPLACE, LOCK=NONE"
        )
    verb = "CREATE INDEX CONCURRENTLY" if dialect == "postgresql" else "CREATE INDEX"
    return f"{verb} {_index_name(order)} ON instances ({', '.join(columns)})"


def mysql_note() -> str:
    """What the verdicts mean on MariaDB/MySQL cells (for the doctor's output)."""
    string_collation = MYSQL_STRING_COLLATION
    plain = (
        "MariaDB/MySQL: the advice is plain column indexes, built online (ALGORITHM=INPLACE, "
        "LOCK=NONE); an index cannot name a collation, each string column sorts in its own"
    )
    if string_collation is None:
        return (
            f"{plain}, and the listing sorts strings in it (Nova's columns: the server's, "
            "e.g. utf8mb3_general_ci, case- and accent-insensitive), so plain indexes can "
            "serve every order above."
        )
    return (
        f"{plain}, but the listing sorts strings by {string_collation}: an index serves a "
        f"string key only on a column declared {string_collation}. On Nova's columns the "
        "server sorts such rows itself (filesort) and an index serves only the keys before "
        "the first string key."
    )
