"""cellgate's policy against Nova 34.0.0's own (``scripts/nova_policy.py``: Nova's registered
rules in oslo.policy, credentials built as Nova builds them): the defaults cellgate
registers are Nova's, and on the same policy files every rule gives the same decision for
readers, members, admins, an auditor and others, on their own project and on another."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import nova_policy
import pytest

from gateway.auth import Principal, principal
from gateway.novapolicy import nova_defaults
from gateway.policy import Policy

pytestmark = pytest.mark.integration

SCRIPT = Path(nova_policy.__file__)
ROLES = [
    ["reader"],
    ["member", "reader"],
    ["admin", "member", "reader"],
    ["admin"],
    ["auditor", "reader"],
    ["auditor"],
    [],
    ["manager", "member", "reader"],
    ["service"],
    ["cloud-admin", "reader"],
    ["ops", "reader"],
    ["specs", "reader"],
]
AUDITOR_POLICY = """\
"os_compute_api:servers:index:get_all_tenants": "rule:context_is_admin or role:auditor"
"os_compute_api:servers:detail:get_all_tenants": "rule:context_is_admin or role:auditor"
"""
FILES = {
    "defaults": None,
    "auditor": ("policy.yaml", AUDITOR_POLICY),
    "views": (
        "policy.yaml",
        '"os_compute_api:servers:show:host_status:unknown-only": "@"\n'
        '"os_compute_api:servers:show:flavor-extra-specs": "!"\n'
        '"os_compute_api:os-extended-server-attributes": "role:ops"\n'
        '"os_compute_api:servers:allow_all_filters": "role:ops or rule:admin_api"\n',
    ),
    "admin-role": ("policy.json", '{"context_is_admin": "role:cloud-admin"}'),
    "strict-admin-project": (
        "policy.yaml",
        '"context_is_admin": "role:admin and is_admin_project:True"\n',
    ),
    "renamed": ("policy.yaml", '"os_compute_api:os-flavor-extra-specs:index": "role:specs"\n'),
    "owner": (
        "policy.yaml",
        '"os_compute_api:servers:show": "project_id:%(project_id)s and user_id:%(user_id)s"\n',
    ),
}


@pytest.fixture(scope="module")
def nova_python() -> Iterator[Path]:
    """The Nova policy venv; skipped (failed under CI) without PyPI."""
    try:
        yield nova_policy.policy_venv()
    except subprocess.CalledProcessError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"could not install the Nova policy venv: {exc}")


def _nova(python: Path, request: dict[str, object]) -> dict[str, object]:
    out = subprocess.run(
        [str(python), str(SCRIPT), "evaluate"],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    answer: dict[str, object] = json.loads(out)
    return answer


def test_the_registered_defaults_are_novas(nova_python: Path) -> None:
    rules = _nova(nova_python, {"policy_file": None, "cases": []})["rules"]
    assert isinstance(rules, dict)
    for rule in nova_defaults():
        nova = rules[rule.name]
        assert rule.check_str == nova["check_str"], rule.name
        assert (rule.scope_types or None) == (nova["scope_types"] or None), rule.name
        deprecated = rule.deprecated_rule.name if rule.deprecated_rule else None
        assert deprecated == nova["deprecated_name"], rule.name


@pytest.mark.parametrize("variant", FILES)
def test_every_decision_is_novas(nova_python: Path, tmp_path: Path, variant: str) -> None:
    spec = FILES[variant]
    path = None
    if spec is not None:
        path = tmp_path / spec[0]
        path.write_text(spec[1])
    ours = Policy(path)
    names = [rule.name for rule in nova_defaults()]
    cases: list[dict[str, object]] = []
    expected: list[bool] = []
    for roles, admin_project, (user, target_project), name in itertools.product(
        ROLES, [True, False], [("u1", "p1"), ("u2", "p2")], names
    ):
        caller: Principal = principal(
            ours, "u1", "p1", frozenset(roles), is_admin_project=admin_project
        )
        target = {"project_id": target_project, "user_id": user}
        cases.append(
            {
                "rule": name,
                "user_id": "u1",
                "project_id": "p1",
                "roles": roles,
                "is_admin_project": admin_project,
                "target": target,
            }
        )
        expected.append(ours.allowed(name, caller.credentials, target_project, user))
    decisions = _nova(nova_python, {"policy_file": str(path) if path else None, "cases": cases})
    differences = [
        (case["rule"], case["roles"], case["is_admin_project"], case["target"], mine)
        for case, mine, theirs in zip(cases, expected, decisions["decisions"], strict=True)  # type: ignore[call-overload]  # the decisions are parsed JSON (object)
        if mine != theirs
    ]
    assert differences == []
    assert len(cases) == len(ROLES) * 2 * 2 * len(names)
