"""gateway.pagecache: what a page cache entry keeps (headers, then the body)."""

from __future__ import annotations

from gateway.pagecache import UNAVAILABLE, pack, unpack


def test_an_entry_keeps_the_unavailable_cells_and_the_body_byte_for_byte() -> None:
    body = b'{"servers": [{"id": "a\\nb"}]}'  # an escaped newline inside the JSON
    headers = {UNAVAILABLE: "cell2,cell3", "OpenStack-API-Version": "compute 2.1"}
    assert unpack(pack(body, headers)) == (body, {UNAVAILABLE: "cell2,cell3"})


def test_a_complete_page_keeps_no_header() -> None:
    assert unpack(pack(b"{}", {"Vary": "OpenStack-API-Version"})) == (b"{}", {})


def test_an_entry_of_another_shape_is_none() -> None:
    assert unpack(b'{"servers": []}') is None  # a body alone (the v2 entries)
    assert unpack(b"[1]\n{}") is None
    assert unpack(b"not json\n{}") is None
