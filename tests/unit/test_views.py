"""Tests for gateway.views: Nova's server shapes per microversion, stubs and next links."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from cells.details import Details, collect
from cells.novajson import FlavorInfo, RequestSpecInfo
from cells.seeding.siderows import FlavorSpec, serialized_flavor
from gateway.policy import ADMIN_VIEW, READER_VIEW
from gateway.views import (
    ViewContext,
    next_link,
    server_detail,
    server_summary,
    stub_detail,
    stub_show,
    stub_summary,
)

BASE = "http://127.0.0.1:8774"
UUID = "6f1c6c47-3c4b-4f44-9a5d-0a4f3f6c2e11"


def make_row(**changes: object) -> dict[str, object]:
    row: dict[str, object] = {
        "id": 42,
        "uuid": UUID,
        "project_id": "p1",
        "user_id": "u1",
        "display_name": "web-1",
        "display_description": "front end",
        "hostname": "web-1",
        "host": "compute-3",
        "node": "compute-3.example.org",
        "vm_state": "active",
        "task_state": None,
        "power_state": 1,
        "image_ref": "a3f9a4c2-7c51-4c39-8e5c-5b7d0f3f7f10",
        "kernel_id": "",
        "ramdisk_id": "",
        "instance_type_id": 7,
        "availability_zone": "az1",
        "key_name": "mykey",
        "launch_index": 0,
        "reservation_id": "r-0000002a",
        "locked": False,
        "locked_by": None,
        "auto_disk_config": True,
        "root_device_name": "/dev/vda",
        "access_ip_v4": "192.0.2.10",
        "access_ip_v6": None,
        "config_drive": "",
        "progress": 100,
        "launched_at": datetime(2024, 5, 1, 12, 0, 5, 123456),
        "terminated_at": None,
        "created_at": datetime(2024, 5, 1, 12, 0, 0),
        "updated_at": datetime(2024, 5, 2, 8, 30, 0),
        "deleted_at": None,
        "deleted": 0,
    }
    row.update(changes)
    return row


FLAVOR_JSON = serialized_flavor(
    FlavorSpec(7, "m1.small", "small", 2048, 1, 20, extra_specs=(("hw:cpu_policy", "shared"),))
)
NETWORK_JSON = orjson.dumps(
    [
        {
            "address": "fa:16:3e:00:00:01",
            "network": {
                "label": "private",
                "subnets": [
                    {"ips": [{"address": "10.0.0.5", "type": "fixed", "version": 4}]},
                ],
            },
        }
    ]
).decode()


def make_details(**tables: list[tuple[object, ...]]) -> Details:
    """Side data as :func:`cells.details.collect` builds it from the side tables' rows."""
    rows: dict[str, list[tuple[object, ...]]] = {
        "flavor": [(UUID, FLAVOR_JSON)],
        "network": [(UUID, NETWORK_JSON)],
        "metadata": [(UUID, "role", "web")],
        "tags": [(UUID, "prod"), (UUID, "web")],
    }
    rows.update(tables)
    return collect(rows, [UUID])[UUID]


DETAILS = make_details()


def ctx(
    version: tuple[int, int] = (2, 1), *, admin: bool = False, project: str | None = None
) -> ViewContext:
    grants = ADMIN_VIEW if admin else READER_VIEW
    return ViewContext(base_url=BASE, project_in_url=project, version=version, grants=grants)


# Keys every 2.1 detail item has, for anyone (progress aside, as it depends on status).
COMMON_21 = {
    "id",
    "name",
    "status",
    "tenant_id",
    "user_id",
    "metadata",
    "hostId",
    "image",
    "flavor",
    "created",
    "updated",
    "addresses",
    "accessIPv4",
    "accessIPv6",
    "links",
    "OS-DCF:diskConfig",
    "OS-EXT-AZ:availability_zone",
    "config_drive",
    "key_name",
    "OS-SRV-USG:launched_at",
    "OS-SRV-USG:terminated_at",
    "security_groups",
    "OS-EXT-STS:task_state",
    "OS-EXT-STS:vm_state",
    "OS-EXT-STS:power_state",
    "os-extended-volumes:volumes_attached",
}
ADMIN_21 = {
    "OS-EXT-SRV-ATTR:host",
    "OS-EXT-SRV-ATTR:instance_name",
    "OS-EXT-SRV-ATTR:hypervisor_hostname",
}
ADMIN_23 = {
    "OS-EXT-SRV-ATTR:reservation_id",
    "OS-EXT-SRV-ATTR:launch_index",
    "OS-EXT-SRV-ATTR:hostname",
    "OS-EXT-SRV-ATTR:kernel_id",
    "OS-EXT-SRV-ATTR:ramdisk_id",
    "OS-EXT-SRV-ATTR:root_device_name",
    "OS-EXT-SRV-ATTR:user_data",
}


