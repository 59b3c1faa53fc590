"""Column types of Nova's schema that need care, and code-point comparison of strings.

Nova's cell databases may use any collation (libc ``en_US.UTF-8``, ICU ``en-US``...), and
their string columns carry no collation of their own. The merge compares strings by code
point, so every ORDER BY and keyset comparison on a string key goes through
:func:`code_point`, which says ``COLLATE "C"`` in the query itself on PostgreSQL. SQLite's
default ``BINARY`` collation already is code-point order (UTF-8 bytes sort as code points).

On MariaDB/MySQL, Nova's ``utf8`` tables use the server's collation, usually
``utf8_general_ci``: ``'web' = 'Web' = 'wéb' = 'web '`` there (case- and
accent-insensitive, ``PAD SPACE``). :func:`code_point` is ``CAST(col AS BINARY)``: its UTF-8
bytes, which compare as code points with no padding (``'web' < 'web '``), on MariaDB and
MySQL alike. ``utf8_bin`` would not do (it is ``PAD SPACE``: ``'a' = 'a '``), nor
``utf8mb3_nopad_bin`` (MariaDB only). MySQL has no ``NULLS FIRST/LAST``; it places NULL
lowest, as cellgate's NULL rule does, so :func:`_nulls_on_mysql` drops the clause there
(and refuses a placement MySQL could not honour).

Two of Nova's string-like columns are not text on PostgreSQL: ``access_ip_v4/v6``
(:class:`IPAddress`, ``INET``) and ``locked_by`` (a native ``ENUM``). Neither accepts a
collation, and both sort differently from their text (``INET`` numerically, an ``ENUM`` by
declaration order), so :func:`code_point` compares their text instead. ``INET`` columns are
also *read* as text (``host(col)``), so rows carry plain strings on every backend.
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import (
    Boolean,
    ColumnElement,
    DateTime,
    Enum,
    Integer,
    String,
    UnaryExpression,
    bindparam,
    cast,
)
from sqlalchemy.dialects.postgresql import INET
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import NullType, TypeDecorator, TypeEngine

__all__ = ["IPAddress", "code_point", "exactly", "text_of"]

_Kind = Literal["text", "inet", "cast"]


class _HostText(ColumnElement[str]):
    """An ``INET`` column's address as text (``host(col)``); the column itself elsewhere."""

    inherit_cache = True
    _traverse_internals = [("inner", InternalTraversal.dp_clauseelement)]  # noqa: RUF012

    def __init__(self, inner: ColumnElement[object]) -> None:
        self.inner = inner
        self.type = String()


@compiles(_HostText)
def _host_text(element: _HostText, compiler: SQLCompiler, **kw: object) -> str:
    return compiler.process(element.inner, **kw)


@compiles(_HostText, "postgresql")
def _host_text_pg(element: _HostText, compiler: SQLCompiler, **kw: object) -> str:
    return f"host({compiler.process(element.inner, **kw)})"


