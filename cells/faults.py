"""Whose fault is a database error? Decided here, once, for every cell call.

::

    Blame          examples                                             becomes
    ─────────────  ───────────────────────────────────────────────────  ─────────────────────
    CLIENT         SQLSTATE 22 (bad regex 2201B, out of range 22003),    400 for that request
                   54 (expression too complex); SQLite "Expression
                   tree is too large", a REGEXP the client supplied
    SLOW           SQLSTATE 57014 (statement_timeout), SQLite            the probe decides:
                   SQLITE_INTERRUPT (our deadline interrupted it)        alive → slow query,
                                                                         dead → the breaker
    CONFIG         SQLSTATE 42 (undefined table or column, permission),  the cell is left
                   SQLite "no such table/column"                         out, loudly (a
                                                                         metric with the
                                                                         reason), never
                                                                         the breaker
    CELL           connection refused/reset/lost (08, 57P0x, OSError),   the cell's breaker
                   authentication (28), resources (53), anything else
                   the database raised

Python errors that are not the database's (``TypeError``, ``KeyError``...) are bugs and
are not classified: they propagate and become a 500.

SQLite has no SQLSTATE; :mod:`sqlite3` gives an error code, and its catch-all
``SQLITE_ERROR`` covers both "no such column" and "expression tree too large", so for that
one code the message is read. That is the only place a message string is inspected.

MariaDB/MySQL errors (asyncmy's; PyMySQL's and aiomysql's alike) are classified by their
error number, :data:`MYSQL_BLAME`::

    CLIENT  1139 (a regex MariaDB's PCRE rejects), 3685-3699 (MySQL 8's ICU regex
            errors), 1267/1270/1271 (a value the column's character set cannot hold),
            1292, 1366, 1690 (data: bad or out-of-range values)
    SLOW    1969 (MariaDB max_statement_time), 3024 (MySQL max_execution_time),
            1317 (query interrupted: KILL QUERY)
    CONFIG  1054 (unknown column), 1146 (no such table), 1142/1143 (grants),
            1064 (syntax), 1305 (no such function)
    CELL    everything else: 2002/2003 (cannot connect), 2006/2013 (gone away, lost),
            1040 (too many connections), 1047/1927 (Galera node not ready, connection
            killed), 1045 (access denied), 1053 (shutdown in progress)...
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from enum import StrEnum

import asyncmy.errors
import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cells.errors import CellMisconfigured, InvalidQuery

__all__ = [
    "DATABASE_ERRORS",
    "MYSQL_BLAME",
    "SCHEMA_REASONS",
    "Blame",
    "CellMisconfigured",
    "Fault",
    "InvalidQuery",
    "blame",
    "mysql_code",
]


# What a driver may raise for a database-side problem, to be classified by :func:`blame`;
# anything else is a bug (a 500).
DATABASE_ERRORS = (
    DBAPIError,
    PoolTimeout,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    sqlite3.Error,
    asyncmy.errors.MySQLError,
    OSError,
)


class Blame(StrEnum):
    """Who caused a failed cell call."""

    CLIENT = "client"
    SLOW = "slow"
    CONFIG = "config"
    CELL = "cell"


@dataclass(frozen=True, slots=True)
class Fault:
    """A classified failure: who is to blame and the database's first message line; for
    :attr:`Blame.CONFIG`, ``reason`` is one of :data:`SCHEMA_REASONS`."""

    blame: Blame
    message: str
    reason: str = ""


SCHEMA_REASONS = ("missing_table", "missing_column", "permission", "schema")
"""Why a cell's schema fault happened (a bounded metric label): a table or column cellgate
reads is missing, a grant is, or something else of the schema (a function, syntax)."""

_PG_REASONS = {"42P01": "missing_table", "42703": "missing_column", "42501": "permission"}
_MYSQL_REASONS = {
    1146: "missing_table",
    1054: "missing_column",
    1142: "permission",
    1143: "permission",
}
_SQLITE_REASONS = (("no such table", "missing_table"), ("no such column", "missing_column"))


_BY_SQLSTATE_CLASS = {
    "22": Blame.CLIENT,  # data exception: the query's own values
    "54": Blame.CLIENT,  # program limit exceeded: statement too complex, stack depth
    "42": Blame.CONFIG,  # syntax error or access rule violation: schema, grants
    "0A": Blame.CONFIG,  # feature not supported
}
_QUERY_CANCELED = "57014"  # statement_timeout (or a cancel we sent at our deadline)

_SQLITE_CLIENT = ("expression tree is too large", "too many sql variables", "too complex")
_SQLITE_CONFIG = ("no such table", "no such column", "no such function")
# A Python function the query calls (REGEXP) raised: the client's pattern is at fault.
_SQLITE_USER_FUNCTION = "user-defined function raised exception"


MYSQL_BLAME: dict[int, Blame] = {
    1139: Blame.CLIENT,
    **dict.fromkeys(range(3685, 3700), Blame.CLIENT),
    **dict.fromkeys((1267, 1270, 1271, 1292, 1366, 1690), Blame.CLIENT),
    **dict.fromkeys((1969, 3024, 1317), Blame.SLOW),
    **dict.fromkeys((1054, 1146, 1142, 1143, 1064, 1305), Blame.CONFIG),
}
"""MariaDB/MySQL error numbers that are not the cell's fault (the rest are)."""


