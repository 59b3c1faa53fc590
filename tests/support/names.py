"""Names that collide under MariaDB's ``utf8_general_ci`` (case, accents, trailing spaces).

Seeded cells get some of them written over their generated names, so every listing that
sorts or filters by name meets values equal under the database's own collation and
distinct by code point — and the walks must still equal the code-point oracle.
"""

from __future__ import annotations

from sqlalchemy import case, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from cells.registry import async_url
from cells.schema import instances

__all__ = ["HOST_VARIANTS", "NAME_VARIANTS", "vary_names"]

NAME_VARIANTS = ("web", "Web", "WEB", "wéb", "wÉb", "web ", "web  ", "Web ", "wëb", "weß")
"""Equal under ``utf8_general_ci`` (``ß`` = ``s`` aside), distinct by code point."""

HOST_VARIANTS = ("compute-01", "Compute-01", "compute-01 ", "cömpute-01")


async def vary_names(url: str, every: int = 7) -> None:
    """Write :data:`NAME_VARIANTS` over the display name (and :data:`HOST_VARIANTS` over
    the host) of every ``every``-th instance of the cell at ``url``."""
    c = instances.c
    names = case(
        *((c.id % len(NAME_VARIANTS) == i, name) for i, name in enumerate(NAME_VARIANTS)),
    )
    hosts = case(
        *((c.id % len(HOST_VARIANTS) == i, host) for i, host in enumerate(HOST_VARIANTS)),
    )
    statement = update(instances).where(c.id % every == 3).values(display_name=names, host=hosts)
    engine = create_async_engine(async_url(url), poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await conn.execute(statement)
    finally:
        await engine.dispose()
