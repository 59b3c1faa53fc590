"""Database URLs: Nova's sync URLs mapped onto cellgate's async drivers, and Nova's templated
``cell_mappings`` URLs expanded.

:func:`async_url` maps a Nova-style URL to the one async driver cellgate uses per backend:

=============================================================  ========================
Nova-style scheme                                              async driver
=============================================================  ========================
``postgresql``, ``postgres``, ``postgresql+psycopg2`` / ``…``  ``postgresql+asyncpg``
``mysql``, ``mysql+pymysql``, ``mysql+mysqldb``,               ``mysql+asyncmy``
``mysql+aiomysql``, ``mysql+asyncmy`` (and ``mariadb+…``)
``sqlite``, ``sqlite+pysqlite``                                ``sqlite+aiosqlite``
=============================================================  ========================

**asyncmy over aiomysql.** ``scripts/mysqldrivers.py`` walks the same keyset pages (pages
of 100, the summary's and the detail view's columns, default order) through SQLAlchemy
with each driver against one MariaDB 10.11 cell of 13,344 instances. Walking one
project's 691 servers (the server's share small), median per page: asyncmy 0.2.18 took
4.0 ms wall / 1.3 ms CPU (summary) and 4.7 / 1.9 ms (detail), aiomysql 0.3.2 6.2 / 2.7 ms
and 8.6 / 5.1 ms: asyncmy's protocol and row decoding are compiled (Cython), aiomysql's
are PyMySQL's pure Python, and the gateway's CPU is what a page costs. Walking every
project (the server's filesort dominating, ~55 ms a page) the CPU kept the same ratio.
asyncmy also logs server warnings instead of raising Python warnings, closes a connection
whose read is cancelled, and supports ``LOAD DATA LOCAL INFILE`` (the seeder's).

Nova's ``CellMapping.format_db_url`` lets a ``database_connection`` be a template such as
``{scheme}://{username}:{password}@{hostname}:{port}/nova_cell1?{query}``, filled from the
``[database] connection`` URL of ``nova.conf``; :func:`format_db_url` does the same with
the URL given in settings (``CELLGATE_DATABASE_CONNECTION``).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from cells.errors import UnsupportedDatabase

__all__ = ["MYSQL_DRIVER", "UnsupportedDatabase", "async_url", "format_db_url"]

log = logging.getLogger(__name__)

MYSQL_DRIVER = "mysql+asyncmy"
"""The async driver every MySQL-family URL is mapped to (see the module docstring)."""

_DRIVERS = {
    "postgresql": "postgresql+asyncpg",
    "postgresql+psycopg2": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    **{
        f"{family}{driver}": MYSQL_DRIVER
        for family in ("mysql", "mariadb")
        for driver in ("", "+pymysql", "+mysqldb", "+aiomysql", "+asyncmy")
    },
}


def async_url(url: str, owner: str = "database") -> str:
    """Map a Nova-style sync URL to its async SQLAlchemy URL; ``owner`` names it in errors.

    The password never appears in the error.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # sqlalchemy raises ArgumentError for junk
        raise UnsupportedDatabase(f"{owner}: cannot parse database URL") from exc
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise UnsupportedDatabase(
            f"{owner}: unsupported database URL scheme {parsed.drivername!r} "
            "(use postgresql://, mysql:// or sqlite://)"
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


def _netloc_parts(netloc: str) -> dict[str, str | None]:
    """``user:pass@host:port`` split as Nova's indexed template keys take it (the first
    ``@`` ends the credentials; a bracketed IPv6 host keeps what follows ``]`` as port)."""
    userpass, at, hostport = netloc.partition("@")
    if not at:
        userpass, hostport = "", netloc
    port: str | None = None
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError("invalid IPv6 address in URL")
        hostname, port = hostport[1:end], hostport[end + 1 :]
    elif ":" in hostport:
        hostname, _, port = hostport.partition(":")
    else:
        hostname = hostport
    username, colon, password = userpass.partition(":")
    return {
        "username": username,
        "password": password if colon else None,
        "hostname": hostname,
        "port": port,
    }


def _substitutions(default: str) -> dict[str, object]:
    parts = urlsplit(default)
    subs: dict[str, object] = {
        "scheme": parts.scheme,
        "username": parts.username,
        "password": parts.password,
        "hostname": parts.hostname,
        "port": parts.port,
        "path": parts.path.lstrip("/"),
        "query": parts.query,
        "fragment": parts.fragment,
    }
    # oslo.messaging-style several hosts (user:pass@host:port,user1:pass1@host1...): each
    # one's parts as username1, password1, hostname1, port1...
    if "," in parts.netloc:
        for index, netloc in enumerate(parts.netloc.split(","), start=1):
            for key, value in _netloc_parts(netloc).items():
                subs[f"{key}{index}"] = value
    return subs


def format_db_url(url: str, connection: str | None, owner: str = "cell") -> str:
    """``url`` with Nova's template fields filled from ``connection`` (``[database]
    connection``), as ``CellMapping.format_db_url`` does.

    Without ``connection`` the URL is returned as it is (an error is logged when it is a
    template); a template that cannot be filled (an unknown field, a malformed
    ``connection``) is also returned unchanged, logged, and then fails as an unparsable
    URL naming ``owner``. Values are substituted as they appear in ``connection`` (still
    percent-encoded), the hostname lower-cased, and a missing port or password is
    ``None``, as in Nova.
    """
    if connection is None:
        if "{" in url:
            log.error("%s: database_connection is a template but no [database] connection "
                      "is set (CELLGATE_DATABASE_CONNECTION)", owner)  # fmt: skip
        return url
    try:
        return url.format(**_substitutions(connection))
    except (KeyError, IndexError, AttributeError, ValueError) as exc:
        log.error("%s: cannot fill the database_connection template: %s", owner, exc)
        return url
