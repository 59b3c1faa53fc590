"""docker-compose.yml and the Dockerfile, checked statically (these machines have no Docker).

The compose topology must match what ``scripts/outage --compose`` and the README drive: every
service they name exists, every database, Redis and the gateway have a health check, the
seeding job runs once the databases are healthy, and the gateway waits for the seed to finish.
The MariaDB profile is the same topology on MariaDB with kolla's server defaults (utf8mb3,
``utf8mb3_general_ci``), and nothing outside the profile needs it.
Prometheus scrapes the gateway and Grafana provisions its datasource and dashboard from files
under ``scripts/monitoring`` that are mounted where their configurations say.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
OUTAGE = ROOT / "scripts" / "outage"
README = ROOT / "README.md"
MONITORING = ROOT / "scripts" / "monitoring"

CELLS = ("cell1", "cell2", "cell3")
POSTGRES = ("apidb", *CELLS)
MARIADB_CELLS = tuple(f"mariadb-{cell}" for cell in CELLS)
MARIADB = ("mariadb-apidb", *MARIADB_CELLS)
MARIADB_PROFILE = (*MARIADB, "mariadb-seed", "mariadb-gateway")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose.get("services")
    assert isinstance(found, dict)
    assert all(isinstance(v, dict) for v in found.values())
    return found


def _depends(service: dict[str, Any]) -> dict[str, str]:
    """``depends_on`` as {service: condition} (the short list form means service_started)."""
    raw = service.get("depends_on", {})
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in raw.items()}


def _command(service: dict[str, Any]) -> list[str]:
    raw = service.get("command", [])
    return shlex.split(raw) if isinstance(raw, str) else [str(part) for part in raw]


def _healthcheck_test(service: dict[str, Any]) -> str:
    check = service.get("healthcheck")
    assert isinstance(check, dict), "no healthcheck"
    assert not check.get("disable"), "healthcheck disabled"
    test = check.get("test")
    assert test, "healthcheck without a test"
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


def _outage_compose_cells() -> list[str]:
    match = re.search(r"^COMPOSE_CELLS=\(([^)]*)\)", OUTAGE.read_text(encoding="utf-8"), re.M)
    assert match, "scripts/outage declares no COMPOSE_CELLS=(...)"
    return match.group(1).split()


def test_compose_parses_with_the_expected_services(services: dict[str, dict[str, Any]]) -> None:
    assert {"apidb", *CELLS, "redis", "seed", "gateway"} <= set(services)


@pytest.mark.parametrize("name", POSTGRES)
def test_postgres_services(services: dict[str, dict[str, Any]], name: str) -> None:
    service = services[name]
    assert str(service["image"]).startswith("postgres:15")
    assert "pg_isready" in _healthcheck_test(service)


def test_redis_service(services: dict[str, dict[str, Any]]) -> None:
    service = services["redis"]
    assert str(service["image"]).startswith("redis:7")
    test = _healthcheck_test(service)
    assert "redis-cli" in test
    assert "ping" in test


def test_gateway_service(services: dict[str, dict[str, Any]]) -> None:
    gateway = services["gateway"]
    assert "build" in gateway
    assert _command(gateway)[:2] == ["cellgate", "serve"]
    command = _command(gateway)
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8774"
    assert any(str(port).split(":")[-1] == "8774" for port in gateway.get("ports", []))
    env = gateway["environment"]
    assert env["CELLGATE_AUTH_MODE"] == "noauth"
    # noauth on 0.0.0.0 is refused unless opted into; this stack opts in, visibly.
    assert str(env["CELLGATE_ALLOW_INSECURE_NOAUTH"]).lower() == "true"
    assert "@apidb:" in env["CELLGATE_API_DATABASE_URL"]
    assert env["CELLGATE_REDIS_URL"].startswith("redis://redis:")
    test = _healthcheck_test(gateway)
    assert "/healthz" in test
    assert "urllib" in test
    depends = _depends(gateway)
    assert depends["seed"] == "service_completed_successfully"
    assert depends["redis"] == "service_healthy"


def test_seed_job(services: dict[str, dict[str, Any]]) -> None:
    seed = services["seed"]
    assert "build" in seed or seed.get("image") == services["gateway"].get("image")
    command = _command(seed)
    assert command[:2] == ["cellgate", "seed"]
    assert "@apidb:" in command[command.index("--api-database-url") + 1]
    cells = [command[i + 1] for i, part in enumerate(command) if part == "--cell"]
    assert [spec.partition("=")[0] for spec in cells] == list(CELLS)
    for spec in cells:
        name, _, url = spec.partition("=")
        assert f"@{name}:" in url, "each cell mapping must point at its own service"
    assert str(seed.get("restart", "no")) == "no"
    assert _depends(seed) == dict.fromkeys(POSTGRES, "service_healthy")


def test_every_service_the_outage_script_names_exists(
    services: dict[str, dict[str, Any]],
) -> None:
    cells = _outage_compose_cells()
    assert cells, "scripts/outage supports no compose cell"
    assert set(cells) <= set(services)
    for name in cells:
        assert "pg_isready" in _healthcheck_test(services[name])
        # --backend mariadb: the MariaDB profile's cell of the same name.
        assert "mariadb-admin" in _healthcheck_test(services[f"mariadb-{name}"])
    assert "service=mariadb-$cell" in OUTAGE.read_text(encoding="utf-8")
    # Every `docker compose VERB cellN` spelled out in the script names a real service too.
    text = OUTAGE.read_text(encoding="utf-8")
    named = set(re.findall(r"docker compose \w+ (cell\d+)", text))
    assert named <= set(services)


def test_every_service_the_readme_names_exists(services: dict[str, dict[str, Any]]) -> None:
    texts = [README.read_text(encoding="utf-8")] if README.is_file() else []
    texts.append(COMPOSE.read_text(encoding="utf-8"))  # its own usage comments
    named: set[str] = set()
    for text in texts:
        named |= set(re.findall(r"docker compose (?:\w+ )+?(cell\d+|apidb|redis|gateway)", text))
        named |= set(re.findall(r"scripts/outage (cell\d+) \w+[^\n]*--compose", text))
        named |= set(re.findall(r"\b(mariadb-(?:cell\d+|apidb|seed|gateway))\b", text))
    assert named <= set(services), named - set(services)


def test_healthchecks_everywhere_but_the_one_shot_seeds(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        if name not in ("seed", "mariadb-seed"):
            _healthcheck_test(service)


def test_the_mariadb_profile_holds_its_services_only(services: dict[str, dict[str, Any]]) -> None:
    profiled = {name for name, service in services.items() if service.get("profiles")}
    assert profiled == set(MARIADB_PROFILE)
    for name in MARIADB_PROFILE:
        assert services[name]["profiles"] == ["mariadb"]
    # A plain `docker compose up` must not need a profile's service.
    for name, service in services.items():
        if name not in profiled:
            assert not set(_depends(service)) & profiled, name


@pytest.mark.parametrize("name", MARIADB)
def test_mariadb_services(services: dict[str, dict[str, Any]], name: str) -> None:
    service = services[name]
    assert str(service["image"]).startswith("mariadb:10.11")
    command = _command(service)
    assert command[0] == "mariadbd"
    assert "--character-set-server=utf8mb3" in command
    assert "--collation-server=utf8mb3_general_ci" in command
    test = _healthcheck_test(service)
    assert "mariadb-admin ping" in test
    assert "-h 127.0.0.1" in test  # the final server, not the image's socket-only init one
    env = service["environment"]
    assert str(env["MARIADB_ALLOW_EMPTY_ROOT_PASSWORD"]) == "1"
    expected = "nova_api" if name == "mariadb-apidb" else f"nova_{name.removeprefix('mariadb-')}"
    assert env["MARIADB_DATABASE"] == expected


def test_mariadb_seed_job(services: dict[str, dict[str, Any]]) -> None:
    seed = services["mariadb-seed"]
    assert seed.get("image") == services["gateway"].get("image")
    command = _command(seed)
    assert command[:2] == ["cellgate", "seed"]
    api = command[command.index("--api-database-url") + 1]
    assert api == "mysql+pymysql://root@mariadb-apidb:3306/nova_api"
    cells = [command[i + 1] for i, part in enumerate(command) if part == "--cell"]
    assert cells == [f"{c}=mysql+pymysql://root@mariadb-{c}:3306/nova_{c}" for c in CELLS]
    assert str(seed.get("restart", "no")) == "no"
    assert _depends(seed) == dict.fromkeys(MARIADB, "service_healthy")


def test_mariadb_gateway(services: dict[str, dict[str, Any]]) -> None:
    gateway = services["mariadb-gateway"]
    assert gateway.get("image") == services["gateway"].get("image")
    assert _command(gateway) == _command(services["gateway"])
    assert gateway["ports"] == ["8775:8774"]
    env = gateway["environment"]
    assert env["CELLGATE_API_DATABASE_URL"] == "mysql+pymysql://root@mariadb-apidb:3306/nova_api"
    # The shared Redis, another database: the two gateways' keys never meet.
    assert env["CELLGATE_REDIS_URL"] == "redis://redis:6379/1"
    assert env["CELLGATE_AUTH_MODE"] == "noauth"
    assert gateway["healthcheck"] == services["gateway"]["healthcheck"]
    assert _depends(gateway) == {
        "mariadb-seed": "service_completed_successfully",
        "redis": "service_healthy",
        "mariadb-apidb": "service_healthy",
    }


def test_dockerfile_installs_the_package() -> None:
    assert DOCKERFILE.is_file()
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(re.match(r"RUN .*pip install (\S+ )*\.(\s|$)", line) for line in lines)
    copied = " ".join(line for line in lines if line.startswith("COPY "))
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in packages:
        assert re.search(rf"\b{re.escape(pattern.rstrip('*'))}\b", copied), pattern
    assert "pyproject.toml" in copied
    readme = pyproject["project"].get("readme")
    if isinstance(readme, str):
        assert readme in copied
    assert any("cellgate" in line and "serve" in line for line in lines if line.startswith("CMD"))


def test_dockerfile_does_not_opt_into_noauth_on_the_network() -> None:
    """The image binds 0.0.0.0; it must need a real auth mode or an explicit opt-in."""
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    text = "\n".join(lines)
    assert "CELLGATE_ALLOW_INSECURE_NOAUTH" not in text
    assert "--host" in text


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Bind mounts as {container path: host path}, read-only ones only."""
    found: dict[str, Path] = {}
    for volume in service.get("volumes", []):
        source, target, mode = str(volume).split(":")
        assert mode == "ro", f"{volume}: configuration is mounted read-only"
        found[target] = ROOT / source
    return found