class _MysqlText(ColumnElement[str]):
    """A number, boolean or timestamp column as MySQL's text of it (what Nova's ``REGEXP``
    filters see there): ``42``, ``1``/``0``, ``2024-05-01 12:00:05`` (DATETIME, whole
    seconds), rendered alike on every backend."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012
        ("inner", InternalTraversal.dp_clauseelement),
        ("kind", InternalTraversal.dp_string),
    ]

    def __init__(self, inner: ColumnElement[object], kind: str) -> None:
        self.inner = inner
        self.kind = kind
        self.type = String()


@compiles(_MysqlText)
def _mysql_text(element: _MysqlText, compiler: SQLCompiler, **kw: object) -> str:
    inner = compiler.process(element.inner, **kw)
    match element.kind:
        case "bool":
            return f"(CASE WHEN {inner} THEN '1' WHEN NOT {inner} THEN '0' END)"
        case "datetime":  # SQLite holds 'YYYY-MM-DD HH:MM:SS.ffffff' text
            return f"substr({inner}, 1, 19)"
    return f"CAST({inner} AS TEXT)"


@compiles(_MysqlText, "postgresql")
def _mysql_text_pg(element: _MysqlText, compiler: SQLCompiler, **kw: object) -> str:
    inner = compiler.process(element.inner, **kw)
    match element.kind:
        case "bool":
            return f"(CASE WHEN {inner} THEN '1' WHEN NOT {inner} THEN '0' END)"
        case "datetime":
            return f"to_char({inner}, 'YYYY-MM-DD HH24:MI:SS')"
    return f"CAST({inner} AS TEXT)"


@compiles(_MysqlText, "mysql")
def _mysql_text_mysql(element: _MysqlText, compiler: SQLCompiler, **kw: object) -> str:
    return f"CAST({compiler.process(element.inner, **kw)} AS CHAR)"


class IPAddress(TypeDecorator[str]):
    """Nova's ``IPAddress`` column type: ``INET`` on PostgreSQL, ``VARCHAR(39)`` elsewhere.

    Read back as text on every backend (without a prefix length).
    """

    impl = String  # no length, as Nova declares it; VARCHAR(39) comes from the dialect impl
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        """``INET`` on PostgreSQL, the ``VARCHAR(39)`` implementation elsewhere."""
        if dialect.name == "postgresql":
            return dialect.type_descriptor(INET())
        return dialect.type_descriptor(String(39))

    def column_expression(self, colexpr: ColumnElement[str]) -> ColumnElement[str]:
        """Select the address as text, whatever the backend's column type."""
        return _HostText(colexpr)  # type: ignore[arg-type]  # ColumnElement is invariant: a str column passes as an object one


