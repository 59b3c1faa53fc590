"""The import rules hold: ``[tool.importlinter]`` in pyproject.toml, checked by import-linter.

``cells`` and ``cache`` never import the gateway or FastAPI; ``cache`` imports nothing of
ours; ``cells`` never imports ``cache``; what serves a request never reaches the seeding
writer (``cells.seeding``), the doctor (``cells.doctor``, ``gateway.doctor``), the demo's
drills (``gateway.demo``) or the CLI, and only their own front doors import those. The
report names each broken contract and the import chain that breaks it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
# In a child process: import-linter configures logging for the whole process (disabling
# the loggers other tests capture).
LINT = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"
)


def test_the_import_contracts_are_kept() -> None:
    run = subprocess.run(
        [sys.executable, "-c", LINT], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
