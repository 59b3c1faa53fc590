"""Side data → Nova's detail fields: cells.novajson, cells.details.collect, gateway.detailviews."""

from __future__ import annotations

from datetime import datetime

import orjson
import pytest

from cells.details import Details, Fault, Volume, collect
from cells.novajson import (
    FLAVOR_CACHE,
    Address,
    _decode_flavor_text,
    decode_flavor,
    decode_network_info,
)
from gateway.policy import ADMIN_VIEW, READER_VIEW
from gateway.views import ViewContext, server_detail

UUID = "0b5cfa43-2c51-4d4f-9a57-1d5c7e6f0a01"
BASE = "http://gw"
MAC1, MAC2 = "fa:16:3e:00:00:01", "fa:16:3e:00:00:02"


def ip(address: str, version: int, kind: str, floating: tuple[str, ...] = ()) -> dict[str, object]:
    return {
        "address": address,
        "type": kind,
        "version": version,
        "meta": {},
        "floating_ips": [
            {"address": f, "type": "floating", "version": 4, "meta": {}} for f in floating
        ],
    }


def vif(mac: str, label: str, *subnets: list[dict[str, object]]) -> dict[str, object]:
    return {
        "id": "port",
        "address": mac,
        "network": {"label": label, "subnets": [{"ips": ips} for ips in subnets]},
    }


NETWORK = [
    vif(
        MAC1,
        "private",
        [ip("10.0.0.5", 4, "fixed", ("172.24.4.9",))],
        [ip("fd00::5", 6, "fixed")],
    ),
    vif(MAC2, "storage", [ip("10.1.0.7", 4, "fixed")]),
    vif(MAC2, "private", [ip("10.0.0.8", 4, "fixed", ("172.24.4.10",))]),
]


def row(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": 1,
        "uuid": UUID,
        "display_name": "vm",
        "project_id": "p",
        "user_id": "u",
        "vm_state": "active",
        "task_state": None,
        "image_ref": "img-1",
        "created_at": datetime(2024, 1, 1),
        "deleted": 0,
    }
    base.update(changes)
    return base


def ctx(version: tuple[int, int] = (2, 1), admin: bool = False) -> ViewContext:
    return ViewContext(BASE, None, version, ADMIN_VIEW if admin else READER_VIEW)


def test_network_model_fixed_then_floating_per_label_in_vif_order() -> None:
    networks = decode_network_info(orjson.dumps(NETWORK).decode())
    assert [label for label, _ in networks] == ["private", "storage"]
    private = dict(networks)["private"]
    assert private == (
        Address(4, "10.0.0.5", "fixed", MAC1),
        Address(6, "fd00::5", "fixed", MAC1),
        Address(4, "10.0.0.8", "fixed", MAC2),
        Address(4, "172.24.4.9", "floating", MAC1),
        Address(4, "172.24.4.10", "floating", MAC2),
    )


def test_addresses_rendering() -> None:
    details = collect({"network": [(UUID, orjson.dumps(NETWORK).decode())]}, [UUID])[UUID]
    addresses = server_detail(row(), ctx(), details)["addresses"]
    assert addresses == {
        "private": [
            {"version": 4, "addr": "10.0.0.5", "OS-EXT-IPS:type": "fixed",
             "OS-EXT-IPS-MAC:mac_addr": MAC1},
            {"version": 6, "addr": "fd00::5", "OS-EXT-IPS:type": "fixed",
             "OS-EXT-IPS-MAC:mac_addr": MAC1},
            {"version": 4, "addr": "10.0.0.8", "OS-EXT-IPS:type": "fixed",
             "OS-EXT-IPS-MAC:mac_addr": MAC2},
            {"version": 4, "addr": "172.24.4.9", "OS-EXT-IPS:type": "floating",
             "OS-EXT-IPS-MAC:mac_addr": MAC1},
            {"version": 4, "addr": "172.24.4.10", "OS-EXT-IPS:type": "floating",
             "OS-EXT-IPS-MAC:mac_addr": MAC2},
        ],
        "storage": [
            {"version": 4, "addr": "10.1.0.7", "OS-EXT-IPS:type": "fixed",
             "OS-EXT-IPS-MAC:mac_addr": MAC2},
        ],
    }  # fmt: skip


@pytest.mark.parametrize("value", ["[]", None, "{}", "[{}]", '[{"network": null}]', "x"])
def test_empty_or_broken_network_model(value: object) -> None:
    assert decode_network_info(value) == ()


def test_flavor_needs_the_versioned_object_form() -> None:
    data = {"flavorid": "7", "name": "m", "vcpus": 1, "memory_mb": 64, "root_gb": 1}
    assert decode_flavor(orjson.dumps({"cur": {"nova_object.data": data}})) is not None
    assert decode_flavor(orjson.dumps(data)) is None  # not Nova's form
    assert decode_flavor(orjson.dumps({"cur": None, "old": {"nova_object.data": data}})) is None


