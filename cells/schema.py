"""SQLAlchemy Core tables: Nova's own, as ``nova`` 34.0.0's models define them.

Two metadata objects: :data:`api_metadata` (the ``nova_api`` tables cellgate reads:
``cell_mappings``, ``instance_mappings``, ``flavors``; and for ``GET /servers/{id}``,
``request_specs``, ``instance_groups`` and ``instance_group_member``) and
:data:`cell_metadata` (the cell database tables the listing and the detail view read:
``instances``, ``instance_extra``, ``instance_info_caches``, ``instance_metadata``,
``tags``, ``instance_faults``, ``block_device_mapping``).

Names, types, nullability and indexes (with Nova's index names) follow Nova's models, so
an operator's databases match and ``scripts/nova_conformance`` can check it against any
Nova release. cellgate adds no column and no index: strings carry no collation (the queries
say ``COLLATE "C"``, :mod:`cells.sqltypes`), and indexes Nova lacks are only ever
*recommended*. Nova's ``MediumText`` is ``TEXT``, ``MEDIUMTEXT`` on MySQL.

On MariaDB/MySQL the tables are created as Nova's migrations create them there (Nova's
models carry no table options): InnoDB, ``CHARSET=utf8`` (utf8mb3, with the server's
collation for it, usually ``utf8_general_ci``).

One deviation in meaning, not in schema: ``instances.created_at`` is nullable in Nova's
models, but Nova always writes it (oslo.db's ``TimestampMixin`` default), so the sort
order treats it as NOT NULL (``info["sort_not_null"]``), which lets Nova's
``(deleted, created_at)`` index serve the default order.

Over the house size on purpose: one table per Nova model, in one module, so it reads side
by side with Nova's models and ``scripts/nova_conformance`` checks one place.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.dialects.mysql import MEDIUMTEXT

from cells.sqltypes import IPAddress

__all__ = [
    "CELL0_UUID",
    "aggregate_hosts",
    "aggregate_metadata",
    "aggregates",
    "api_metadata",
    "block_device_mapping",
    "cell_mappings",
    "cell_metadata",
    "flavors",
    "instance_extra",
    "instance_faults",
    "instance_group_member",
    "instance_groups",
    "instance_info_caches",
    "instance_mappings",
    "instance_metadata",
    "instance_system_metadata",
    "instances",
    "request_specs",
    "services",
    "tags",
]

CELL0_UUID = "00000000-0000-0000-0000-000000000000"


_MYSQL: dict[str, Any] = {"mysql_engine": "InnoDB", "mysql_charset": "utf8"}
"""The table options of Nova's migrations on MySQL."""


def _medium_text() -> Text:
    """Nova's ``MediumText``: ``TEXT``, ``MEDIUMTEXT`` (16 MiB) on MySQL."""
    return Text().with_variant(MEDIUMTEXT(), "mysql", "mariadb")


def _timestamps() -> list[Column[object]]:
    """oslo.db's ``TimestampMixin``."""
    return [Column("created_at", DateTime), Column("updated_at", DateTime)]


def _soft_delete() -> list[Column[object]]:
    """oslo.db's ``SoftDeleteMixin``: ``deleted`` is 0, or the row's id once deleted."""
    return [Column("deleted_at", DateTime), Column("deleted", Integer, default=0)]


api_metadata = MetaData()

cell_mappings = Table(
    "cell_mappings",
    api_metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(36), nullable=False),
    Column("name", String(255)),
    Column("transport_url", Text),
    Column("database_connection", Text),
    Column("disabled", Boolean, default=False),
    *_timestamps(),
    Index("uuid_idx", "uuid"),
    UniqueConstraint("uuid", name="uniq_cell_mappings0uuid"),
    **_MYSQL,
)

