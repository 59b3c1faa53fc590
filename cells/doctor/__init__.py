"""``cellgate doctor``'s checks: the API database and every cell as the listing sees them,
read-only (rendered and run by :mod:`gateway.doctor`).

The doctor is a tool beside the gateway, not part of its read path: nothing that serves a
request imports this package (``tests/unit/test_layers.py`` checks).

=============  ==============================================================
``diagnosis``  reachability, latency, version, schema, instances, indexes
``catalog``    what a database says about itself: version, collation, indexes
``indexes``    which listing orders an index serves, and the one that would (pure)
=============  ==============================================================
"""

from cells.doctor.diagnosis import (
    DatabaseReport,
    Diagnosis,
    OrderReport,
    diagnose,
    examine_cell,
    read_only_engine,
    read_only_engine_for,
)

__all__ = [
    "DatabaseReport",
    "Diagnosis",
    "OrderReport",
    "diagnose",
    "examine_cell",
    "read_only_engine",
    "read_only_engine_for",
]
