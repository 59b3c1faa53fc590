"""Store keys: stable fingerprints, one cluster hash tag per walk."""

from __future__ import annotations

from cache.keys import frontier_key, page_key
from cells.walk import fingerprint


def test_fingerprint_is_stable_and_order_insensitive() -> None:
    a = fingerprint({"filters": {"project_id": "demo"}, "sort": [["created_at", "desc"]]})
    b = fingerprint({"sort": [["created_at", "desc"]], "filters": {"project_id": "demo"}})
    assert a == b
    assert len(a) == 32
    assert a != fingerprint({"filters": {"project_id": "demo2"}, "sort": [["created_at", "desc"]]})
    assert a != fingerprint({"filters": {"project_id": "demo"}, "sort": [["created_at", "asc"]]})


def test_keys_share_one_cluster_hash_tag() -> None:
    fp = fingerprint({"x": 1})
    key = frontier_key("cg", fp, "some-uuid")
    assert key == f"cg:v2:frontier:{{{fp}}}:some-uuid"
    body = page_key("cg", fp)
    assert body == f"cg:v3:page:{{{fp}}}"
    # Redis Cluster hashes only the first {...} section: the fingerprint.
    for k in (key, body):
        assert k[k.index("{") + 1 : k.index("}")] == fp
