"""Nova 34's policy defaults for what the listing and show consult, as oslo.policy rules.

The names and check strings are Nova 34.0.0's, taken from its generated sample
(``oslopolicy-sample-generator --namespace nova`` in a venv holding ``nova==34.0.0`` from
``locks/nova.txt``); ``tests/integration/test_policy_nova.py`` compares them with what
that Nova registers, and evaluates both on the same policy files. Besides the rules the
gateway asks about, the base rules they reference are registered (an operator's file may
reference them too), Nova's deprecated ones included.
"""

from __future__ import annotations

from typing import Final

from oslo_policy.policy import DeprecatedRule, DocumentedRuleDefault, Operation, RuleDefault

__all__ = [
    "ALL_FILTERS",
    "CONTEXT_IS_ADMIN",
    "DETAIL",
    "DETAIL_ALL_TENANTS",
    "EXTENDED_ATTRIBUTES",
    "FLAVOR_EXTRA_SPECS",
    "HOST_STATUS",
    "HOST_STATUS_UNKNOWN_ONLY",
    "INDEX",
    "INDEX_ALL_TENANTS",
    "SHOW",
    "nova_defaults",
]

CONTEXT_IS_ADMIN: Final = "context_is_admin"
INDEX: Final = "os_compute_api:servers:index"
DETAIL: Final = "os_compute_api:servers:detail"
INDEX_ALL_TENANTS: Final = "os_compute_api:servers:index:get_all_tenants"
DETAIL_ALL_TENANTS: Final = "os_compute_api:servers:detail:get_all_tenants"
ALL_FILTERS: Final = "os_compute_api:servers:allow_all_filters"
SHOW: Final = "os_compute_api:servers:show"
FLAVOR_EXTRA_SPECS: Final = "os_compute_api:servers:show:flavor-extra-specs"
HOST_STATUS: Final = "os_compute_api:servers:show:host_status"
HOST_STATUS_UNKNOWN_ONLY: Final = "os_compute_api:servers:show:host_status:unknown-only"
EXTENDED_ATTRIBUTES: Final = "os_compute_api:os-extended-server-attributes"

_PROJECT: Final = ["project"]
_LIST: Final[list[Operation]] = [{"method": "GET", "path": "/servers"}]
_DETAIL: Final[list[Operation]] = [{"method": "GET", "path": "/servers/detail"}]
_SHOW: Final[list[Operation]] = [{"method": "GET", "path": "/servers/{server_id}"}]
_VIEWS: Final[list[Operation]] = [*_SHOW, *_DETAIL]

_SINCE: Final = "21.0.0"
_REASON: Final = (
    "Nova API policies are introducing new default roles with scope_type capabilities. "
    "Old policies are deprecated and silently going to be ignored in nova 23.0.0 release."
)
_ADMIN_API: Final = DeprecatedRule(
    "rule:admin_api", "is_admin:True", deprecated_reason=_REASON, deprecated_since=_SINCE
)
_ADMIN_OR_OWNER: Final = DeprecatedRule(
    "rule:admin_or_owner",
    "is_admin:True or project_id:%(project_id)s",
    deprecated_reason=_REASON,
    deprecated_since=_SINCE,
)
_BASE: Final = (
    ("project_manager_api", "role:manager and project_id:%(project_id)s", _ADMIN_API),
    ("project_member_api", "role:member and project_id:%(project_id)s", _ADMIN_OR_OWNER),
    ("project_reader_api", "role:reader and project_id:%(project_id)s", _ADMIN_OR_OWNER),
    ("service_api", "role:service", _ADMIN_API),
    ("project_manager_or_admin", "rule:project_manager_api or rule:context_is_admin", _ADMIN_API),
    (
        "project_member_or_admin",
        "rule:project_member_api or rule:context_is_admin",
        _ADMIN_OR_OWNER,
    ),
    (
        "project_reader_or_admin",
        "rule:project_reader_api or rule:context_is_admin",
        _ADMIN_OR_OWNER,
    ),
    ("service_or_admin", "rule:service_api or rule:context_is_admin", _ADMIN_API),
)
"""Nova's base rules (name, check string, the deprecated rule it replaced)."""
_REMOVED: Final = (
    ("admin_or_owner", "is_admin:True or project_id:%(project_id)s"),
    ("admin_api", "is_admin:True"),
)
"""Nova's base rules deprecated for removal (registered: a policy file may name them)."""


def _servers(
    name: str, check: str, description: str, operations: list[Operation]
) -> DocumentedRuleDefault:
    return DocumentedRuleDefault(
        name=name,
        check_str=check,
        description=description,
        operations=operations,
        scope_types=_PROJECT,
    )


def nova_defaults(admin_check: str = "role:admin") -> list[RuleDefault]:
    """Nova 34's defaults of the rules listing and show consult, with the base rules they
    use; ``admin_check`` replaces ``context_is_admin``'s ``role:admin`` (the deprecated
    ``admin_role`` setting)."""
    return [
        RuleDefault(
            CONTEXT_IS_ADMIN,
            admin_check,
            "Decides what is required for the 'is_admin:True' check to succeed.",
            deprecated_rule=_ADMIN_API,
        ),
        *(
            RuleDefault(
                name,
                check,
                deprecated_for_removal=True,
                deprecated_reason=_REASON,
                deprecated_since=_SINCE,
            )
            for name, check in _REMOVED
        ),
        *(RuleDefault(name, check, deprecated_rule=old) for name, check, old in _BASE),
        _servers(INDEX, "rule:project_reader_or_admin", "List all servers", _LIST),
        _servers(DETAIL, "rule:project_reader_or_admin", "List all servers with details", _DETAIL),
        _servers(INDEX_ALL_TENANTS, "rule:context_is_admin", "List servers of all projects", _LIST),
        _servers(
            DETAIL_ALL_TENANTS,
            "rule:context_is_admin",
            "List servers of all projects with details",
            _DETAIL,
        ),
        _servers(
            ALL_FILTERS,
            "rule:context_is_admin",
            "Allow all filters when listing servers",
            [*_LIST, *_DETAIL],
        ),
        _servers(SHOW, "rule:project_reader_or_admin", "Show a server", _SHOW),
        DocumentedRuleDefault(
            name=FLAVOR_EXTRA_SPECS,
            check_str="rule:project_reader_or_admin",
            description="The flavor's extra specs in a server (microversion 2.47 and later)",
            operations=_VIEWS,
            scope_types=_PROJECT,
            deprecated_rule=DeprecatedRule(
                name="os_compute_api:os-flavor-extra-specs:index",
                check_str="rule:admin_or_owner",
                deprecated_reason="Showing flavor extra specs in server responses has a "
                "policy of its own.",
                deprecated_since="25.0.0",
            ),
        ),
        _servers(
            HOST_STATUS,
            "rule:context_is_admin",
            "A server's host_status, whatever its value (microversion 2.16 and later)",
            _VIEWS,
        ),
        _servers(
            HOST_STATUS_UNKNOWN_ONLY,
            "rule:context_is_admin",
            "A server's host_status when it is UNKNOWN (checked when host_status is denied)",
            _VIEWS,
        ),
        _servers(
            EXTENDED_ATTRIBUTES,
            "rule:context_is_admin",
            "The OS-EXT-SRV-ATTR:* attributes (hostname for everyone from 2.90)",
            _VIEWS,
        ),
    ]