def expected_keys(version: tuple[int, int], admin: bool) -> set[str]:
    """The detail key set for an ACTIVE server, written out independently of the view."""
    keys = COMMON_21 | {"progress"}
    if admin:
        keys |= ADMIN_21
        if version >= (2, 3):
            keys |= ADMIN_23
    if version >= (2, 9):
        keys.add("locked")
    if version >= (2, 16) and admin:
        keys.add("host_status")
    if version >= (2, 19):
        keys.add("description")
    if version >= (2, 26):
        keys.add("tags")
    if version >= (2, 63):
        keys.add("trusted_image_certificates")
    if version >= (2, 73):
        keys.add("locked_reason")
    if version >= (2, 90):
        keys.add("OS-EXT-SRV-ATTR:hostname")
    return keys


BOUNDARIES = [
    (2, 1),
    (2, 2),
    (2, 3),
    (2, 8),
    (2, 9),
    (2, 15),
    (2, 16),
    (2, 18),
    (2, 19),
    (2, 25),
    (2, 26),
    (2, 46),
    (2, 47),
    (2, 62),
    (2, 63),
    (2, 69),
    (2, 72),
    (2, 73),
    (2, 89),
    (2, 90),
]


@pytest.mark.parametrize("admin", [False, True], ids=["user", "admin"])
@pytest.mark.parametrize("version", BOUNDARIES, ids=lambda v: f"{v[0]}.{v[1]}")
def test_detail_keys(version: tuple[int, int], admin: bool) -> None:
    assert set(server_detail(make_row(), ctx(version, admin=admin))) == expected_keys(
        version, admin
    )


def test_detail_keys_2_1_exactly() -> None:
    assert set(server_detail(make_row(), ctx((2, 1)))) == COMMON_21 | {"progress"}
    assert set(server_detail(make_row(), ctx((2, 1), admin=True))) == (
        COMMON_21 | {"progress"} | ADMIN_21
    )


def test_detail_keys_2_3_admin_vs_user() -> None:
    user = set(server_detail(make_row(), ctx((2, 3))))
    admin = set(server_detail(make_row(), ctx((2, 3), admin=True)))
    assert admin - user == ADMIN_21 | ADMIN_23
    assert user == set(server_detail(make_row(), ctx((2, 1))))


def test_detail_keys_2_90_hostname_for_everyone() -> None:
    assert "OS-EXT-SRV-ATTR:hostname" not in server_detail(make_row(), ctx((2, 89)))
    user = server_detail(make_row(), ctx((2, 90)))
    assert user["OS-EXT-SRV-ATTR:hostname"] == "web-1"
    assert not {key for key in user if key.startswith("OS-EXT-SRV-ATTR:")} - {
        "OS-EXT-SRV-ATTR:hostname"
    }


