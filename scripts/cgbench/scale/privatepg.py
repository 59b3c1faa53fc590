"""``scalebench --pg private``: the benchmark's own PostgreSQL 15 server, started through
``scripts/pgserver.py`` (the one way the project starts servers) with the settings the
scale run was measured with, and left running so the next run reuses its data sets.

Everything lives under ``--pg-dir`` (default ``$TMPDIR/cellgate-scalebench``; not under
the home directory, which the ``postgres`` user may not be able to enter): the template,
the server's data, its socket directory and its log.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from pgserver import PgServer, Template, own_dir

from cgbench.console import say

DEFAULT_DIR = Path(tempfile.gettempdir()) / "cellgate-scalebench"
DEFAULT_PORT = 5499
# pg_stat_statements for P2 (rows read per the database's own statistics); room for two
# workers x 8 cells x 16 connections; the 1M-row sets fit in shared buffers; fsync off
# because the data sets are scratch (they are seeded again with --fresh).
SETTINGS: dict[str, str] = {
    "shared_preload_libraries": "pg_stat_statements",
    "max_connections": "400",
    "shared_buffers": "3GB",
    "fsync": "off",
}


def start_private(root: Path = DEFAULT_DIR, port: int = DEFAULT_PORT) -> str:
    """Start (or find running) the private server under ``root``; its URL."""
    own_dir(root)
    template = Template(root / "template")
    server = PgServer(
        datadir=root / "data",
        port=port,
        sockdir=root / "sock",
        logfile=root / "postgresql.log",
        options=SETTINGS,
    )
    made = template.copy_to(server.datadir)
    started = server.start()
    state = "started" if started else "already running"
    say(f"private PostgreSQL {state} on {server.url} ({server.datadir}{', new' if made else ''})")
    return server.url
