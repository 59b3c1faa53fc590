"""The README stays true: every setting is documented, the quick start has two commands."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.settings import Settings

README = (Path(__file__).parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_configuration_reference() -> None:
    missing = [name for name in Settings.model_fields if f"`CELLGATE_{name.upper()}`" not in README]
    assert missing == []


def test_documented_settings_exist() -> None:
    documented = set(re.findall(r"`CELLGATE_([A-Z0-9_]+)`", README))
    assert documented <= {name.upper() for name in Settings.model_fields}


def test_quick_start_has_exactly_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in section.strip().splitlines() if line.strip()]
    assert commands == [
        "pip install -c locks/cellgate.txt -e '.[clients]' && cellgate demo",
        "scripts/test",
    ]


def test_documented_metrics_are_exported() -> None:
    from prometheus_client import generate_latest

    from gateway.metrics import Metrics

    exposition = generate_latest(Metrics().registry).decode()
    documented = set(re.findall(r"`(cellgate_[a-z_]+)", README))
    assert len(documented) > 10
    missing = [name for name in documented if f"# TYPE {name} " not in exposition]
    assert missing == []
