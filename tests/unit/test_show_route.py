"""gateway.show: which server ids are looked up."""

from __future__ import annotations

import pytest

from gateway.show import instance_uuid

UUID = "6f1c6c47-3c4b-4f44-9a5d-0a4f3f6c2e11"


def test_a_uuid_is_looked_up_as_is() -> None:
    assert instance_uuid(UUID) == UUID


def test_upper_case_is_lowered() -> None:
    """Nova's MySQL lookup ignores case; stored uuids are lower case."""
    assert instance_uuid(UUID.upper()) == UUID


@pytest.mark.parametrize(
    "server_id",
    [
        "detail",
        "42",
        "",
        UUID.replace("-", ""),  # uuid-like to Nova, but never stored that way
        f"{{{UUID}}}",
        f"urn:uuid:{UUID}",
        f"{UUID}x",
        UUID[:-1],
    ],
)
def test_anything_else_is_not_found(server_id: str) -> None:
    assert instance_uuid(server_id) is None