def mysql_code(exc: BaseException) -> int | None:
    """The MySQL error number of an asyncmy (or PyMySQL, aiomysql) error, else ``None``."""
    module = type(exc).__module__
    if not module.startswith(("pymysql", "asyncmy", "aiomysql")):
        return None
    code = exc.args[0] if exc.args else None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _sqlstate(exc: BaseException) -> str | None:
    for candidate in (exc, exc.__cause__):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def _sqlite(exc: sqlite3.Error) -> Blame:
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_INTERRUPT":
        return Blame.SLOW
    if name in ("SQLITE_TOOBIG", "SQLITE_RANGE"):
        return Blame.CLIENT
    lowered = str(exc).lower()
    if any(text in lowered for text in _SQLITE_CLIENT) or _SQLITE_USER_FUNCTION in lowered:
        return Blame.CLIENT
    if any(text in lowered for text in _SQLITE_CONFIG):
        return Blame.CONFIG
    if "interrupted" in lowered:  # older sqlite3 modules carry no error name
        return Blame.SLOW
    return Blame.CELL


def blame(exc: Exception) -> Fault:
    """Classify an exception raised by a cell call (SQLAlchemy-wrapped or raw driver)."""
    driver = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    message = _first_line(driver)
    # aiosqlite and SQLAlchemy's adapters may wrap the sqlite3 error once more.
    lite = driver if isinstance(driver, sqlite3.Error) else driver.__cause__
    if isinstance(lite, sqlite3.Error):
        text = _first_line(lite)
        kind = _sqlite(lite)
        lowered = text.lower()
        reason = next((r for t, r in _SQLITE_REASONS if t in lowered), "schema")
        return Fault(kind, text, reason if kind is Blame.CONFIG else "")
    number = mysql_code(driver)
    if number is not None:
        text = str(driver.args[1]).splitlines()[0] if len(driver.args) > 1 else ""
        kind = MYSQL_BLAME.get(number, Blame.CELL)
        reason = _MYSQL_REASONS.get(number, "schema") if kind is Blame.CONFIG else ""
        return Fault(kind, f"({number}) {text}".rstrip(), reason)
    code = _sqlstate(driver)
    if code is not None:
        if code == _QUERY_CANCELED:
            return Fault(Blame.SLOW, message)
        kind = _BY_SQLSTATE_CLASS.get(code[:2], Blame.CELL)
        reason = _PG_REASONS.get(code, "schema") if kind is Blame.CONFIG else ""
        return Fault(kind, message, reason)
    return Fault(Blame.CELL, message)