instance_mappings = Table(
    "instance_mappings",
    api_metadata,
    Column("id", Integer, primary_key=True),
    Column("instance_uuid", String(36), nullable=False),
    Column("cell_id", Integer, ForeignKey("cell_mappings.id"), nullable=True),
    Column("project_id", String(255), nullable=False),
    Column("user_id", String(255), nullable=True),
    Column("queued_for_delete", Boolean),
    *_timestamps(),
    Index("project_id_idx", "project_id"),
    Index("instance_uuid_idx", "instance_uuid"),
    UniqueConstraint("instance_uuid", name="uniq_instance_mappings0instance_uuid"),
    Index("instance_mappings_user_id_project_id_idx", "user_id", "project_id"),
    **_MYSQL,
)

flavors = Table(
    "flavors",
    api_metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("memory_mb", Integer, nullable=False),
    Column("vcpus", Integer, nullable=False),
    Column("root_gb", Integer),
    Column("ephemeral_gb", Integer),
    Column("flavorid", String(255), nullable=False),
    Column("swap", Integer, nullable=False, default=0),
    Column("rxtx_factor", Float, default=1),
    Column("vcpu_weight", Integer),
    Column("disabled", Boolean, default=False),
    Column("is_public", Boolean, default=True),
    Column("description", Text),
    *_timestamps(),
    UniqueConstraint("flavorid", name="uniq_flavors0flavorid"),
    UniqueConstraint("name", name="uniq_flavors0name"),
    **_MYSQL,
)

# The scheduling request of an instance: ``spec`` is a serialized ``RequestSpec`` (its
# flavor, image, availability zone and user), what Nova shows of a server in a down cell.
request_specs = Table(
    "request_specs",
    api_metadata,
    Column("id", Integer, primary_key=True),
    Column("instance_uuid", String(36), nullable=False),
    Column("spec", _medium_text(), nullable=False),
    *_timestamps(),
    Index("request_spec_instance_uuid_idx", "instance_uuid"),
    UniqueConstraint("instance_uuid", name="uniq_request_specs0instance_uuid"),
    **_MYSQL,
)