def test_detail_values_2_1() -> None:
    server = server_detail(make_row(), ctx((2, 1)), DETAILS)
    assert server["id"] == UUID
    assert server["name"] == "web-1"
    assert server["status"] == "ACTIVE"
    assert server["tenant_id"] == "p1"
    assert server["user_id"] == "u1"
    assert server["metadata"] == {"role": "web"}
    assert server["hostId"] == hashlib.sha224(b"p1compute-3").hexdigest()
    assert server["image"] == {
        "id": "a3f9a4c2-7c51-4c39-8e5c-5b7d0f3f7f10",
        "links": [
            {"rel": "bookmark", "href": f"{BASE}/images/a3f9a4c2-7c51-4c39-8e5c-5b7d0f3f7f10"}
        ],
    }
    assert server["flavor"] == {
        "id": "m1.small",
        "links": [{"rel": "bookmark", "href": f"{BASE}/flavors/m1.small"}],
    }
    assert server["created"] == "2024-05-01T12:00:00Z"
    assert server["updated"] == "2024-05-02T08:30:00Z"
    assert server["addresses"] == {
        "private": [
            {
                "version": 4,
                "addr": "10.0.0.5",
                "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01",
            }
        ]
    }
    assert server["accessIPv4"] == "192.0.2.10"
    assert server["accessIPv6"] == ""
    assert server["links"] == [
        {"rel": "self", "href": f"{BASE}/v2.1/servers/{UUID}"},
        {"rel": "bookmark", "href": f"{BASE}/servers/{UUID}"},
    ]
    assert server["OS-DCF:diskConfig"] == "AUTO"
    assert server["progress"] == 100
    assert server["OS-EXT-AZ:availability_zone"] == "nova"  # the host is in no zone
    assert server["config_drive"] == ""
    assert server["key_name"] == "mykey"
    assert server["OS-SRV-USG:launched_at"] == "2024-05-01T12:00:05.123456"
    assert server["OS-SRV-USG:terminated_at"] is None
    assert server["security_groups"] == [{"name": "default"}]
    assert server["OS-EXT-STS:task_state"] is None
    assert server["OS-EXT-STS:vm_state"] == "active"
    assert server["OS-EXT-STS:power_state"] == 1
    assert server["os-extended-volumes:volumes_attached"] == []


def test_detail_admin_values() -> None:
    server = server_detail(make_row(), ctx((2, 16), admin=True))
    assert server["OS-EXT-SRV-ATTR:host"] == "compute-3"
    assert server["OS-EXT-SRV-ATTR:hypervisor_hostname"] == "compute-3.example.org"
    assert server["OS-EXT-SRV-ATTR:instance_name"] == "instance-0000002a"
    assert server["OS-EXT-SRV-ATTR:reservation_id"] == "r-0000002a"
    assert server["OS-EXT-SRV-ATTR:launch_index"] == 0
    assert server["OS-EXT-SRV-ATTR:hostname"] == "web-1"
    assert server["OS-EXT-SRV-ATTR:kernel_id"] == ""
    assert server["OS-EXT-SRV-ATTR:ramdisk_id"] == ""
    assert server["OS-EXT-SRV-ATTR:root_device_name"] == "/dev/vda"
    assert server["OS-EXT-SRV-ATTR:user_data"] is None
    assert server["host_status"] == ""  # no service row for the host


@pytest.mark.parametrize(
    ("host", "service", "age_s", "expected"),
    [
        ("compute-3", (0, True), 5, "UP"),
        ("compute-3", (0, True), -5, "UP"),  # a clock ahead: Nova compares the distance
        ("compute-3", (0, True), 61, "UNKNOWN"),
        ("compute-3", (0, True), -61, "UNKNOWN"),
        ("compute-3", (0, False), 0, "UNKNOWN"),  # never seen, no creation time
        ("compute-3", (1, True), 5, "MAINTENANCE"),
        ("compute-3", (2, True), 5, "DOWN"),  # forced down beats disabled
        ("compute-3", None, 0, ""),
        (None, (2, True), 5, ""),
    ],
)
def test_host_status_rule(
    host: str | None, service: tuple[int, bool] | None, age_s: float, expected: str
) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    side = Details()
    if service is not None:
        flags, seen = service
        side = Details(service=(flags, now - timedelta(seconds=age_s) if seen else None))
    server = server_detail(make_row(host=host), ctx((2, 16), admin=True), side)
    assert server["host_status"] == expected


def test_host_status_empty_without_host() -> None:
    server = server_detail(make_row(host=None), ctx((2, 16), admin=True))
    assert server["host_status"] == ""
    assert server["hostId"] == ""


def test_later_microversion_values() -> None:
    server = server_detail(make_row(), ctx((2, 73)), DETAILS)
    assert server["locked"] is False
    assert server["locked_reason"] is None
    assert server["description"] == "front end"
    assert server["tags"] == ["prod", "web"]
    assert server["trusted_image_certificates"] is None


