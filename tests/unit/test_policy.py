"""gateway.policy: Nova 34's defaults for roles reader, member and admin, an operator's
policy file (an ``auditor`` role allowed ``get_all_tenants``), re-reading a changed file,
and keeping the rules in force when it breaks. Policy files are temporary files."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from gateway.auth import Principal, principal
from gateway.errors import Forbidden
from gateway.novapolicy import nova_defaults
from gateway.policy import ADMIN_VIEW, READER_VIEW, ListGrants, Policy, ViewGrants

README = (Path(__file__).parents[2] / "README.md").read_text()
DEFAULTS = Policy()

READER = frozenset({"reader"})
MEMBER = frozenset({"member", "reader"})  # Keystone lists implied roles too
ADMIN = frozenset({"admin", "member", "reader"})
AUDITOR = frozenset({"auditor", "reader"})

AUDITOR_POLICY = """\
"os_compute_api:servers:index:get_all_tenants": "rule:context_is_admin or role:auditor"
"os_compute_api:servers:detail:get_all_tenants": "rule:context_is_admin or role:auditor"
"""


def _caller(policy: Policy, roles: frozenset[str], project: str = "p1") -> Principal:
    return principal(policy, "u1", project, roles)


def _grants(policy: Policy, roles: frozenset[str], detail: bool) -> ListGrants:
    return policy.listing(_caller(policy, roles), detail=detail)


def _file(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("detail", [False, True])
@pytest.mark.parametrize(
    ("roles", "listing", "admin", "view"),
    [
        (READER, True, False, READER_VIEW),
        (MEMBER, True, False, READER_VIEW),
        (ADMIN, True, True, ADMIN_VIEW),
        (frozenset({"admin"}), True, True, ADMIN_VIEW),  # admin alone is enough
        (AUDITOR, True, False, READER_VIEW),
        (frozenset({"auditor"}), False, False, ViewGrants(False, "none", False, False)),
        (frozenset(), False, False, ViewGrants(False, "none", False, False)),
    ],
)
def test_default_matrix(
    roles: frozenset[str], listing: bool, admin: bool, view: ViewGrants, detail: bool
) -> None:
    grants = _grants(DEFAULTS, roles, detail)
    assert grants.allowed is listing
    assert grants.rule == (
        "os_compute_api:servers:detail" if detail else "os_compute_api:servers:index"
    )
    # get_all_tenants, allow_all_filters and context_is_admin are all rule:context_is_admin.
    assert grants.all_tenants is grants.all_filters is grants.admin is admin
    assert grants.all_tenants_rule == grants.rule + ":get_all_tenants"
    assert grants.view == view


@pytest.mark.parametrize(
    ("roles", "own", "other"),
    [
        (READER, READER_VIEW, None),  # another project's server: 403
        (MEMBER, READER_VIEW, None),
        (ADMIN, ADMIN_VIEW, ADMIN_VIEW),
        (AUDITOR, READER_VIEW, None),
    ],
)
def test_show_decides_on_the_servers_project(
    roles: frozenset[str], own: ViewGrants, other: ViewGrants | None
) -> None:
    caller = _caller(DEFAULTS, roles)
    assert DEFAULTS.show(caller, "p1") == own
    if other is None:
        with pytest.raises(Forbidden, match=r"os_compute_api:servers:show"):
            DEFAULTS.show(caller, "p2")
    else:
        assert DEFAULTS.show(caller, "p2") == other


def test_an_auditor_role_allowed_get_all_tenants(tmp_path: Path) -> None:
    policy = Policy(_file(tmp_path, AUDITOR_POLICY))
    for detail in (False, True):
        auditor = _grants(policy, AUDITOR, detail)
        assert auditor.allowed
        assert auditor.all_tenants
        assert not auditor.all_filters  # only get_all_tenants was granted
        assert not auditor.admin
        assert auditor.view == READER_VIEW
        assert not _grants(policy, READER, detail).all_tenants
        assert not _grants(policy, MEMBER, detail).all_tenants
        assert _grants(policy, ADMIN, detail).all_tenants
    # Without reader the listing itself is still denied: the file did not grant it.
    assert not _grants(policy, frozenset({"auditor"}), False).allowed


def test_a_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    policy = Policy(
        _file(
            tmp_path,
            '"os_compute_api:servers:show:host_status:unknown-only": "@"\n'
            '"os_compute_api:servers:show:flavor-extra-specs": "!"\n'
            '"os_compute_api:os-extended-server-attributes": "role:ops"\n',
        )
    )
    reader = _grants(policy, READER, True)
    assert reader.view == ViewGrants(False, "unknown-only", False, False)
    ops = _grants(policy, READER | {"ops"}, True)
    assert ops.view == ViewGrants(True, "unknown-only", False, False)
    assert not ops.all_tenants
    # The file replaced extended attributes' default: an admin without ops loses them.
    assert _grants(policy, ADMIN, True).view == ViewGrants(False, "all", False, True)


def test_json_policy_files_too(tmp_path: Path) -> None:
    policy = Policy(_file(tmp_path, '{"context_is_admin": "role:cloud-admin"}', "policy.json"))
    assert _caller(policy, frozenset({"cloud-admin"})).is_admin
    assert not _caller(policy, ADMIN).is_admin
    # The defaults built on context_is_admin follow it.
    assert _grants(policy, frozenset({"cloud-admin"}), False).all_tenants


def test_a_changed_file_is_read_again(tmp_path: Path) -> None:
    path = _file(tmp_path, "{}\n")
    policy = Policy(path)
    assert not _grants(policy, AUDITOR, False).all_tenants
    path.write_text(AUDITOR_POLICY)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    # Every request reads it again if its modification time moved (is_admin does).
    assert _grants(policy, AUDITOR, False).all_tenants
    # Removing an override brings back the default.
    path.write_text("{}\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert not _grants(policy, AUDITOR, False).all_tenants


def test_a_broken_file_keeps_the_rules_in_force(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _file(tmp_path, AUDITOR_POLICY)
    policy = Policy(path)
    path.write_text('"os_compute_api:servers:index": [unclosed\n')
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with caplog.at_level(logging.ERROR, logger="gateway.policy"):
        assert _grants(policy, AUDITOR, False).all_tenants
        assert _grants(policy, AUDITOR, True).all_tenants
    assert caplog.text.count("rules kept") == 1  # once per broken version of the file


def test_a_deleted_file_means_the_defaults(tmp_path: Path) -> None:
    # As oslo.policy (and so nova-api) reads it: no file, no overrides.
    path = _file(tmp_path, AUDITOR_POLICY)
    policy = Policy(path)
    assert _grants(policy, AUDITOR, False).all_tenants
    path.unlink()
    assert not _grants(policy, AUDITOR, False).all_tenants
    assert _grants(policy, ADMIN, False).all_tenants


def test_a_broken_or_missing_file_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Policy(tmp_path / "missing.yaml")
    with pytest.raises(ValueError):  # noqa: PT011 - oslo.policy's parse error
        Policy(_file(tmp_path, '"os_compute_api:servers:index": [unclosed\n'))


def test_the_renamed_rule_an_old_file_overrides_still_applies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Nova 25 split servers:show:flavor-extra-specs from os-flavor-extra-specs:index; a file
    # overriding only the old name keeps governing the servers' extra specs (and says so).
    old = '"os_compute_api:os-flavor-extra-specs:index": "role:specs"\n'
    with caplog.at_level(logging.WARNING, logger="gateway.policy"):
        policy = Policy(_file(tmp_path, old))
    assert "was deprecated in 25.0.0" in caplog.text
    assert not _grants(policy, READER, True).view.flavor_extra_specs
    assert _grants(policy, READER | {"specs"}, True).view.flavor_extra_specs


def test_deprecated_admin_role() -> None:
    policy = Policy(admin_role="cloud-admin")
    assert _caller(policy, frozenset({"cloud-admin"})).is_admin
    assert not _caller(policy, ADMIN).is_admin


def test_the_readme_lists_every_default() -> None:
    section = README.split("## Nova's policy", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([^`]+)` \| `([^`]+)` \|", section, re.MULTILINE))
    assert rows == {rule.name: rule.check_str for rule in nova_defaults()}
