"""The README carries the parity suite's table of allowed differences, as it is."""

from __future__ import annotations

from pathlib import Path

from tests.support.known import KNOWN, markdown_table

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_the_readme_has_the_table() -> None:
    assert markdown_table() in README


def test_every_entry_has_a_reason_and_a_unique_name() -> None:
    names = [k.name for k in KNOWN]
    assert len(names) == len(set(names))
    assert all(len(k.reason) > 40 for k in KNOWN)


def test_pending_entries_say_so_in_their_name() -> None:
    for entry in KNOWN:
        pending = entry.name.startswith(("pending:", "cellgate:"))
        assert pending == (entry.kind == "pending"), entry.name