@pytest.mark.parametrize(
    ("locked", "locked_by", "expected"),
    [(False, None, False), (True, "owner", True), (True, None, True), (None, "admin", True)],
)
def test_locked(locked: bool | None, locked_by: str | None, expected: bool) -> None:
    server = server_detail(make_row(locked=locked, locked_by=locked_by), ctx((2, 9)))
    assert server["locked"] is expected


def test_flavor_from_2_47() -> None:
    assert server_detail(make_row(), ctx((2, 47)), DETAILS)["flavor"] == {
        "vcpus": 1,
        "ram": 2048,
        "disk": 20,
        "ephemeral": 0,
        "swap": 0,
        "original_name": "small",
        "extra_specs": {"hw:cpu_policy": "shared"},
    }


def test_flavor_before_2_47_is_the_flavorid_with_a_link() -> None:
    data = {"flavorid": "42", "name": "tiny", "vcpus": 2, "memory_mb": 512, "root_gb": 1}
    column = orjson.dumps(
        {"cur": {"nova_object.name": "Flavor", "nova_object.data": data}, "old": None}
    ).decode()
    details = make_details(flavor=[(UUID, column)])
    assert server_detail(make_row(), ctx((2, 46)), details)["flavor"] == {
        "id": "42",
        "links": [{"rel": "bookmark", "href": f"{BASE}/flavors/42"}],
    }
    flavor = server_detail(make_row(), ctx((2, 47)), details)["flavor"]
    assert isinstance(flavor, dict)
    assert flavor["ram"] == 512
    assert flavor["ephemeral"] is None
    assert flavor["extra_specs"] == {}
    assert "id" not in flavor


@pytest.mark.parametrize(
    "garbage",
    [None, "", "not json", "[1, 2]", "42", "null", "{", b"\xff", '{"cur": {"name": "x"}}'],
)
@pytest.mark.parametrize("version", [(2, 1), (2, 26), (2, 47)], ids=["2.1", "2.26", "2.47"])
def test_garbage_json_columns(garbage: object, version: tuple[int, int]) -> None:
    details = make_details(flavor=[(UUID, garbage)], network=[(UUID, garbage)])
    server = server_detail(make_row(), ctx(version), details)
    assert server["flavor"] == {}
    assert server["addresses"] == {}


def test_no_side_data() -> None:
    server = server_detail(make_row(), ctx((2, 26)))
    assert server["flavor"] == {}
    assert server["addresses"] == {}
    assert server["metadata"] == {}
    assert server["tags"] == []
    assert server["os-extended-volumes:volumes_attached"] == []


def test_tags_from_2_26() -> None:
    assert "tags" not in server_detail(make_row(), ctx((2, 25)), DETAILS)
    assert server_detail(make_row(), ctx((2, 26)), DETAILS)["tags"] == ["prod", "web"]


@pytest.mark.parametrize("image_ref", [None, ""])
def test_no_image(image_ref: str | None) -> None:
    assert server_detail(make_row(image_ref=image_ref), ctx())["image"] == ""


def test_image_ref_as_url() -> None:
    row = make_row(image_ref="http://glance.example.org/v2/images/abc?x=1")
    image = server_detail(row, ctx())["image"]
    assert isinstance(image, dict)
    assert image["id"] == "abc"


@pytest.mark.parametrize(
    ("vm_state", "task_state", "has_progress"),
    [
        ("active", None, True),
        ("building", None, True),
        ("active", "rebuilding", True),
        ("active", "resize_prep", True),
        ("resized", None, True),
        ("active", "migrating", True),
        ("stopped", None, False),
        ("error", None, False),
        ("active", "rebooting", False),
        ("resized", "resize_reverting", False),
        ("paused", None, False),
    ],
)
def test_progress_only_for_progress_statuses(
    vm_state: str, task_state: str | None, has_progress: bool
) -> None:
    server = server_detail(make_row(vm_state=vm_state, task_state=task_state), ctx())
    assert ("progress" in server) is has_progress


def test_null_progress_is_null() -> None:
    """Nova shows ``instance.get("progress", 0)``: the field is set, so NULL stays null
    (the real nova-api on the same row, tests/integration/test_nova_parity.py)."""
    assert server_detail(make_row(progress=None), ctx())["progress"] is None


def test_deleted_row_is_deleted() -> None:
    server = server_detail(make_row(deleted=42), ctx())
    assert server["status"] == "DELETED"
    assert "progress" not in server
    assert "fault" not in server


