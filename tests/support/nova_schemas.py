"""Nova's own response schemas for the server listings and ``show``, from the nova wheel on PyPI.

Nothing of Nova's is committed: :func:`download_nova` runs ``pip download --no-deps
nova==VERSION`` into a directory the caller owns (a pytest temporary directory), and
:func:`load_listing_schemas` extracts the few files needed from the wheel and imports
them **in a subprocess** (this module run as a script), which prints the schemas as JSON.

The schema module ``nova/api/openstack/compute/schemas/servers.py`` imports
``nova.api.validation.{parameter_types,response_types}`` and ``nova.objects.instance``;
``parameter_types`` imports ``nova.i18n`` and ``nova.objects.tag``. The ``nova`` packages
are bare namespaces over the extracted files, so the schema modules run exactly as
shipped; only ``nova.i18n._`` (identity) and the two constants used from ``nova.objects``
(``tag.MAX_TAG_LENGTH``, ``instance.MAX_TAG_COUNT``, read from the wheel's own source as
literals) stand in for the modules that would pull in the rest of Nova.

Which schema applies to which microversion is read from the controller's decorators
(``@validation.response_body_schema(schema.detail_response_v263, '2.63', '2.68')`` in
``nova/api/openstack/compute/servers.py``), not written down here.

:func:`nova_validator` builds the validator Nova's response validation uses
(``nova.api.validation.validators._SchemaValidator``): Draft 2020-12 with jsonschema's
format checker plus Nova's own ``date-time`` (``oslo_utils.timeutils.parse_isotime``),
``uuid`` (``oslo_utils.uuidutils.is_uuid_like``) and ``uri`` (``rfc3986``, scheme and
host required) checks.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import types
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOVA_VERSION = "34.0.0"

SCHEMAS_MODULE = "nova/api/openstack/compute/schemas/servers.py"
CONTROLLER = "nova/api/openstack/compute/servers.py"
_NEEDED = (
    SCHEMAS_MODULE,
    CONTROLLER,
    "nova/api/validation/parameter_types.py",
    "nova/api/validation/response_types.py",
    "nova/objects/tag.py",
    "nova/objects/instance.py",
)
_PACKAGES = (
    "nova",
    "nova.api",
    "nova.api.validation",
    "nova.api.openstack",
    "nova.api.openstack.compute",
    "nova.api.openstack.compute.schemas",
)

Version = tuple[int, int]
Schema = dict[str, Any]


class SchemaSourceUnavailable(RuntimeError):
    """The nova wheel could not be downloaded (no network, no index)."""


def download_nova(dest: Path, version: str = NOVA_VERSION) -> Path:
    """``pip download --no-deps nova==version`` into ``dest``; the wheel's path."""
    dest.mkdir(parents=True, exist_ok=True)
    wheels = sorted(dest.glob(f"nova-{version}-*.whl"))
    if not wheels:
        done = subprocess.run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                "--no-deps", "--only-binary=:all:", f"nova=={version}", "--dest", str(dest),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )  # fmt: skip
        wheels = sorted(dest.glob(f"nova-{version}-*.whl"))
        if done.returncode != 0 or not wheels:
            raise SchemaSourceUnavailable(
                f"pip download --no-deps nova=={version} failed (exit {done.returncode}):\n"
                f"{done.stderr.strip()[-2000:]}"
            )
    return wheels[0]


def extract(wheel: Path, root: Path) -> Path:
    """Extract the files the schema modules need from ``wheel`` into ``root``."""
    with zipfile.ZipFile(wheel) as archive:
        for name in _NEEDED:
            archive.extract(name, root)
    return root


@dataclass(frozen=True)
class Binding:
    """One ``@validation.response_body_schema(schema.NAME, MIN, MAX)`` of a controller."""

    name: str
    min_version: Version
    max_version: Version | None

    def covers(self, version: Version) -> bool:
        if version < self.min_version:
            return False
        return self.max_version is None or version <= self.max_version

    def label(self) -> str:
        high = "" if self.max_version is None else _fmt(self.max_version)
        return f"{self.name} [{_fmt(self.min_version)}..{high}]"


def _fmt(version: Version) -> str:
    return f"{version[0]}.{version[1]}"


def _parse_version(text: str) -> Version:
    major, minor = text.split(".")
    return int(major), int(minor)


ENDPOINTS = ("index", "detail", "show")
"""The controller methods whose response schemas are read: the two listings and show."""


def controller_bindings(root: Path) -> dict[str, list[Binding]]:
    """``{"index": [...], "detail": [...], "show": [...]}``: the response schemas of the
    listings and of show, with their microversion ranges, read from the controller's
    decorators."""
    tree = ast.parse((root / CONTROLLER).read_text(encoding="utf-8"))
    found: dict[str, list[Binding]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef) or node.name not in ENDPOINTS:
            continue
        for deco in node.decorator_list:
            if not (
                isinstance(deco, ast.Call)
                and isinstance(deco.func, ast.Attribute)
                and deco.func.attr == "response_body_schema"
                and deco.args
                and isinstance(deco.args[0], ast.Attribute)
            ):
                continue
            limits = [a.value for a in deco.args[1:] if isinstance(a, ast.Constant)]
            low = _parse_version(str(limits[0])) if limits else (2, 0)
            high = _parse_version(str(limits[1])) if len(limits) > 1 else None
            found.setdefault(node.name, []).append(Binding(deco.args[0].attr, low, high))
    return found


