"""``--nova-config``: what an operator's ``nova.conf`` tells cellgate, read with oslo.config.

Only the options in :data:`OPTIONS` are registered, on a private ``ConfigOpts`` (never
oslo.config's global ``CONF``), and the environment is not consulted (oslo.config's
``OS_<GROUP>__<OPTION>`` variables): the file alone speaks. A value is taken only when
the file sets it (an option left at Nova's default leaves cellgate's default), with two
exceptions that follow what nova-api itself would do:

- ``[oslo_policy] policy_file`` is looked up as oslo.config does (an absolute path, or a
  name in the directories of the given files), also at its default ``policy.yaml``; not
  found is fine at the default (Nova's defaults apply) and an error when set;
- a ``[keystone_authtoken]`` with ``auth_url``, ``username`` and ``password`` turns on
  ``auth_mode=keystone`` (nova-api validates tokens with that service user).

:class:`NovaConfigSource` hands the values to :class:`~gateway.settings.Settings` below
``CELLGATE_*`` variables and the TOML file, which win.

Over the house size on purpose: one option of ``nova.conf`` per block, each with the rule
that maps it, so the README's table and this module read in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oslo_config import cfg
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

__all__ = ["OPTIONS", "NovaConfigError", "NovaConfigSource", "NovaOption", "read_nova_config"]

DEFAULT_POLICY_FILE = "policy.yaml"


class NovaConfigError(ValueError):
    """A ``nova.conf`` that cannot be read, or holds a value cellgate cannot use."""


@dataclass(frozen=True)
class NovaOption:
    """One option of ``nova.conf`` and the setting it fills: ``setting`` is a field of
    :class:`~gateway.settings.Settings`, or ``neutron.<field>``."""

    group: str
    opt: cfg.Opt
    setting: str
    meaning: str  # the README's table says it

    @property
    def name(self) -> str:
        return f"[{self.group}] {self.opt.name}"

    @property
    def oslo_group(self) -> str | None:
        """The group as oslo.config names it (``None``: ``[DEFAULT]``)."""
        return None if self.group == "DEFAULT" else self.group


def _str(name: str, **kwargs: Any) -> cfg.StrOpt:
    return cfg.StrOpt(name, **kwargs)


_AUTH = "keystone_authtoken"
OPTIONS: tuple[NovaOption, ...] = (
    NovaOption(
        "api_database",
        _str("connection", secret=True),
        "api_database_url",
        "The API database (`CELLGATE_API_DATABASE_URL`).",
    ),
    NovaOption(
        "database",
        _str("connection", secret=True),
        "database_connection",
        "Fills Nova's templated `cell_mappings` URLs (`CELLGATE_DATABASE_CONNECTION`).",
    ),
    NovaOption(
        _AUTH,
        _str("www_authenticate_uri", deprecated_name="auth_uri"),
        "www_authenticate_uri",
        "The identity URI a 401 names (`CELLGATE_WWW_AUTHENTICATE_URI`).",
    ),
    NovaOption(
        _AUTH,
        _str("auth_url"),
        "keystone_auth_url",
        "Keystone's URL for the service user (`CELLGATE_KEYSTONE_AUTH_URL`).",
    ),
    NovaOption(
        _AUTH,
        _str("username"),
        "keystone_username",
        "The service user validating tokens (`CELLGATE_KEYSTONE_USERNAME`).",
    ),
    NovaOption(
        _AUTH,
        _str("password", secret=True),
        "keystone_password",
        "Its password (`CELLGATE_KEYSTONE_PASSWORD`).",
    ),
    NovaOption(
        _AUTH,
        _str("project_name"),
        "keystone_project_name",
        "`CELLGATE_KEYSTONE_PROJECT_NAME`.",
    ),
    NovaOption(
        _AUTH,
        _str("user_domain_name"),
        "keystone_user_domain_name",
        "`CELLGATE_KEYSTONE_USER_DOMAIN_NAME`.",
    ),
    NovaOption(
        _AUTH,
        _str("project_domain_name"),
        "keystone_project_domain_name",
        "`CELLGATE_KEYSTONE_PROJECT_DOMAIN_NAME`.",
    ),
    NovaOption(
        _AUTH,
        _str("user_domain_id"),
        "keystone_user_domain_id",
        "`CELLGATE_KEYSTONE_USER_DOMAIN_ID` (kolla writes ids, devstack names).",
    ),
    NovaOption(
        _AUTH,
        _str("project_domain_id"),
        "keystone_project_domain_id",
        "`CELLGATE_KEYSTONE_PROJECT_DOMAIN_ID`.",
    ),
    NovaOption(
        _AUTH,
        _str("interface", choices=["public", "internal", "admin"]),
        "keystone_interface",
        "Which identity endpoint validates tokens (`CELLGATE_KEYSTONE_INTERFACE`).",
    ),
    NovaOption(
        _AUTH,
        _str("region_name"),
        "keystone_region_name",
        "`CELLGATE_KEYSTONE_REGION_NAME`.",
    ),
    NovaOption(
        "oslo_policy",
        _str("policy_file", default=DEFAULT_POLICY_FILE),
        "policy_file",
        "The operator's policy file (`CELLGATE_POLICY_FILE`), found as oslo.config finds "
        "it: absolute, or beside `nova.conf`; at the default `policy.yaml`, a missing file "
        "means Nova's defaults.",
    ),
    NovaOption(
        "api",
        cfg.IntOpt(
            "max_limit", min=0, deprecated_group="DEFAULT", deprecated_name="osapi_max_limit"
        ),
        "max_limit",
        "Default and largest page (`CELLGATE_MAX_LIMIT`).",
    ),
    NovaOption(
        "api",
        cfg.BoolOpt("instance_list_per_project_cells"),
        "per_project_cells",
        "Ask only the cells holding the project's instances (`CELLGATE_PER_PROJECT_CELLS`). "
        "Nova's default is false, cellgate's true (it changes no answer): only a value set "
        "in the file is taken.",
    ),
    NovaOption(
        "api",
        cfg.BoolOpt("list_records_by_skipping_down_cells"),
        "list_records_by_skipping_down_cells",
        "true: a listing skips a down cell (200, `X-Cells-Unavailable`); false: 503 with "
        "`Retry-After` where Nova fails with 500 "
        "(`CELLGATE_LIST_RECORDS_BY_SKIPPING_DOWN_CELLS`).",
    ),
    NovaOption(
        "api",
        _str("compute_link_prefix"),
        "public_base_url",
        "The base of the links in answers (`CELLGATE_PUBLIC_BASE_URL`): behind HAProxy, "
        "the endpoint clients use, as nova-api's links say.",
    ),
    NovaOption(
        "DEFAULT",
        _str("default_availability_zone"),
        "default_availability_zone",
        "The zone shown for a server on a host whose instance row names none "
        "(`CELLGATE_DEFAULT_AVAILABILITY_ZONE`).",
    ),
    NovaOption(
        "DEFAULT",
        cfg.IntOpt("service_down_time", min=1),
        "service_down_time_s",
        "Seconds after which a nova-compute service not seen up makes `host_status` "
        "`UNKNOWN` (`CELLGATE_SERVICE_DOWN_TIME_S`).",
    ),
    *(
        NovaOption(
            "neutron",
            opt,
            f"neutron.{opt.name}",
            "Where security_groups come from (`CELLGATE_NEUTRON`).",
        )
        for opt in (
            _str("auth_type"),
            _str("auth_url"),
            _str("username"),
            _str("password", secret=True),
            _str("project_name"),
            _str("user_domain_name"),
            _str("user_domain_id"),
            _str("project_domain_name"),
            _str("project_domain_id"),
            _str("region_name"),
            cfg.ListOpt("valid_interfaces"),
            _str("endpoint_override"),
        )
    ),
)
"""Every option cellgate reads, in the README's order."""


