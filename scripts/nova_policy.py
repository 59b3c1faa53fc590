#!/usr/bin/env python3
"""Nova's own policy decisions, from the pinned ``nova`` release: the reference
``tests/integration/test_policy_nova.py`` compares :mod:`gateway.policy` with.

    scripts/nova_policy.py venv                       # build it if needed; print its python
    <that python> scripts/nova_policy.py evaluate < request.json

``evaluate`` runs inside the venv (no cellgate import): it registers what Nova registers
(``nova.policies.list_rules()``) in an oslo.policy ``Enforcer``, loads the request's policy
file as nova-api does, and answers each case with credentials built as Nova builds them
(oslo.context's ``RequestContext``). The request is JSON::

    {"policy_file": "/path/policy.yaml" or null,
     "cases": [{"rule": "...", "user_id": "...", "project_id": "...", "roles": [...],
                "is_admin_project": true, "target": {"project_id": "...", ...}}]}

and the answer ``{"rules": {name: {"check_str", "scope_types", "deprecated_name"}},
"decisions": [bool, ...]}``.

The venv (``${XDG_CACHE_HOME:-~/.cache}/cellgate/nova-policy-venv``) holds ``nova`` and only
what importing ``nova.policies`` needs, pinned by ``locks/nova.txt``, installed without
dependencies (seconds, not the minutes of a whole nova-api).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from venvs import LOCKS, ensure_venv

__all__ = ["PACKAGES", "evaluate", "policy_venv"]

PACKAGES = (
    "nova==34.0.0",
    "oslo.policy", "oslo.config", "oslo.context", "oslo.i18n", "oslo.log",
    "oslo.serialization", "oslo.utils", "stevedore", "PyYAML", "requests", "certifi",
    "charset-normalizer", "idna", "urllib3", "iso8601", "netaddr", "rfc3986",
    "typing_extensions", "Paste", "PasteDeploy", "debtcollector", "wrapt", "pbr",
    "packaging", "tzdata", "psutil", "msgpack", "python-dateutil", "six", "pyparsing",
)  # fmt: skip
"""What ``import nova.policies`` needs, with no dependency resolution (the lock pins all)."""


def policy_venv() -> Path:
    """The venv's python, built on first use (see the module docstring)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    venv = Path(cache) / "cellgate" / "nova-policy-venv"
    return ensure_venv(
        venv, PACKAGES, constraints=LOCKS / "nova.txt", no_deps=True, label="nova_policy"
    )


def evaluate(request: dict[str, Any]) -> dict[str, Any]:
    """Nova's rules and decisions for ``request`` (inside the Nova venv only)."""
    from nova import policies  # type: ignore[import-not-found]  # nova is installed only in the Nova venv this runs in
    from oslo_config import cfg
    from oslo_context import context
    from oslo_policy import policy

    warnings.simplefilter("ignore")  # deprecation notices on stderr would be noise
    conf = cfg.ConfigOpts()
    conf(args=[], project="nova", default_config_files=[], default_config_dirs=[])
    policy_file = request.get("policy_file")
    enforcer = policy.Enforcer(conf, policy_file=policy_file)
    enforcer.register_defaults(policies.list_rules())
    enforcer.load_rules()
    decisions = []
    for case in request["cases"]:
        creds = context.RequestContext(
            user_id=case["user_id"],
            project_id=case["project_id"],
            roles=case["roles"],
            is_admin_project=case["is_admin_project"],
        )
        decisions.append(
            bool(enforcer.authorize(case["rule"], case["target"], creds, do_raise=False))
        )
    rules = {
        name: {
            "check_str": rule.check_str,
            "scope_types": rule.scope_types,
            "deprecated_name": rule.deprecated_rule.name if rule.deprecated_rule else None,
        }
        for name, rule in enforcer.registered_rules.items()
    }
    return {"rules": rules, "decisions": decisions}


def main(argv: list[str]) -> int:
    match argv:
        case ["venv"]:
            print(policy_venv())
        case ["evaluate"]:
            json.dump(evaluate(json.load(sys.stdin)), sys.stdout)
        case _:
            print(__doc__, file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