def binding_for(bindings: list[Binding], version: Version) -> Binding:
    """The one binding covering ``version`` (Nova's ranges do not overlap)."""
    matches = [b for b in bindings if b.covers(version)]
    if len(matches) != 1:
        raise LookupError(f"{len(matches)} response schemas cover {_fmt(version)}: {matches}")
    return matches[0]


def load_listing_schemas(root: Path) -> tuple[dict[str, list[Binding]], dict[str, Schema]]:
    """The bindings of :data:`ENDPOINTS` and every schema they name, imported from the
    extracted wheel."""
    bindings = controller_bindings(root)
    names = sorted({b.name for group in bindings.values() for b in group})
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), str(root), *names],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"importing Nova's schema module failed:\n{done.stderr}")
    schemas: dict[str, Schema] = json.loads(done.stdout)
    return bindings, schemas


def nova_validator(schema: Schema) -> Any:
    """A validator with the semantics of Nova's ``_SchemaValidator`` for ``schema``."""
    import jsonschema
    import rfc3986
    import rfc3986.exceptions
    import rfc3986.validators
    from oslo_utils import timeutils, uuidutils

    checker = jsonschema.FormatChecker()

    @checker.checks("date-time")
    def _datetime(instance: object) -> bool:
        if not isinstance(instance, str):
            return True
        try:
            timeutils.parse_isotime(instance)
        except ValueError:
            return False
        return True

    @checker.checks("uuid")
    def _uuid(instance: object) -> bool:
        return not isinstance(instance, str) or bool(uuidutils.is_uuid_like(instance))

    @checker.checks("uri")
    def _uri(instance: object) -> bool:
        if not isinstance(instance, str):
            return True
        validator = (
            rfc3986.validators.Validator()
            .require_presence_of("scheme", "host")
            .check_validity_of("scheme", "userinfo", "host", "path", "query", "fragment")
        )
        try:
            validator.validate(rfc3986.uri_reference(instance))
        except rfc3986.exceptions.RFC3986Exception:
            return False
        return True

    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=checker)


def describe_errors(validator: Any, body: object, limit: int = 5) -> list[str]:
    """Readable validation errors: the path, the reason and the schema keyword's value.

    Under a ``oneOf`` (the 2.69+ down-cell alternative) the reasons of each branch are
    listed instead of the whole instance."""
    out: list[str] = []
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    for error in errors[:limit]:
        path = "/" + "/".join(str(p) for p in error.absolute_path)
        if error.validator == "oneOf" and error.context:
            reasons = sorted(
                error.context, key=lambda e: (e.relative_schema_path[0], list(e.relative_path))
            )
            lines = [f"{path}: matches no branch of oneOf"]
            lines += [
                f"    branch {e.relative_schema_path[0]}: "
                f"/{'/'.join(str(p) for p in e.relative_path)}: {_short(e.message)} "
                f"(schema {e.validator!r}: {_short(json.dumps(e.validator_value))})"
                for e in reasons[:12]
            ]
            out.append("\n".join(lines))
        else:
            out.append(
                f"{path}: {_short(error.message)} "
                f"(schema {error.validator!r}: {_short(json.dumps(error.validator_value))})"
            )
    return out


def _short(text: str, size: int = 240) -> str:
    return text if len(text) <= size else text[: size - 3] + "..."


# -------------------------------------------------------------------------------------
# The subprocess side: import Nova's schema module from the extracted files.
# -------------------------------------------------------------------------------------


def _literal(path: Path, name: str) -> object:
    """The literal value assigned to the module-level ``name`` in ``path``."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise LookupError(f"{name} not assigned in {path}")


def _import_schemas(root: Path) -> types.ModuleType:
    import importlib

    for package in _PACKAGES:
        module = types.ModuleType(package)
        module.__path__ = [str(root.joinpath(*package.split(".")))]
        sys.modules[package] = module
    i18n = types.ModuleType("nova.i18n")
    i18n._ = lambda message: message  # type: ignore[attr-defined]  # a stand-in module gains Nova's translation function
    sys.modules["nova.i18n"] = i18n
    objects = types.ModuleType("nova.objects")
    objects.__path__ = []
    sys.modules["nova.objects"] = objects
    for name, constant in (("tag", "MAX_TAG_LENGTH"), ("instance", "MAX_TAG_COUNT")):
        module = types.ModuleType(f"nova.objects.{name}")
        setattr(module, constant, _literal(root / "nova" / "objects" / f"{name}.py", constant))
        sys.modules[f"nova.objects.{name}"] = module
        setattr(objects, name, module)
    return importlib.import_module("nova.api.openstack.compute.schemas.servers")


def _main(argv: list[str]) -> int:
    root, names = Path(argv[0]), argv[1:]
    module = _import_schemas(root)
    json.dump({name: getattr(module, name) for name in names}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
