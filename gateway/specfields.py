"""Detail and show fields that Nova reads from the request spec (API database) and from
the instance's system metadata (cell), by microversion.

============  ==================================  ============================================
microversion  field                               from
============  ==================================  ============================================
2.73          ``locked_reason``                   system metadata ``locked_reason``
2.96          ``pinned_availability_zone``        the request spec's ``availability_zone``
2.98          ``image.properties``                system metadata ``image_<name>``, for the
                                                  names of Nova's ``ImageMetaProps`` (and
                                                  their legacy names), not NULL
2.100         ``scheduler_hints``                 the request spec's ``scheduler_hints``
============  ==================================  ============================================

A server without a request spec has ``pinned_availability_zone`` ``null``; its
``scheduler_hints`` are ``null`` in a listing and ``{}`` in show, as Nova's two code paths
give (the listing's batched read leaves it out, show's single read catches the miss).
"""

from __future__ import annotations

from typing import Final

from cells.details import Details
from cells.novajson import RequestSpecInfo
from gateway.params import Version

__all__ = ["IMAGE_PROPERTY_NAMES", "add_recent_fields", "image_properties", "locked_reason"]

_NAMES: Final = """
    architecture auto_disk_config bdm_v2 bittorrent block_device_mapping cache_in_nova
    hw_architecture hw_auto_disk_config hw_boot_menu hw_cdrom_bus hw_cpu_cores
    hw_cpu_max_cores hw_cpu_max_sockets hw_cpu_max_threads hw_cpu_policy
    hw_cpu_realtime_mask hw_cpu_sockets hw_cpu_thread_policy hw_cpu_threads hw_device_id
    hw_disk_bus hw_disk_type hw_emulation_architecture hw_ephemeral_encryption
    hw_ephemeral_encryption_format hw_ephemeral_encryption_secret_uuid hw_firmware_stateless
    hw_firmware_type hw_floppy_bus hw_input_bus hw_ipxe_boot hw_locked_memory
    hw_machine_type hw_maxphysaddr_bits hw_maxphysaddr_mode hw_mem_encryption
    hw_mem_encryption_model hw_mem_page_size hw_numa_cpus hw_numa_mem hw_numa_nodes
    hw_pci_numa_affinity_policy hw_pmu hw_pointer_model hw_qemu_guest_agent
    hw_redirected_usb_ports hw_rescue_bus hw_rescue_device hw_rng_model hw_scsi_model
    hw_serial_port_count hw_sound_model hw_time_hpet hw_tpm_model hw_tpm_version
    hw_usb_model hw_video_model hw_video_ram hw_vif_model hw_vif_multiqueue_enabled
    hw_viommu_model hw_virtio_packed_ring hw_vm_mode hw_watchdog_action hypervisor_type
    hypervisor_version_requires img_bdm_v2 img_bittorrent img_block_device_mapping
    img_cache_in_nova img_compression_level img_config_drive img_hide_hypervisor_id
    img_hv_requested_version img_hv_type img_linked_clone img_mappings img_owner_id
    img_root_device_name img_signature img_signature_certificate_uuid
    img_signature_hash_method img_signature_key_type img_use_agent img_version ipxe_boot
    mappings os_admin_user os_command_line os_distro os_require_quiesce os_secure_boot
    os_skip_agent_inject_files_at_boot os_skip_agent_inject_ssh os_type owner_id
    root_device_name traits_required vm_mode vmware_disktype vmware_image_version
    vmware_linked_clone vmware_ostype xenapi_device_id xenapi_image_compression_level
    xenapi_skip_agent_inject_files_at_boot xenapi_skip_agent_inject_ssh xenapi_use_agent
"""
IMAGE_PROPERTY_NAMES: Final = frozenset(_NAMES.split())
"""Nova 34's ``ImageMetaProps`` fields and legacy property names: the 2.98 view shows
the ``image_*`` system metadata of these names only."""

_PREFIX: Final = "image_"


def image_properties(side: Details) -> dict[str, str]:
    """The image properties Nova 2.98 embeds in ``image``."""
    out: dict[str, str] = {}
    for key, value in side.system_metadata:
        name = key[len(_PREFIX) :]
        if key.startswith(_PREFIX) and name in IMAGE_PROPERTY_NAMES and value is not None:
            out[name] = value
    return out


def locked_reason(side: Details) -> str | None:
    """Why the server was locked (2.73), if a reason was given."""
    return next((value for key, value in side.system_metadata if key == "locked_reason"), None)


def add_recent_fields(
    server: dict[str, object],
    side: Details,
    spec: RequestSpecInfo | None,
    version: Version,
    *,
    show: bool,
) -> None:
    """Set the fields above on a detail or show ``server`` at ``version``."""
    if version >= (2, 73):
        server["locked_reason"] = locked_reason(side)
    if version >= (2, 96):
        server["pinned_availability_zone"] = None if spec is None else spec.availability_zone
    image = server.get("image")
    if version >= (2, 98) and isinstance(image, dict):
        image["properties"] = image_properties(side)
    if version >= (2, 100):
        if spec is None:
            server["scheduler_hints"] = {} if show else None
        else:
            server["scheduler_hints"] = spec.scheduler_hints