def _load(paths: Sequence[Path]) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    for option in OPTIONS:
        conf.register_opt(option.opt, group=option.oslo_group)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"nova.conf not found: {', '.join(missing)}")
    try:
        conf(
            args=[],
            project="nova",
            default_config_files=[str(p.resolve()) for p in paths],
            default_config_dirs=[],
            use_env=False,
        )
    except cfg.Error as exc:
        raise NovaConfigError(f"cannot read {', '.join(map(str, paths))}: {exc}") from exc
    return conf


def _value(conf: cfg.ConfigOpts, option: NovaOption) -> object:
    group = option.oslo_group
    try:
        section = conf if group is None else conf[group]
        return section[option.opt.dest]
    except (ValueError, cfg.Error) as exc:
        raise NovaConfigError(f"nova.conf {option.name}: {exc}") from exc


def _is_set(conf: cfg.ConfigOpts, option: NovaOption) -> bool:
    try:
        where = conf.get_location(option.opt.dest, option.oslo_group)
    except (ValueError, cfg.Error) as exc:  # the value is read to locate it
        raise NovaConfigError(f"nova.conf {option.name}: {exc}") from exc
    return where is not None and where.location is not cfg.Locations.opt_default


def _policy_file(conf: cfg.ConfigOpts, option: NovaOption) -> str | None:
    name = str(_value(conf, option))
    found: str | None = conf.find_file(name)
    if found is not None:
        return str(Path(found).resolve())
    if _is_set(conf, option):
        raise NovaConfigError(f"nova.conf {option.name}: {name} not found")
    return None


_SPECIAL: Mapping[str, Callable[[cfg.ConfigOpts, NovaOption], object]] = {
    "policy_file": _policy_file,
}


def read_nova_config(paths: Sequence[Path]) -> dict[str, object]:
    """The settings ``paths`` (nova.conf files, later ones winning) give, as a mapping
    :class:`~gateway.settings.Settings` accepts (``neutron`` nested); raises
    :class:`FileNotFoundError` or :class:`NovaConfigError`."""
    conf = _load(paths)
    values: dict[str, object] = {}
    neutron: dict[str, object] = {}
    for option in OPTIONS:
        special = _SPECIAL.get(option.setting)
        if special is not None:
            value = special(conf, option)
        elif _is_set(conf, option):
            value = _value(conf, option)
        else:
            continue
        if value is None or value == "":
            continue
        target, _, field = option.setting.partition(".")
        if field:
            neutron[field] = value
        else:
            values[target] = value
    if neutron:
        values["neutron"] = neutron
    if all(values.get(f"keystone_{name}") for name in ("auth_url", "username", "password")):
        values["auth_mode"] = "keystone"
    return values


class NovaConfigSource(PydanticBaseSettingsSource):
    """Settings from ``nova.conf`` (:func:`read_nova_config`), for
    ``settings_customise_sources``: place it after the sources that should win."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, object]) -> None:
        super().__init__(settings_cls)
        self._values = dict(values)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)
