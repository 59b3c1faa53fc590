"""Nova's query-parameter tables for the server listing (names, sort keys, policies).

Data only; :mod:`gateway.request` applies them.
"""

from __future__ import annotations

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
    "POWER_STATE_RANGE",
    "REGEX_FILTERS",
    "REPEATABLE_PARAMS",
    "SORT_KEYS_SINCE",
    "STRICT_QUERY_SINCE",
    "TAG_FILTERS",
    "TIMESTAMP_PARAMS",
    "TRUE_VALUES",
    "UNSUPPORTED_FILTERS",
    "USER_FILTERS",
    "VALID_SORT_KEYS",
    "Version",
]

Version = tuple[int, int]

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
# Every value counts (in order); any other parameter given twice is read from its last value.
REPEATABLE_PARAMS = frozenset(
    ["sort_key", "sort_dir", "status", "vm_state", "task_state", "power_state", "uuid"]
)
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
}
TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")
# Known to Nova, not served here: refusing beats silently returning unfiltered rows.
UNSUPPORTED_FILTERS = frozenset(
    [
        "ip",
        "ip6",
        "reservation_id",
        "launch_index",
        "launched_at",
        "terminated_at",
        "created_at",
        "auto_disk_config",
        "progress",
        "soft_deleted",
        "pinned_availability_zone",
    ]
)
