"""Nova's sort padding (gateway.sortparams), and the request parser that applies it."""

from __future__ import annotations

import pytest

from cells.order import Direction
from gateway.errors import BadRequest
from gateway.request import parse_list_request
from gateway.sortparams import nova_order
from tests.support.callers import ADMIN, grants

ASC, DESC = Direction.ASC, Direction.DESC


def never(key: str) -> bool:
    return False


def order(items: list[tuple[str, str]], version: tuple[int, int] = (2, 90)) -> object:
    return parse_list_request(items, ADMIN, grants(ADMIN), version, max_limit=1000).sort


@pytest.mark.parametrize(
    ("keys", "dirs", "expected"),
    [
        ([], [], (("created_at", DESC), ("uuid", ASC))),
        (["display_name"], [], (("display_name", DESC), ("uuid", ASC))),
        (["display_name"], ["asc"], (("display_name", ASC), ("uuid", ASC))),
        # uuid takes its asc before the padding: the second key gets it.
        (["display_name", "host"], [], (("display_name", DESC), ("host", ASC), ("uuid", DESC))),
        (
            ["display_name", "host", "node"],
            ["asc"],
            (("display_name", ASC), ("host", ASC), ("node", ASC), ("uuid", ASC)),
        ),
        (
            ["a", "b", "c"],
            ["desc"],
            (("a", DESC), ("b", ASC), ("c", DESC), ("uuid", DESC)),
        ),
        (["a", "b"], ["asc", "desc"], (("a", ASC), ("b", DESC), ("uuid", ASC))),
        (["uuid", "a"], ["desc"], (("uuid", DESC), ("a", DESC))),
    ],
)
def test_nova_padding(keys: list[str], dirs: list[str], expected: object) -> None:
    assert nova_order(keys, dirs, never) == expected


def test_an_ignored_key_takes_its_direction_along() -> None:
    # No direction left: uuid's asc becomes the first, which pads the rest.
    got = nova_order(["id", "display_name"], ["asc"], lambda k: k == "id")
    assert got == (("display_name", ASC), ("uuid", ASC))


def test_only_ignored_keys_is_created_at_then_id() -> None:
    got = nova_order(["id"], ["asc", "desc"], lambda k: k == "id")
    assert got == (("created_at", DESC), ("id", DESC), ("uuid", ASC))


def test_more_directions_than_keys() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        nova_order(["a"], ["asc", "desc"], never)


def test_the_parser_pads_as_nova() -> None:
    items = [("sort_key", "display_name"), ("sort_key", "vm_state"), ("sort_dir", "asc")]
    assert order(items) == (("display_name", ASC), ("vm_state", ASC), ("uuid", ASC))
    items = [("sort_key", "display_name"), ("sort_key", "vm_state")]
    assert order(items) == (("display_name", DESC), ("vm_state", ASC), ("uuid", DESC))


def test_the_parser_drops_ignored_keys_below_2_75() -> None:
    items = [("sort_key", "memory_mb"), ("sort_key", "host"), ("sort_dir", "asc")]
    assert order(items, (2, 74)) == (("host", ASC), ("uuid", ASC))
    with pytest.raises(BadRequest):
        order(items, (2, 75))


def test_the_parser_refuses_more_directions_than_keys() -> None:
    with pytest.raises(BadRequest, match="Sort direction size exceeds sort key size"):
        order([("sort_key", "host"), ("sort_dir", "asc"), ("sort_dir", "desc")])
