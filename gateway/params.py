"""Nova's query-parameter tables for the server listing (names, sort keys, policies).

Data only; :mod:`gateway.request` applies them.

Over the house size (~300 lines) on purpose: it is data, Nova's tables side by side, and
splitting it would part facts that are read together.
"""

from __future__ import annotations

# Defined in cells/ (its clients read side data by microversion; cells never import us).
from cells.microversion import Version

__all__ = [
    "ADMIN_SORT_KEYS",
    "BOOLEAN_PARAMS",
    "FALSE_VALUES",
    "IGNORED_SORT_KEYS",
    "JOINED_TABLES",
    "KNOWN_PARAMS",
    "MAX_PARAM_REPEATS",
    "MAX_REGEX_LENGTH",
    "MAX_SORT_KEYS",
    "MAX_TAGS",
    "MAX_TAG_LENGTH",
    "MAX_URL_BYTES",
    "PAGING_PARAMS",
    "PARAMS_SINCE",
    "POWER_STATE_RANGE",
    "REGEX_FILTERS",
    "REGEX_PARAMS_SINCE",
    "REPEATABLE_PARAMS",
    "SORT_KEYS_SINCE",
    "STRICT_QUERY_SINCE",
    "TAG_FILTERS",
    "TIMESTAMP_PARAMS",
    "TRUE_VALUES",
    "USER_FILTERS",
    "VALID_SORT_KEYS",
    "Version",
]


# Bounds on costly input: past them a request is a 400 naming the bound, before any cell
# is asked. Nova's own limits where it has them.
MAX_TAGS = 50  # tags in one tags/tags-any/not-tags/not-tags-any (Nova's MAX_TAG_COUNT)
MAX_TAG_LENGTH = 60  # characters in one tag (Nova's tags.tag column)
MAX_REGEX_LENGTH = 255  # characters in one regex filter (the widest filtered column)
MAX_SORT_KEYS = 16  # sort_key values (and so sort_dir values)
MAX_PARAM_REPEATS = 1000  # values of any one parameter (uuid, status, ...): max_limit's default
MAX_URL_BYTES = 8192  # path plus query string; 414 past it (eventlet's and Apache's request line)

VALID_SORT_KEYS = frozenset(
    [
        "access_ip_v4",
        "access_ip_v6",
        "auto_disk_config",
        "availability_zone",
        "config_drive",
        "created_at",
        "display_description",
        "display_name",
        "host",
        "hostname",
        "image_ref",
        "instance_type_id",
        "kernel_id",
        "key_name",
        "launch_index",
        "launched_at",
        "locked_by",
        "node",
        "power_state",
        "progress",
        "project_id",
        "ramdisk_id",
        "root_device_name",
        "task_state",
        "terminated_at",
        "updated_at",
        "user_id",
        "uuid",
        "vm_state",
    ]
)
# Accepted and dropped (with their direction) before 2.75; rejected from 2.75.
IGNORED_SORT_KEYS = frozenset(
    [
        "architecture",
        "cell_name",
        "cleaned",
        "default_ephemeral_device",
        "default_swap_device",
        "deleted",
        "deleted_at",
        "disable_terminate",
        "ephemeral_gb",
        "ephemeral_key_uuid",
        "id",
        "key_data",
        "launched_on",
        "locked",
        "memory_mb",
        "os_type",
        "reservation_id",
        "root_gb",
        "shutdown_terminate",
        "user_data",
        "vcpus",
        "vm_mode",
    ]
)
ADMIN_SORT_KEYS = frozenset({"host", "node"})
# Sort keys valid from a microversion on (a 400 before it).
SORT_KEYS_SINCE: tuple[tuple[Version, frozenset[str]], ...] = (((2, 73), frozenset({"locked"})),)
# From this microversion an unknown parameter, or an ignored sort key, is a 400.
STRICT_QUERY_SINCE: Version = (2, 75)