def test_flavor_text_decoding_is_kept_and_bounded() -> None:
    def text(flavorid: str) -> str:
        data = {"flavorid": flavorid, "name": "m", "vcpus": 1, "memory_mb": 64, "root_gb": 1}
        return orjson.dumps({"cur": {"nova_object.data": data}}).decode()

    first = decode_flavor(text("7"))
    assert first is not None
    assert decode_flavor("".join(text("7"))) is first  # an equal text: the kept decoding
    other = decode_flavor(text("8"))
    assert other is not None
    assert other.flavorid == "8"
    assert decode_flavor("not json") is None
    for i in range(FLAVOR_CACHE + 10):
        decode_flavor(text(f"x{i}"))
    assert _decode_flavor_text.cache_info().currsize == FLAVOR_CACHE


FAULT_ROWS = [
    (UUID, 3, 500, "later", "Traceback: boom", datetime(2024, 1, 1, 0, 0, 3)),
    (UUID, 1, 400, "first", "bad", datetime(2024, 1, 1, 0, 0, 1)),
    (UUID, 2, 404, "second", "gone", datetime(2024, 1, 1, 0, 0, 2)),
]


def test_latest_fault_is_the_highest_id() -> None:
    details = collect({"fault": FAULT_ROWS}, [UUID])[UUID]
    assert details.fault == Fault(500, "later", "Traceback: boom", datetime(2024, 1, 1, 0, 0, 3))


@pytest.mark.parametrize(
    ("vm_state", "deleted", "shown"),
    [("error", 0, True), ("active", 0, False), ("stopped", 0, False), ("active", 5, True)],
)
def test_fault_only_for_error_and_deleted(vm_state: str, deleted: int, shown: bool) -> None:
    details = collect({"fault": FAULT_ROWS}, [UUID])[UUID]
    server = server_detail(row(vm_state=vm_state, deleted=deleted), ctx(), details)
    assert ("fault" in server) is shown


@pytest.mark.parametrize(
    ("code", "admin", "has_details"),
    [(500, False, False), (500, True, True), (404, False, True), (404, True, True)],
)
def test_fault_details_for_admins_or_non_500(code: int, admin: bool, has_details: bool) -> None:
    fault = Fault(code, "msg", "trace", datetime(2024, 2, 3, 4, 5, 6))
    server = server_detail(row(vm_state="error"), ctx(admin=admin), Details(fault=fault))
    expected: dict[str, object] = {
        "code": code,
        "created": "2024-02-03T04:05:06Z",
        "message": "msg",
    }
    if has_details:
        expected["details"] = "trace"
    assert server["fault"] == expected


def test_empty_fault_details_are_omitted() -> None:
    fault = Fault(404, "msg", "", datetime(2024, 2, 3))
    server = server_detail(row(vm_state="error"), ctx(admin=True), Details(fault=fault))
    assert "details" not in server["fault"]  # type: ignore[operator]  # a view's values are object; fault is a dict here


def test_volumes_before_and_from_2_3() -> None:
    rows = [(UUID, "vol-a", True), (UUID, "vol-b", None), (UUID, None, False)]
    details = collect({"volumes": rows}, [UUID])[UUID]
    assert details.volumes == (Volume("vol-a", True), Volume("vol-b", False))
    key = "os-extended-volumes:volumes_attached"
    assert server_detail(row(), ctx((2, 1)), details)[key] == [{"id": "vol-a"}, {"id": "vol-b"}]
    assert server_detail(row(), ctx((2, 3)), details)[key] == [
        {"id": "vol-a", "delete_on_termination": True},
        {"id": "vol-b", "delete_on_termination": False},
    ]


def test_boot_from_volume_has_an_empty_image() -> None:
    details = Details(volumes=(Volume("root-vol", True),))
    server = server_detail(row(image_ref=""), ctx(), details)
    assert server["image"] == ""
    assert server["os-extended-volumes:volumes_attached"] == [{"id": "root-vol"}]


def test_metadata_and_tags_per_instance() -> None:
    other = "1d4ae6a4-2e6c-4d4e-8a5e-8c3b7f0c9e02"
    details = collect(
        {
            "metadata": [(UUID, "a", "1"), (other, "b", "2"), (UUID, "c", None)],
            "tags": [(UUID, "x"), (other, "y")],
        },
        [UUID, other, "no-rows"],
    )
    assert details[UUID].metadata == (("a", "1"), ("c", ""))
    assert details[other].tags == ("y",)
    assert details["no-rows"] == Details()
    server = server_detail(row(), ctx((2, 26)), details[UUID])
    assert server["metadata"] == {"a": "1", "c": ""}
    assert server["tags"] == ["x"]