def test_availability_zone_is_the_hosts() -> None:
    """Nova's rule: a hosted server is in its host's zone (the default one for a host in
    no zone), whatever its row says; a server on no host shows its row's zone."""
    hosted = make_row(availability_zone=None)
    context = ViewContext(BASE, None, (2, 1), READER_VIEW, default_availability_zone="az-default")
    assert server_detail(hosted, context)["OS-EXT-AZ:availability_zone"] == "az-default"
    assert server_detail(make_row(), context)["OS-EXT-AZ:availability_zone"] == "az-default"
    zoned = replace(context, host_zones={"compute-3": "az-rack"})
    assert server_detail(make_row(), zoned)["OS-EXT-AZ:availability_zone"] == "az-rack"
    unscheduled = make_row(availability_zone=None, host=None)
    assert server_detail(unscheduled, zoned)["OS-EXT-AZ:availability_zone"] == ""
    waiting = make_row(host=None)
    assert server_detail(waiting, zoned)["OS-EXT-AZ:availability_zone"] == "az1"


def test_unknown_state() -> None:
    assert server_detail(make_row(vm_state="bogus"), ctx())["status"] == "UNKNOWN"


def test_null_fields() -> None:
    row = make_row(
        project_id=None,
        user_id=None,
        availability_zone=None,
        access_ip_v4=None,
        auto_disk_config=None,
        launched_at=None,
        updated_at=None,
    )
    server = server_detail(row, ctx())
    assert server["tenant_id"] == ""
    assert server["user_id"] == ""
    assert server["OS-EXT-AZ:availability_zone"] == "nova"  # on a host: the default zone
    assert server["accessIPv4"] == ""
    assert server["OS-DCF:diskConfig"] == "MANUAL"
    assert server["OS-SRV-USG:launched_at"] is None
    # Nova hashes str(project_id).
    assert server["hostId"] == hashlib.sha224(b"Nonecompute-3").hexdigest()
    # No updated_at: `updated` repeats `created` so a page stays the same over time.
    assert server["updated"] == server["created"] == "2024-05-01T12:00:00Z"


def test_aware_datetimes_are_shown_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    row = make_row(
        created_at=datetime(2024, 5, 1, 14, 0, 0, tzinfo=plus_two),
        launched_at=datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
    )
    server = server_detail(row, ctx())
    assert server["created"] == "2024-05-01T12:00:00Z"
    assert server["OS-SRV-USG:launched_at"] == "2024-05-01T12:00:00.000000"


def test_summary() -> None:
    assert server_summary(make_row(), ctx()) == {
        "id": UUID,
        "name": "web-1",
        "links": [
            {"rel": "self", "href": f"{BASE}/v2.1/servers/{UUID}"},
            {"rel": "bookmark", "href": f"{BASE}/servers/{UUID}"},
        ],
    }


def test_links_keep_the_project_from_the_url() -> None:
    context = ctx(project="p1")
    assert server_summary(make_row(), context)["links"] == [
        {"rel": "self", "href": f"{BASE}/v2.1/p1/servers/{UUID}"},
        {"rel": "bookmark", "href": f"{BASE}/p1/servers/{UUID}"},
    ]
    server = server_detail(make_row(), context, DETAILS)
    image = server["image"]
    assert isinstance(image, dict)
    assert image["links"] == [
        {"rel": "bookmark", "href": f"{BASE}/p1/images/a3f9a4c2-7c51-4c39-8e5c-5b7d0f3f7f10"}
    ]
    assert server["flavor"] == {
        "id": "m1.small",
        "links": [{"rel": "bookmark", "href": f"{BASE}/p1/flavors/m1.small"}],
    }


def test_trailing_slash_on_base_url_is_tolerated() -> None:
    context = ViewContext(
        base_url=BASE + "/", project_in_url=None, version=(2, 1), grants=READER_VIEW
    )
    expected = server_summary(make_row(), ctx())["links"]
    assert server_summary(make_row(), context)["links"] == expected


def test_stub_summary() -> None:
    stub = stub_summary(UUID, ctx((2, 69)))
    assert set(stub) == {"id", "status", "links"}
    assert stub["id"] == UUID
    assert stub["status"] == "UNKNOWN"
    assert stub["links"] == server_summary(make_row(), ctx())["links"]