# Every parameter Nova's query schema knows; from 2.75 anything else is a 400.
KNOWN_PARAMS = frozenset(
    [
        "user_id",
        "project_id",
        "tenant_id",
        "launch_index",
        "image_ref",
        "image",
        "kernel_id",
        "ramdisk_id",
        "hostname",
        "key_name",
        "power_state",
        "vm_state",
        "task_state",
        "host",
        "node",
        "flavor",
        "reservation_id",
        "launched_at",
        "terminated_at",
        "availability_zone",
        "name",
        "display_name",
        "description",
        "display_description",
        "locked_by",
        "uuid",
        "root_device_name",
        "config_drive",
        "access_ip_v4",
        "access_ip_v6",
        "auto_disk_config",
        "progress",
        "all_tenants",
        "soft_deleted",
        "deleted",
        "status",
        "changes-since",
        "changes-before",
        "ip",
        "ip6",
        "created_at",
        "tags",
        "tags-any",
        "not-tags",
        "not-tags-any",
        "locked",
        "sort_key",
        "sort_dir",
        "limit",
        "marker",
        "pinned_availability_zone",
    ]
)
# Query parameters Nova's schema knows only from a microversion on: below it (and below
# 2.75) Nova's validation strips them from the request, so they neither filter nor appear in
# the next link.
PARAMS_SINCE: tuple[tuple[Version, frozenset[str]], ...] = (
    ((2, 26), frozenset({"tags", "tags-any", "not-tags", "not-tags-any"})),
    ((2, 66), frozenset({"changes-before"})),
    ((2, 73), frozenset({"locked"})),
)
# Every value counts (in order); any other parameter given twice is read from its last value,
# as Nova reads it: ``search_opts.update(req.GET)`` keeps a name's last value (WebOb's
# ``MultiDict``), so ``uuid=a&uuid=b`` (and ``vm_state``, ``task_state``, ``power_state``)
# filters by ``b`` alone. Only ``status`` (``req.GET.getall``) and the sort parameters are
# read as lists.
REPEATABLE_PARAMS = frozenset(["sort_key", "sort_dir", "status"])
# Anyone may page; the filters a non-admin may use are in USER_FILTERS.
PAGING_PARAMS = frozenset({"sort_key", "sort_dir", "limit", "marker"})
# Nova's boolean spellings, compared after strip() and lower().
BOOLEAN_PARAMS = frozenset({"all_tenants", "deleted", "locked"})
TRUE_VALUES = frozenset({"1", "t", "true", "on", "y", "yes"})
FALSE_VALUES = frozenset({"0", "f", "false", "off", "n", "no"})
TIMESTAMP_PARAMS = ("changes-since", "changes-before")  # ISO 8601; no zone means UTC
POWER_STATE_RANGE = (-(2**31), 2**31 - 1)  # an INTEGER column
JOINED_TABLES = frozenset(
    [
        "block_device_mapping",
        "services",
        "metadata",
        "system_metadata",
        "info_cache",
        "security_groups",
        "pci_devices",
    ]
)
# The filters a non-admin may use, by the microversion that introduced them.
USER_FILTERS: tuple[tuple[Version, frozenset[str]], ...] = (
    (
        (2, 1),
        frozenset(
            [
                "reservation_id",
                "name",
                "status",
                "image",
                "flavor",
                "ip",
                "changes-since",
                "all_tenants",
            ]
        ),
    ),
    ((2, 5), frozenset({"ip6"})),
    ((2, 26), frozenset({"tags", "tags-any", "not-tags", "not-tags-any"})),
    ((2, 66), frozenset({"changes-before"})),
    ((2, 73), frozenset({"locked"})),
    (
        (2, 83),
        frozenset(
            [
                "availability_zone",
                "config_drive",
                "key_name",
                "created_at",
                "launched_at",
                "terminated_at",
                "power_state",
                "task_state",
                "vm_state",
                "progress",
                "user_id",
            ]
        ),
    ),
    ((2, 90), frozenset({"hostname"})),
)
# Filters Nova matches as unanchored regular expressions: parameter -> column.
REGEX_FILTERS = {
    "name": "display_name",
    "display_name": "display_name",
    "hostname": "hostname",
    "key_name": "key_name",
    "availability_zone": "availability_zone",
    "node": "node",
    "description": "display_description",
    "display_description": "display_description",
    "config_drive": "config_drive",
    "kernel_id": "kernel_id",
    "ramdisk_id": "ramdisk_id",
    "root_device_name": "root_device_name",
    "access_ip_v4": "access_ip_v4",
    "access_ip_v6": "access_ip_v6",
    "locked_by": "locked_by",
    # Not text columns: Nova's REGEXP sees MySQL's text of them (cells.sqltypes.text_of).
    "reservation_id": "reservation_id",
    "created_at": "created_at",
    "launch_index": "launch_index",
    "launched_at": "launched_at",
    "terminated_at": "terminated_at",
    "auto_disk_config": "auto_disk_config",
    "progress": "progress",
}
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
# The parameters Nova's query schema types as ``format: regex``, by the microversion that
# added them to the schema: every value must compile and be non-empty (Nova's format
# checker), or the request is a 400 before any policy drops a filter the caller may not use.
REGEX_PARAMS_SINCE: tuple[tuple[Version, frozenset[str]], ...] = (
    (
        (2, 1),
        frozenset(
            [
                "kernel_id",
                "ramdisk_id",
                "hostname",
                "key_name",
                "power_state",
                "node",
                "flavor",
                "reservation_id",
                "launched_at",
                "terminated_at",
                "availability_zone",
                "name",
                "display_name",
                "description",
                "display_description",
                "locked_by",
                "root_device_name",
                "config_drive",
                "access_ip_v4",
                "access_ip_v6",
                "auto_disk_config",
                "progress",
                "ip",
                "ip6",
                "created_at",
            ]
        ),
    ),
    ((2, 26), frozenset(TAG_FILTERS)),
)
