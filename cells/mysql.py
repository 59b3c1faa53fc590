"""What a MySQL-family (MariaDB, MySQL) cell connection needs beyond SQLAlchemy's defaults.

**Deadlines on the server.** Every connection gets a session statement limit at connect:
MariaDB ``max_statement_time`` (seconds; a statement past it fails with error 1969) or
MySQL ``max_execution_time`` (milliseconds, for ``SELECT``; error 3024). It equals the
cell call's deadline, as PostgreSQL's ``statement_timeout`` does: the server stops a query
that outlives its caller even when no cancel can reach it (behind ProxySQL or an
HAProxy-balanced Galera there is no out-of-band ``KILL QUERY`` that finds the right
backend). The client side of the deadline is ``asyncio.timeout`` (:mod:`cells.session`):
asyncmy closes a connection whose read is cancelled, and :class:`MySqlExecutor` closes the
socket of a discarded connection at once (no ``COM_QUIT`` to a server that may be hung),
before the pool invalidates it: it is never pooled again.

**Character set.** ``utf8mb4`` on the connection unless the URL names one (Nova's often say
``?charset=utf8``): a regular expression or a value from a PostgreSQL cell may carry
characters beyond the BMP; the server converts the ``utf8`` (utf8mb3) columns up to it.
"""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from cells.executor import SqlAlchemyExecutor

__all__ = [
    "MySqlExecutor",
    "mysql_connect_args",
    "mysql_session_setup",
    "statement_limit_sql",
]


EXPENSIVE_SUBQUERY_LIMIT = 2**62


class MySqlExecutor(SqlAlchemyExecutor):
    """asyncmy through SQLAlchemy's ``execute``. At the deadline nothing more is needed:
    the server's own statement limit ends the query (see the module docstring). Keyset
    queries carry a bound on their first key (:meth:`cells.plan.QueryPlan.select`)."""

    bounds_first_key = True

    def _terminate(self, driver: object) -> None:
        """Close the socket now (asyncmy's ``close`` is synchronous: no ``COM_QUIT``)."""
        close = getattr(driver, "close", None)
        if close is not None:
            close()


def mysql_connect_args(url: str, connect_timeout_s: float) -> dict[str, object]:
    """asyncmy's connect arguments: a connect timeout and the ``utf8mb4`` character set
    unless ``url`` chooses one."""
    args: dict[str, object] = {"connect_timeout": max(connect_timeout_s, 0.001)}
    if "charset" not in make_url(url).query:
        args["charset"] = "utf8mb4"
    return args


def statement_limit_sql(server_version: str, timeout_s: float) -> str:
    """The ``SET SESSION`` that bounds every statement by ``timeout_s`` on this server."""
    if "mariadb" in server_version.lower():
        # Uncorrelated subqueries evaluated while optimizing, however many rows the
        # optimizer guesses they read: the keyset bound's (a LIMIT 1 on an index) then
        # becomes an index range (cells.plan).
        return (
            f"SET SESSION max_statement_time = {max(timeout_s, 0.001):.3f}, "
            f"expensive_subquery_limit = {EXPENSIVE_SUBQUERY_LIMIT}"
        )
    return f"SET SESSION max_execution_time = {max(1, round(timeout_s * 1000))}"


def mysql_session_setup(engine: AsyncEngine, timeout_s: float) -> None:
    """Run :func:`statement_limit_sql` on every new connection of ``engine``."""

    def on_connect(dbapi_connection: object, _record: object) -> None:
        driver = dbapi_connection.driver_connection  # type: ignore[attr-defined]  # the DBAPI connection of SQLAlchemy's connect event, untyped there
        statement = statement_limit_sql(str(driver.get_server_info()), timeout_s)
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]  # the DBAPI connection, as above
        try:
            cursor.execute(statement)
        finally:
            cursor.close()

    event.listen(engine.sync_engine, "connect", on_connect)