class _CodePoint(ColumnElement[str]):
    """A string expression compared by code point (see the module docstring)."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012
        ("inner", InternalTraversal.dp_clauseelement),
        ("kind", InternalTraversal.dp_string),
    ]

    def __init__(self, inner: ColumnElement[object], kind: _Kind) -> None:
        self.inner = inner
        self.kind = kind
        self.type = String()


@compiles(_CodePoint)
def _code_point(element: _CodePoint, compiler: SQLCompiler, **kw: object) -> str:
    return compiler.process(element.inner, **kw)


@compiles(_CodePoint, "postgresql")
def _code_point_pg(element: _CodePoint, compiler: SQLCompiler, **kw: object) -> str:
    inner = compiler.process(element.inner, **kw)
    if element.kind == "inet":
        inner = f"host({inner})"
    elif element.kind == "cast":
        inner = f"CAST({inner} AS TEXT)"
    return f'{inner} COLLATE "C"'


@compiles(_CodePoint, "mysql")
@compiles(_CodePoint, "mariadb")
def _code_point_mysql(element: _CodePoint, compiler: SQLCompiler, **kw: object) -> str:
    return f"CAST({compiler.process(element.inner, **kw)} AS BINARY)"


_MYSQL_NULLS: dict[
    tuple[object, object], bool
] = {  # (direction, NULLS clause) -> whether MySQL's own placement agrees
    (operators.asc_op, operators.nulls_first_op): True,
    (operators.desc_op, operators.nulls_last_op): True,
    (operators.asc_op, operators.nulls_last_op): False,
    (operators.desc_op, operators.nulls_first_op): False,
}


@compiles(UnaryExpression, "mysql")
@compiles(UnaryExpression, "mariadb")
def _nulls_on_mysql(element: UnaryExpression[Any], compiler: SQLCompiler, **kw: Any) -> str:
    """``x ASC NULLS FIRST`` / ``x DESC NULLS LAST`` as plain ``x ASC`` / ``x DESC`` (MySQL
    has no NULLS clause and already sorts NULL lowest); the other two cannot be expressed
    without changing the ORDER BY, so they are a compile error, never a silent reorder."""
    inner = element.element
    if element.modifier in (operators.nulls_first_op, operators.nulls_last_op):
        direction = inner.modifier if isinstance(inner, UnaryExpression) else None
        if _MYSQL_NULLS.get((direction, element.modifier)):
            return compiler.process(inner, **kw)
        raise CompileError("MySQL cannot place NULLs this way without rewriting the ORDER BY")
    visit = getattr(compiler, f"visit_{element.__visit_name__}")
    return visit(element, **kw)  # type: ignore[no-any-return]  # the compiler's visit_* method, looked up by name, is Any


def code_point(column: ColumnElement[object]) -> ColumnElement[str]:
    """``column`` as text that compares and sorts by code point on every backend.

    On PostgreSQL: ``col COLLATE "C"`` (``host(col)`` for ``INET``, ``CAST(col AS TEXT)``
    for an ``ENUM``), so an index created with ``COLLATE "C"`` on the same expression
    serves the ORDER BY and the keyset bound alike. On MariaDB/MySQL: ``CAST(col AS
    BINARY)`` (an ``ENUM`` casts to its label).
    """
    kind: _Kind = "text"
    if isinstance(column.type, IPAddress):
        kind = "inet"
    elif isinstance(column.type, Enum):
        kind = "cast"
    return _CodePoint(column, kind)


def text_of(column: ColumnElement[object]) -> ColumnElement[str]:
    """``column`` as text in the database's own collation (for regular expressions, whose
    character classes follow the collation): ``host(col)`` for ``INET``, a cast for an
    ``ENUM``, MySQL's text of a number, boolean or timestamp on every backend (Nova's
    ``REGEXP`` filters on ``launch_index``, ``progress``, ``auto_disk_config``,
    ``launched_at``... work on MySQL only: PostgreSQL has no ``~`` for them), the column
    itself otherwise."""
    if isinstance(column.type, IPAddress):
        return _HostText(column)
    if isinstance(column.type, Enum):
        return cast(column, String)
    if isinstance(column.type, Boolean):
        return _MysqlText(column, "bool")
    if isinstance(column.type, DateTime):
        return _MysqlText(column, "datetime")
    if isinstance(column.type, Integer):
        return _MysqlText(column, "int")
    return column  # type: ignore[return-value]  # the other columns are text already; ColumnElement is invariant


class _Exactly(ColumnElement[bool]):
    """``column = value``, and on MySQL byte for byte too (see :func:`exactly`)."""

    inherit_cache = True
    _traverse_internals = [  # noqa: RUF012
        ("inner", InternalTraversal.dp_clauseelement),
        ("value", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, inner: ColumnElement[object], value: ColumnElement[object]) -> None:
        self.inner = inner
        self.value = value
        # Not Boolean: on MySQL (no native booleans) SQLAlchemy would compare a Boolean
        # expression with 1, which no index serves.
        self.type = NullType()  # type: ignore[assignment]  # a bool expression typed NullType on purpose (comment above)


@compiles(_Exactly)
def _exactly(element: _Exactly, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.inner == element.value, **kw)


@compiles(_Exactly, "mysql")
@compiles(_Exactly, "mariadb")
def _exactly_mysql(element: _Exactly, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.inner, **kw)
    value = compiler.process(element.value, **kw)
    return f"({column} = {value} AND CAST({column} AS BINARY) = {value})"


def exactly(column: ColumnElement[object], value: str) -> ColumnElement[bool]:
    """``column`` equals ``value`` exactly, whatever the column's collation.

    For the caller's scope (``project_id``): under MySQL's ``utf8_general_ci`` a plain
    ``=`` would let project "Demo" see project "demo"'s servers. On MySQL this is ``(col =
    :v AND CAST(col AS BINARY) = :v)``: the first term keeps Nova's index on the column
    usable, the second makes it exact. Elsewhere (code-point collations) plain ``=``.
    """
    return _Exactly(column, bindparam(None, value, String()))