aggregates = Table(
    "aggregates",
    api_metadata,
    *_timestamps(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uuid", String(36)),
    Column("name", String(255)),
    Index("aggregate_uuid_idx", "uuid"),
    UniqueConstraint("name", name="uniq_aggregate0name"),
    **_MYSQL,
)

aggregate_hosts = Table(
    "aggregate_hosts",
    api_metadata,
    *_timestamps(),
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("host", String(255)),
    Column("aggregate_id", Integer, ForeignKey("aggregates.id"), nullable=False),
    UniqueConstraint("host", "aggregate_id", name="uniq_aggregate_hosts0host0aggregate_id"),
    **_MYSQL,
)

aggregate_metadata = Table(
    "aggregate_metadata",
    api_metadata,
    *_timestamps(),
    Column("id", Integer, primary_key=True),
    Column("aggregate_id", Integer, ForeignKey("aggregates.id"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("value", String(255), nullable=False),
    Index("aggregate_metadata_key_idx", "key"),
    UniqueConstraint("aggregate_id", "key", name="uniq_aggregate_metadata0aggregate_id0key"),
    **_MYSQL,
)
"""Host aggregates: a hosted server's ``OS-EXT-AZ:availability_zone`` is its host's
aggregate's ``availability_zone`` metadata (``cells.apidb.ApiDatabase.host_zones``)."""

instance_groups = Table(
    "instance_groups",
    api_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", String(255)),
    Column("project_id", String(255)),
    Column("uuid", String(36), nullable=False),
    Column("name", String(255)),
    *_timestamps(),
    UniqueConstraint("uuid", name="uniq_instance_groups0uuid"),
    **_MYSQL,
)

instance_group_member = Table(
    "instance_group_member",
    api_metadata,
    Column("id", Integer, primary_key=True, nullable=False),
    Column("instance_uuid", String(255)),
    Column("group_id", Integer, ForeignKey("instance_groups.id"), nullable=False),
    *_timestamps(),
    Index("instance_group_member_instance_idx", "instance_uuid"),
    **_MYSQL,
)

cell_metadata = MetaData()

_S = String(255)

instances = Table(
    "instances",
    cell_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", _S),
    Column("project_id", _S),
    Column("image_ref", _S),
    Column("kernel_id", _S),
    Column("ramdisk_id", _S),
    Column("hostname", _S),
    Column("launch_index", Integer),
    Column("key_name", _S),
    Column("key_data", _medium_text()),
    Column("power_state", Integer),
    Column("vm_state", _S),
    Column("task_state", _S),
    Column("memory_mb", Integer),
    Column("vcpus", Integer),
    Column("root_gb", Integer),
    Column("ephemeral_gb", Integer),
    Column("ephemeral_key_uuid", String(36)),
    Column("host", _S),
    Column("node", _S),
    Column("compute_id", BigInteger),
    Column("instance_type_id", Integer),
    Column("user_data", _medium_text()),
    Column("reservation_id", _S),
    Column("launched_at", DateTime),
    Column("terminated_at", DateTime),
    Column("availability_zone", _S),
    Column("display_name", _S),
    Column("display_description", _S),
    Column("launched_on", _medium_text()),
    Column("locked", Boolean),
    Column("locked_by", Enum("owner", "admin", name="instances0locked_by")),
    Column("os_type", _S),
    Column("architecture", _S),
    Column("vm_mode", _S),
    Column("uuid", String(36), nullable=False),
    Column("root_device_name", _S),
    Column("default_ephemeral_device", _S),
    Column("default_swap_device", _S),
    Column("config_drive", _S),
    Column("access_ip_v4", IPAddress()),
    Column("access_ip_v6", IPAddress()),
    Column("auto_disk_config", Boolean),
    Column("progress", Integer),
    Column("shutdown_terminate", Boolean, default=False),
    Column("disable_terminate", Boolean, default=False),
    Column("cell_name", _S),
    Column("cleaned", Integer, default=0),
    Column("hidden", Boolean, default=False),
    Column("created_at", DateTime, info={"sort_not_null": True}),
    Column("updated_at", DateTime),
    *_soft_delete(),
    Index("instances_project_id_idx", "project_id"),
    Index("instances_project_id_deleted_idx", "project_id", "deleted"),
    Index("instances_reservation_id_idx", "reservation_id"),
    Index("instances_terminated_at_launched_at_idx", "terminated_at", "launched_at"),
    Index("instances_uuid_deleted_idx", "uuid", "deleted"),
    Index("instances_task_state_updated_at_idx", "task_state", "updated_at"),
    Index("instances_host_node_deleted_idx", "host", "node", "deleted"),
    Index("instances_host_deleted_cleaned_idx", "host", "deleted", "cleaned"),
    Index("instances_deleted_created_at_idx", "deleted", "created_at"),
    Index("instances_updated_at_project_id_idx", "updated_at", "project_id"),
    Index("instances_compute_id_deleted_idx", "compute_id", "deleted"),
    UniqueConstraint("uuid", name="uniq_instances0uuid"),
    **_MYSQL,
)


def _instance_uuid(nullable: bool = True) -> Column[str]:
    return Column("instance_uuid", String(36), ForeignKey("instances.uuid"), nullable=nullable)


_EXTRA_TEXT_COLUMNS = (
    "device_metadata", "numa_topology", "pci_requests", "flavor", "vcpu_model",
    "migration_context", "keypairs", "trusted_certs", "resources",
)  # fmt: skip

instance_extra = Table(
    "instance_extra",
    cell_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _instance_uuid(nullable=False),
    *(Column(name, Text) for name in _EXTRA_TEXT_COLUMNS),
    *_timestamps(),
    *_soft_delete(),
    Index("instance_extra_idx", "instance_uuid"),
    **_MYSQL,
)

instance_info_caches = Table(
    "instance_info_caches",
    cell_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("network_info", _medium_text()),
    _instance_uuid(nullable=False),
    *_timestamps(),
    *_soft_delete(),
    UniqueConstraint("instance_uuid", name="uniq_instance_info_caches0instance_uuid"),
    **_MYSQL,
)

instance_metadata = Table(
    "instance_metadata",
    cell_metadata,
    Column("id", Integer, primary_key=True),
    Column("key", _S),
    Column("value", _S),
    _instance_uuid(),
    *_timestamps(),
    *_soft_delete(),
    Index("instance_metadata_instance_uuid_idx", "instance_uuid"),
    **_MYSQL,
)

services = Table(
    "services",
    cell_metadata,
    *_timestamps(),
    Column("deleted_at", DateTime),
    Column("id", Integer, primary_key=True, nullable=False),
    Column("host", _S),
    Column("binary", _S),
    Column("topic", _S),
    Column("report_count", Integer, nullable=False),
    Column("disabled", Boolean),
    Column("deleted", Integer),
    Column("disabled_reason", _S),
    Column("last_seen_up", DateTime),
    Column("forced_down", Boolean),
    Column("version", Integer),
    Column("uuid", String(36)),
    Index("services_uuid_idx", "uuid", unique=True),
    UniqueConstraint("host", "topic", "deleted", name="uniq_services0host0topic0deleted"),
    UniqueConstraint("host", "binary", "deleted", name="uniq_services0host0binary0deleted"),
    **_MYSQL,
)
"""The cell's services: ``host_status`` (2.16) reads the ``nova-compute`` rows."""

instance_system_metadata = Table(
    "instance_system_metadata",
    cell_metadata,
    Column("id", Integer, primary_key=True, nullable=False),
    _instance_uuid(nullable=False),
    Column("key", _S, nullable=False),
    Column("value", _S),
    *_timestamps(),
    *_soft_delete(),
    Index("instance_uuid", "instance_uuid"),
    **_MYSQL,
)

tags = Table(
    "tags",
    cell_metadata,
    Column("resource_id", String(36), primary_key=True, nullable=False),
    Column("tag", Unicode(80), primary_key=True, nullable=False),
    Index("tags_tag_idx", "tag"),
    **_MYSQL,
)

instance_faults = Table(
    "instance_faults",
    cell_metadata,
    Column("id", Integer, primary_key=True, nullable=False),
    _instance_uuid(),
    Column("code", Integer, nullable=False),
    Column("message", _S),
    Column("details", _medium_text()),
    Column("host", _S),
    *_timestamps(),
    *_soft_delete(),
    Index("instance_faults_host_idx", "host"),
    Index(
        "instance_faults_instance_uuid_deleted_created_at_idx",
        "instance_uuid",
        "deleted",
        "created_at",
    ),
    **_MYSQL,
)

block_device_mapping = Table(
    "block_device_mapping",
    cell_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    _instance_uuid(),
    Column("uuid", String(36)),
    Column("source_type", _S),
    Column("destination_type", _S),
    Column("guest_format", _S),
    Column("device_type", _S),
    Column("disk_bus", _S),
    Column("boot_index", Integer),
    Column("device_name", _S),
    Column("delete_on_termination", Boolean, default=False),
    Column("snapshot_id", String(36)),
    Column("volume_id", String(36)),
    Column("volume_size", Integer),
    Column("volume_type", _S),
    Column("image_id", String(36)),
    Column("no_device", Boolean),
    Column("connection_info", _medium_text()),
    Column("tag", _S),
    Column("attachment_id", String(36)),
    Column("encrypted", Boolean, default=False),
    Column("encryption_secret_uuid", String(36)),
    Column("encryption_format", String(128)),
    Column("encryption_options", String(4096)),
    *_timestamps(),
    *_soft_delete(),
    Index("snapshot_id", "snapshot_id"),
    Index("volume_id", "volume_id"),
    Index("block_device_mapping_instance_uuid_device_name_idx", "instance_uuid", "device_name"),
    Index("block_device_mapping_instance_uuid_volume_id_idx", "instance_uuid", "volume_id"),
    Index("block_device_mapping_instance_uuid_idx", "instance_uuid"),
    UniqueConstraint("uuid", name="uniq_block_device_mapping0uuid"),
    **_MYSQL,
)
