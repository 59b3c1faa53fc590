"""MariaDB/MySQL errors classified by number, on the driver's own exception objects (raw,
and wrapped by SQLAlchemy as a cell call sees them)."""

from __future__ import annotations

import asyncmy.errors as my
import pytest
from sqlalchemy.exc import DBAPIError

from cells.faults import DATABASE_ERRORS, Blame, blame, mysql_code

CASES = [
    (my.OperationalError(2003, "Can't connect to MySQL server on '10.0.0.9' (111)"), Blame.CELL),
    (my.OperationalError(2006, "MySQL server has gone away"), Blame.CELL),
    (my.OperationalError(2013, "Lost connection to MySQL server during query"), Blame.CELL),
    (my.OperationalError(1040, "Too many connections"), Blame.CELL),
    (my.InternalError(1047, "WSREP has not yet prepared node for application use"), Blame.CELL),
    (my.OperationalError(1927, "Connection was killed"), Blame.CELL),
    (my.OperationalError(1045, "Access denied for user 'nova'@'10.0.0.1'"), Blame.CELL),
    (my.OperationalError(1054, "Unknown column 'display_name' in 'SELECT'"), Blame.CONFIG),
    (my.ProgrammingError(1146, "Table 'nova_cell1.instances' doesn't exist"), Blame.CONFIG),
    (my.OperationalError(1142, "SELECT command denied to user 'cellgate'"), Blame.CONFIG),
    (
        my.OperationalError(1969, "Query execution was interrupted (max_statement_time exceeded)"),
        Blame.SLOW,
    ),
    (
        my.OperationalError(
            3024, "Query execution was interrupted, maximum statement execution time exceeded"
        ),
        Blame.SLOW,
    ),
    (my.OperationalError(1317, "Query execution was interrupted"), Blame.SLOW),
    (
        my.OperationalError(1139, "Regex error 'missing closing parenthesis at offset 2'"),
        Blame.CLIENT,
    ),
    (my.OperationalError(3692, "Mismatched parenthesis in regular expression."), Blame.CLIENT),
    (my.OperationalError(1267, "Illegal mix of collations"), Blame.CLIENT),
]


@pytest.mark.parametrize(("error", "expected"), CASES, ids=lambda c: str(getattr(c, "args", c)))
def test_driver_errors(error: Exception, expected: Blame) -> None:
    assert isinstance(error, DATABASE_ERRORS)
    fault = blame(error)
    assert fault.blame is expected
    assert fault.message.startswith(f"({error.args[0]}) ")
    assert error.args[1] in fault.message


@pytest.mark.parametrize(("error", "expected"), CASES[:10:3])
def test_wrapped_by_sqlalchemy(error: Exception, expected: Blame) -> None:
    wrapped = DBAPIError.instance("SELECT 1", None, error, my.Error)
    assert blame(wrapped).blame is expected


def test_not_mysql_errors_have_no_number() -> None:
    assert mysql_code(ValueError(2003, "x")) is None
    assert mysql_code(my.OperationalError("no number")) is None
    assert blame(OSError(111, "Connection refused")).blame is Blame.CELL