def test_stub_detail() -> None:
    stub = stub_detail(UUID, "p1", datetime(2024, 5, 1, 12, 0, 0), ctx((2, 69)))
    assert set(stub) == {"id", "status", "tenant_id", "created", "links"}
    assert stub == {
        "id": UUID,
        "status": "UNKNOWN",
        "tenant_id": "p1",
        "created": "2024-05-01T12:00:00Z",
        "links": [
            {"rel": "self", "href": f"{BASE}/v2.1/servers/{UUID}"},
            {"rel": "bookmark", "href": f"{BASE}/servers/{UUID}"},
        ],
    }


SPEC = RequestSpecInfo(
    flavor=FlavorInfo("2", "m1.small", 1, 2048, 20, 0, 0, (("hw:cpu_policy", "shared"),)),
    image_id="9a6c1f3d-2b8e-4f7a-a1c5-7d4e0b3f8c32",
    availability_zone="az2",
    user_id="u1",
)


def test_stub_show() -> None:
    """Nova's ``_show_from_down_cell``: the detail stub plus the request spec's fields."""
    stub = stub_show(UUID, "p1", datetime(2024, 5, 1, 12, 0, 0), SPEC, ctx((2, 69)))
    assert stub == {
        **stub_detail(UUID, "p1", datetime(2024, 5, 1, 12, 0, 0), ctx((2, 69))),
        "image": {
            "id": SPEC.image_id,
            "links": [{"rel": "bookmark", "href": f"{BASE}/images/{SPEC.image_id}"}],
        },
        "flavor": {
            "vcpus": 1,
            "ram": 2048,
            "disk": 20,
            "ephemeral": 0,
            "swap": 0,
            "original_name": "m1.small",
            "extra_specs": {"hw:cpu_policy": "shared"},
        },
        "OS-EXT-AZ:availability_zone": "az2",
        "OS-EXT-STS:power_state": 0,
        "user_id": "u1",
    }


def test_stub_show_placeholders() -> None:
    """No image (boot from volume), no zone asked for, a spec without a user: Nova's
    ``""`` and ``UNKNOWN``; no creation time: the epoch, as the listing's stubs."""
    bare = RequestSpecInfo(SPEC.flavor, None, None, None)
    stub = stub_show(UUID, "p1", None, bare, ctx((2, 90)))
    assert stub["image"] == ""
    assert stub["OS-EXT-AZ:availability_zone"] == "UNKNOWN"
    assert stub["user_id"] == "UNKNOWN"
    assert stub["created"] == "1970-01-01T00:00:00Z"


def test_next_link_keeps_repeats_and_order() -> None:
    items = [
        ("sort_key", "display_name"),
        ("limit", "2"),
        ("sort_key", "uuid"),
        ("status", "ACTIVE"),
        ("sort_dir", "asc"),
        ("status", "SHUTOFF"),
    ]
    link = next_link(ctx(), "servers/detail", items, UUID)
    assert link["rel"] == "next"
    href = urlsplit(link["href"])
    assert f"{href.scheme}://{href.netloc}{href.path}" == f"{BASE}/v2.1/servers/detail"
    assert parse_qsl(href.query) == [*items, ("marker", UUID)]
    assert set(link) == {"rel", "href"}


def test_next_link_replaces_previous_marker() -> None:
    items = [("marker", "old-1"), ("limit", "5"), ("marker", "old-2"), ("name", "web")]
    link = next_link(ctx(project="p1"), "servers", items, "new")
    assert link == {
        "rel": "next",
        "href": f"{BASE}/v2.1/p1/servers?limit=5&name=web&marker=new",
    }


def test_next_link_encodes_values() -> None:
    link = next_link(ctx(), "servers", [("name", "a b&c=d"), ("changes-since", "x+1")], "m")
    assert link["href"] == f"{BASE}/v2.1/servers?name=a+b%26c%3Dd&changes-since=x%2B1&marker=m"


def test_next_link_without_query() -> None:
    assert next_link(ctx(), "servers", [], "m") == {
        "rel": "next",
        "href": f"{BASE}/v2.1/servers?marker=m",
    }
