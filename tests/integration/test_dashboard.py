"""The Grafana dashboard (scripts/monitoring) asks only for series a live gateway exports.

The gateway runs on the seeded PostgreSQL cells with Redis; after a listing, its next page
(a frontier lookup), a repeated page (the page cache), a show and an unknown path, every
metric name in every panel's PromQL must be a sample name of the scrape (histograms as
``_bucket``), and every panel must use the provisioned Prometheus datasource.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.apps import app_client
from tests.support.cellsets import CellSet

pytestmark = pytest.mark.integration

MONITORING = Path(__file__).resolve().parents[2] / "scripts" / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "cellgate.json"
DATASOURCES = MONITORING / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
ADMIN = {"X-Auth-Token": "admin:admin"}


def _panels() -> list[dict[str, object]]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    panels = dashboard["panels"]
    assert isinstance(panels, list)
    assert len(panels) >= 10
    return panels


def test_panels_use_the_provisioned_datasource() -> None:
    [source] = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))["datasources"]
    for panel in _panels():
        assert panel.get("title"), panel
        assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}, panel["title"]
        targets = panel.get("targets")
        assert isinstance(targets, list)
        assert targets, panel["title"]
        assert all(t.get("expr") for t in targets), panel["title"]


async def test_every_panel_query_names_an_exported_series(
    pg_cells: CellSet, redis_url: str
) -> None:
    settings = pg_cells.settings(redis_url=redis_url, redis_prefix=f"cgdash{os.getpid()}")
    async with app_client(settings) as http:
        first = await http.get("/v2.1/servers?all_tenants=1&limit=5", headers=ADMIN)
        assert first.status_code == 200
        again = await http.get("/v2.1/servers?all_tenants=1&limit=5", headers=ADMIN)
        assert again.status_code == 200
        following = first.json()["servers_links"][0]["href"].removeprefix("http://gateway.test")
        assert (await http.get(following, headers=ADMIN)).status_code == 200
        server = first.json()["servers"][0]["id"]
        assert (await http.get(f"/v2.1/servers/{server}", headers=ADMIN)).status_code == 200
        assert (await http.get("/nowhere", headers=ADMIN)).status_code == 404
        scrape = (await http.get("/metrics")).text
    exported = {
        sample.name
        for family in text_string_to_metric_families(scrape)
        for sample in family.samples
    }
    missing: dict[str, list[str]] = {}
    for panel in _panels():
        for target in panel["targets"]:  # type: ignore[attr-defined]  # the dashboard is parsed JSON (object)
            for name in re.findall(r"\bcellgate_[a-z_]+", str(target["expr"])):
                if name not in exported:
                    missing.setdefault(str(panel["title"]), []).append(name)
    assert missing == {}, sorted(n for n in exported if n.startswith("cellgate_"))