def _pinned(image: str, repository: str) -> None:
    name, _, tag = image.partition(":")
    assert name == repository
    assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{image}: pin a release tag"


def _yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict), path
    return loaded


def test_prometheus_service(services: dict[str, dict[str, Any]]) -> None:
    service = services["prometheus"]
    _pinned(str(service["image"]), "prom/prometheus")
    assert service["ports"] == ["127.0.0.1:9090:9090"]
    assert _depends(service) == {"gateway": "service_healthy"}
    assert "/-/ready" in _healthcheck_test(service)
    mounts = _mounts(service)
    assert mounts == {"/etc/prometheus/prometheus.yml": MONITORING / "prometheus.yml"}
    assert all(path.is_file() for path in mounts.values())


def test_prometheus_scrapes_the_gateway_every_5s(services: dict[str, dict[str, Any]]) -> None:
    config = _yaml(MONITORING / "prometheus.yml")
    [job] = config["scrape_configs"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job.get("scrape_interval", config["global"]["scrape_interval"]) == "5s"
    [static] = job["static_configs"]
    assert static["targets"] == ["gateway:8774"]
    assert "gateway" in services


def test_grafana_service(services: dict[str, dict[str, Any]]) -> None:
    service = services["grafana"]
    _pinned(str(service["image"]), "grafana/grafana-oss")
    assert service["ports"] == ["127.0.0.1:3000:3000"]
    assert _depends(service) == {"gateway": "service_healthy", "prometheus": "service_healthy"}
    assert "/api/health" in _healthcheck_test(service)
    env = service["environment"]
    # Viewers need no login; the admin password is documented and overridable.
    assert str(env["GF_AUTH_ANONYMOUS_ENABLED"]).lower() == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert "GRAFANA_ADMIN_PASSWORD" in env["GF_SECURITY_ADMIN_PASSWORD"]
    assert "GRAFANA_ADMIN_PASSWORD" in COMPOSE.read_text(encoding="utf-8").split("x-postgres")[0]
    mounts = _mounts(service)
    assert mounts == {
        "/etc/grafana/provisioning": MONITORING / "grafana" / "provisioning",
        "/var/lib/grafana/dashboards": MONITORING / "grafana" / "dashboards",
    }
    assert all(path.is_dir() for path in mounts.values())
    home = Path(env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (mounts[str(home.parent)] / home.name).is_file()


def test_grafana_provisioning_points_at_the_mounts(services: dict[str, dict[str, Any]]) -> None:
    mounts = _mounts(services["grafana"])
    provisioning = mounts["/etc/grafana/provisioning"]
    [datasource] = _yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in services
    [provider] = _yaml(provisioning / "dashboards" / "cellgate.yml")["providers"]
    assert provider["type"] == "file"
    dashboards = mounts[provider["options"]["path"]]
    assert sorted(p.name for p in dashboards.glob("*.json")) == ["cellgate.json"]
