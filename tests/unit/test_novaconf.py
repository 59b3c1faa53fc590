"""``--nova-config``: a real ``nova.conf`` (written to a temporary file) read with oslo.config
into Settings, below ``CELLGATE_*`` variables and the TOML file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.novaconf import OPTIONS, NovaConfigError, read_nova_config
from gateway.settings import Settings, load_settings

README = (Path(__file__).parents[2] / "README.md").read_text()

# What kolla-ansible writes (domain ids, a deprecated auth_uri) plus the options cellgate reads.
KOLLA = """\
[DEFAULT]
debug = False
transport_url = rabbit://openstack:pw@10.0.0.1:5672//
default_availability_zone = az1
[api]
max_limit = 500
compute_link_prefix = https://compute.example.org:8774
list_records_by_skipping_down_cells = false
instance_list_per_project_cells = false
[api_database]
connection = mysql+pymysql://nova_api:apipw@10.0.0.9:3306/nova_api
max_retries = -1
[database]
connection = mysql+pymysql://nova:cellpw@10.0.0.9:3306/nova
[keystone_authtoken]
service_type = compute
www_authenticate_uri = http://10.0.0.5:5000
auth_url = http://10.0.0.5:5000
auth_type = password
project_domain_id = default
user_domain_id = default
project_name = service
username = nova
password = novapw
region_name = RegionTwo
interface = internal
memcached_servers = 10.0.0.1:11211
[oslo_policy]
policy_file = nova-policy.yaml
[neutron]
metadata_proxy_shared_secret = s
auth_url = http://10.0.0.5:5000
auth_type = password
project_domain_name = Default
user_domain_id = default
project_name = service
username = neutron
password = neutronpw
region_name = RegionTwo
valid_interfaces = internal
"""


def _write(tmp_path: Path, text: str, name: str = "nova.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def kolla(tmp_path: Path) -> Path:
    (tmp_path / "nova-policy.yaml").write_text('"os_compute_api:servers:index": "@"\n')
    return _write(tmp_path, KOLLA)


def test_kolla_nova_conf(kolla: Path) -> None:
    settings = load_settings(None, [kolla])
    assert settings.api_database_url == "mysql+pymysql://nova_api:apipw@10.0.0.9:3306/nova_api"
    assert settings.database_connection is not None
    assert settings.database_connection.get_secret_value().endswith("@10.0.0.9:3306/nova")
    assert settings.auth_mode == "keystone"
    assert settings.keystone_auth_url == "http://10.0.0.5:5000"
    assert settings.keystone_username == "nova"
    assert settings.keystone_password is not None
    assert settings.keystone_password.get_secret_value() == "novapw"
    assert settings.keystone_project_name == "service"
    assert settings.keystone_user_domain_id == "default"
    assert settings.keystone_project_domain_id == "default"
    assert settings.keystone_interface == "internal"
    assert settings.keystone_region_name == "RegionTwo"
    assert settings.www_authenticate_uri == "http://10.0.0.5:5000"
    assert settings.policy_file == (kolla.parent / "nova-policy.yaml").resolve()
    assert settings.max_limit == 500
    assert settings.public_base_url == "https://compute.example.org:8774"
    assert settings.list_records_by_skipping_down_cells is False
    assert settings.per_project_cells is False
    assert settings.default_availability_zone == "az1"
    neutron = settings.neutron
    assert neutron is not None
    assert (neutron.username, neutron.region_name) == ("neutron", "RegionTwo")
    assert neutron.password is not None
    assert neutron.password.get_secret_value() == "neutronpw"
    assert neutron.valid_interfaces == ["internal"]
    assert (neutron.user_domain_id, neutron.project_domain_name) == ("default", "Default")


def test_options_left_at_novas_defaults_keep_cellgates(tmp_path: Path) -> None:
    conf = _write(tmp_path, "[api_database]\nconnection = postgresql://nova@db/nova_api\n")
    settings = load_settings(None, [conf])
    defaults = Settings()
    assert settings.api_database_url == "postgresql://nova@db/nova_api"
    # Nova's instance_list_per_project_cells defaults to false; cellgate's stays true.
    assert settings.per_project_cells is defaults.per_project_cells is True
    assert settings.max_limit == defaults.max_limit
    assert settings.auth_mode == defaults.auth_mode
    assert settings.policy_file is None  # no policy.yaml beside it: Nova's defaults
    assert settings.neutron is None
    assert settings.database_connection is None


def test_cellgate_variables_and_toml_win(
    kolla: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CELLGATE_MAX_LIMIT", "50")
    monkeypatch.setenv("CELLGATE_AUTH_MODE", "trusted-headers")
    toml = _write(tmp_path, 'api_database_url = "postgresql://toml/api"\n', "cellgate.toml")
    settings = load_settings(toml, [kolla], log_format="json")
    assert settings.max_limit == 50
    assert settings.auth_mode == "trusted-headers"
    assert settings.api_database_url == "postgresql://toml/api"
    assert settings.log_format == "json"
    assert settings.default_availability_zone == "az1"  # nothing above says otherwise


def test_neutron_is_merged_key_by_key(kolla: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CELLGATE_NEUTRON", '{"region_name": "RegionOne"}')
    neutron = load_settings(None, [kolla]).neutron
    assert neutron is not None
    assert (neutron.region_name, neutron.username) == ("RegionOne", "neutron")


def test_deprecated_names(tmp_path: Path) -> None:
    conf = _write(
        tmp_path,
        "[DEFAULT]\nosapi_max_limit = 200\n[keystone_authtoken]\nauth_uri = http://ks/v3\n",
    )
    settings = load_settings(None, [conf])
    assert settings.max_limit == 200
    assert settings.www_authenticate_uri == "http://ks/v3"


def test_later_files_win(tmp_path: Path) -> None:
    first = _write(tmp_path, "[api]\nmax_limit = 10\n[DEFAULT]\ndefault_availability_zone = a\n")
    second = _write(tmp_path, "[api]\nmax_limit = 20\n", "override.conf")
    settings = load_settings(None, [first, second])
    assert (settings.max_limit, settings.default_availability_zone) == (20, "a")


def test_oslo_environment_variables_are_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OS_API__MAX_LIMIT", "3")
    conf = _write(tmp_path, "[api]\nmax_limit = 30\n")
    assert read_nova_config([conf])["max_limit"] == 30


def test_keystone_mode_needs_the_whole_service_user(tmp_path: Path) -> None:
    conf = _write(tmp_path, "[keystone_authtoken]\nauth_url = http://ks/v3\nusername = nova\n")
    values = read_nova_config([conf])
    assert "auth_mode" not in values
    assert values["keystone_username"] == "nova"


def test_policy_file_at_its_default_beside_nova_conf(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("{}\n")
    conf = _write(tmp_path, "[DEFAULT]\n")
    assert read_nova_config([conf])["policy_file"] == str((tmp_path / "policy.yaml").resolve())


def test_policy_file_absolute(tmp_path: Path) -> None:
    policy = tmp_path / "elsewhere" / "p.json"
    policy.parent.mkdir()
    policy.write_text("{}")
    conf = _write(tmp_path, f"[oslo_policy]\npolicy_file = {policy}\n")
    assert read_nova_config([conf])["policy_file"] == str(policy)


def test_policy_file_set_but_missing(tmp_path: Path) -> None:
    conf = _write(tmp_path, "[oslo_policy]\npolicy_file = nowhere.yaml\n")
    with pytest.raises(NovaConfigError, match=r"\[oslo_policy\] policy_file: nowhere.yaml"):
        read_nova_config([conf])


def test_a_bad_value_names_the_option(tmp_path: Path) -> None:
    conf = _write(tmp_path, "[api]\nmax_limit = many\n")
    with pytest.raises(NovaConfigError, match=r"\[api\] max_limit"):
        read_nova_config([conf])


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nova\.conf not found"):
        load_settings(None, [tmp_path / "nova.conf"])


def test_an_unparsable_file(tmp_path: Path) -> None:
    conf = _write(tmp_path, "this is not ini\n")
    with pytest.raises(NovaConfigError, match="cannot read"):
        read_nova_config([conf])


def test_the_readme_lists_every_option() -> None:
    section = README.split("### nova.conf", 1)[1].split("\n### ", 1)[0]
    listed = set(re.findall(r"^\| `\[([a-z_A-Z]+)\] ([a-z_]+)`", section, re.MULTILINE))
    expected = {(o.group, o.opt.name) for o in OPTIONS if o.group != "neutron"}
    assert listed == expected
    neutron = section.split("| `[neutron]`", 1)[1].split("|", 1)[0]
    assert all(f"`{o.opt.name}`" in neutron for o in OPTIONS if o.group == "neutron")
