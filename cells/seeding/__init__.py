"""Seeding: the writer that creates Nova's API and cell databases and fills them with
generated, adversarial rows (``cellgate seed``, the demo, the tests and the benchmarks).

The gateway only reads cells; this package is the one part of :mod:`cells` that writes,
so nothing on the read path imports it (``tests/unit/test_layers.py`` checks).

=============  ==============================================================
``dataset``    the plan and the data's shape: columns, flavors, weights (pure)
``generator``  instance rows, mappings and side rows drawn from a plan (pure)
``siderows``   Nova's side tables for one instance (pure)
``apirows``    the API database's scheduling rows (pure)
``writer``     databases, tables and the load, per backend (the I/O)
``pgload``     PostgreSQL: secondary indexes and foreign keys rebuilt after ``COPY``
``mysqlload``  MariaDB/MySQL: databases and the loading session
=============  ==============================================================
"""

from cells.seeding.dataset import SeedPlan
from cells.seeding.writer import (
    SeedCell,
    SeedSummary,
    cell_uuid,
    drop_database,
    ensure_database,
    reset_database,
    seed,
)

__all__ = [
    "SeedCell",
    "SeedPlan",
    "SeedSummary",
    "cell_uuid",
    "drop_database",
    "ensure_database",
    "reset_database",
    "seed",
]
