"""SQLAlchemy Core tables with Nova's column names.

Two metadata objects: :data:`api_metadata` (the ``nova_api`` subset: ``cell_mappings`` and
``instance_mappings``) and :data:`cell_metadata` (one ``instances`` table per cell database).

String columns that can be sort keys use the ``"C"`` collation on PostgreSQL, so the
database orders them by code point exactly like Python's ``str`` comparison (and SQLite's
default ``BINARY`` collation). Without it, a cluster created with ``en_US.UTF-8`` orders
``"a" < "B"`` while Python orders ``"B" < "a"``, and the merge would skip or repeat rows.

The detail-view data Nova keeps in side tables (``instance_extra.flavor``,
``instance_info_caches.network_info``, ``instance_metadata``, ``tags``) is denormalised here
into JSON text columns on ``instances``, so one keyset query returns everything a page needs.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeEngine

__all__ = [
    "CELL0_UUID",
    "api_metadata",
    "cell_mappings",
    "cell_metadata",
    "flavors",
    "instance_mappings",
    "instances",
    "sortable_string",
]

CELL0_UUID = "00000000-0000-0000-0000-000000000000"


def sortable_string(length: int) -> TypeEngine[str]:
    """A ``VARCHAR`` that sorts by code point on every supported backend."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


api_metadata = MetaData()

cell_mappings = Table(
    "cell_mappings",
    api_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("name", String(255)),
    Column("transport_url", Text),
    Column("database_connection", Text),
    Column("disabled", Boolean, default=False),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
)

instance_mappings = Table(
    "instance_mappings",
    api_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("instance_uuid", String(36), nullable=False, unique=True),
    Column("cell_id", Integer, ForeignKey("cell_mappings.id"), nullable=True),
    Column("project_id", String(255), nullable=False),
    Column("user_id", String(255), nullable=True),
    Column("queued_for_delete", Boolean, default=False),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
    Index("project_id_idx", "project_id", "cell_id"),
    Index("instance_mappings_cell_created_idx", "cell_id", "created_at", "instance_uuid"),
)

flavors = Table(
    "flavors",
    api_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("flavorid", String(255), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
    Column("memory_mb", Integer, nullable=False),
    Column("vcpus", Integer, nullable=False),
    Column("root_gb", Integer),
    Column("ephemeral_gb", Integer),
    Column("swap", Integer, nullable=False, default=0),
    Column("disabled", Boolean, default=False),
    Column("is_public", Boolean, default=True),
    Column("created_at", DateTime),
    Column("updated_at", DateTime),
)

cell_metadata = MetaData()

instances = Table(
    "instances",
    cell_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", sortable_string(36), nullable=False, unique=True),
    Column("project_id", sortable_string(255)),
    Column("user_id", sortable_string(255)),
    Column("display_name", sortable_string(255)),
    Column("display_description", sortable_string(255)),
    Column("hostname", sortable_string(255)),
    Column("host", sortable_string(255)),
    Column("node", sortable_string(255)),
    Column("vm_state", sortable_string(255)),
    Column("task_state", sortable_string(255)),
    Column("power_state", Integer),
    Column("image_ref", sortable_string(255)),
    Column("kernel_id", sortable_string(255)),
    Column("ramdisk_id", sortable_string(255)),
    Column("instance_type_id", Integer),
    Column("availability_zone", sortable_string(255)),
    Column("key_name", sortable_string(255)),
    Column("launch_index", Integer),
    Column("locked", Boolean),
    Column("locked_by", sortable_string(255)),
    Column("auto_disk_config", Boolean),
    Column("root_device_name", sortable_string(255)),
    Column("access_ip_v4", sortable_string(39)),
    Column("access_ip_v6", sortable_string(39)),
    Column("config_drive", sortable_string(255)),
    Column("progress", Integer),
    Column("launched_at", DateTime),
    Column("terminated_at", DateTime),
    Column("created_at", DateTime, nullable=False),
    Column("updated_at", DateTime),
    Column("deleted_at", DateTime),
    Column("deleted", Integer, nullable=False, default=0),
    # Detail-view data, JSON text (see module docstring).
    Column("flavor", Text),
    Column("network_info", Text),
    Column("metadata", Text),
    Column("tags", Text),
)

# The default listing order (`created_at desc, uuid asc`), scoped and unscoped; Nova has
# neither composite. `created_at` is NOT NULL, so the plain `DESC` (PostgreSQL's NULLS FIRST)
# matches the ORDER BY the query builder emits for non-nullable keys.
Index(
    "instances_project_deleted_created_uuid_idx",
    instances.c.project_id,
    instances.c.deleted,
    instances.c.created_at.desc(),
    instances.c.uuid,
)
Index(
    "instances_deleted_created_uuid_idx",
    instances.c.deleted,
    instances.c.created_at.desc(),
    instances.c.uuid,
)
