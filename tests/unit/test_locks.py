"""The locks (``locks/*.txt``) pin everything an install takes, and agree with their sources."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]
LOCKS = ROOT / "locks"


def _pins(lock: str) -> dict[str, str]:
    """``{name: version}`` of a lock's ``name==version`` lines (markers dropped)."""
    pins: dict[str, str] = {}
    for line in (LOCKS / lock).read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9._-]+)==([^\s;]+)", line):
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def _project() -> dict[str, list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"runtime": project["dependencies"]}
    groups.update(project["optional-dependencies"])
    return groups


def test_every_dependency_and_extra_is_pinned_within_its_range() -> None:
    pins = _pins("cellgate.txt")
    wrong = []
    for group, requirements in _project().items():
        for text in requirements:
            req = Requirement(text)
            pinned = pins.get(canonicalize_name(req.name))
            if pinned is None or not req.specifier.contains(pinned, prereleases=True):
                wrong.append(f"{group}: {text} -> {pinned}")
    assert wrong == [], "run scripts/lock"


def test_pytest_stays_below_the_release_schemathesis_breaks_under() -> None:
    assert _pins("cellgate.txt")["pytest"].startswith("8.")


def test_keystone_lock_holds_what_the_script_installs() -> None:
    import keystone_server

    asked = [
        line for line in (LOCKS / "keystone.in").read_text().splitlines() if line[:1].isalnum()
    ]
    assert set(keystone_server.PACKAGES) <= set(asked)
    pins = _pins("keystone.txt")
    for text in asked:
        req = Requirement(text)
        assert req.specifier.contains(pins[canonicalize_name(req.name)])


def test_nova_lock_holds_the_release_the_conformance_check_uses() -> None:
    import nova_conformance

    assert _pins("nova.txt")["nova"] == nova_conformance.DEFAULT_NOVA
    assert f"nova=={nova_conformance.DEFAULT_NOVA}" in (LOCKS / "nova.in").read_text()
    pins = _pins("nova.txt")
    unpinned = [d for d in nova_conformance.MODEL_DEPS if canonicalize_name(d) not in pins]
    assert unpinned == []
