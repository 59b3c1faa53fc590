"""What serves everything cellgate does not, behind HAProxy in the routing test: the real
nova-api, or a stand-in while it cannot run here.

- :class:`RealNovaApi`: PyPI's nova-api 34 (``scripts/nova_api.py``: its venv, its
  ``NovaApi`` work directory and gunicorn, its empty Neutron), with Keystone's
  ``authtoken`` middleware left in Nova's paste pipeline and a ``[keystone_authtoken]``
  naming the test's Keystone, so the clients' tokens are validated there as in a cloud.
  Its API database and its own ``[database]`` hold Nova's whole schema (Nova's DDL, from
  its models: ``scripts/nova_conformance.py``).
- :class:`StandIn`: a small HTTP server answering version discovery with cellgate's own
  documents, ``GET /v2.1/flavors[/detail]`` with no flavors and anything else with a
  Nova-shaped 400; it records every request it gets.

:func:`choose` picks one: ``CELLGATE_ROUTING_NOVA`` = ``nova-api``, ``stand-in`` or
``auto`` (default: the real one when ``scripts/nova_api.py`` is there — in this
repository, or in the directory ``CELLGATE_NOVA_API_SCRIPTS`` names — else the stand-in).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Literal, Protocol

from gateway.versions import version_document, versions_document

__all__ = ["NovaBackend", "RealNovaApi", "StandIn", "choose", "nova_api_module"]

ROOT = Path(__file__).resolve().parents[2]
Kind = Literal["nova-api", "stand-in"]
_FLAVORS = ("/v2.1/flavors", "/v2.1/flavors/detail")


class NovaBackend(Protocol):
    kind: Kind

    @property
    def address(self) -> tuple[str, int]: ...

    def close(self) -> None: ...


def nova_api_module() -> ModuleType | None:
    """``scripts/nova_api.py`` imported (this repository's, else from the directory named
    by ``CELLGATE_NOVA_API_SCRIPTS``), or ``None``."""
    if (ROOT / "scripts" / "nova_api.py").exists():
        return importlib.import_module("nova_api")  # scripts/ is on pytest's pythonpath
    directory = os.environ.get("CELLGATE_NOVA_API_SCRIPTS")
    if directory is None or not (Path(directory) / "nova_api.py").exists():
        return None
    # Another checkout's scripts: nova_api imports its siblings, so the directory itself
    # must be importable (the one path edit the tests keep, for this opt-in fallback).
    if directory not in sys.path:
        sys.path.insert(0, directory)
    return importlib.import_module("nova_api")


def choose() -> Kind:
    wanted = os.environ.get("CELLGATE_ROUTING_NOVA", "auto")
    if wanted in ("nova-api", "stand-in"):
        return wanted  # type: ignore[return-value]  # checked against the Literal's values just above
    return "nova-api" if nova_api_module() is not None else "stand-in"


_AUTHTOKEN = """
[keystone_authtoken]
auth_type = password
auth_url = {auth_url}
www_authenticate_uri = {auth_url}
username = nova
password = {password}
project_name = service
user_domain_name = Default
project_domain_name = Default
"""


class RealNovaApi:
    """nova-api 34 with Keystone's ``authtoken``; :meth:`start` returns once it answers."""

    kind: Kind = "nova-api"

    def __init__(self, module: ModuleType, port: int) -> None:
        self.module = module
        self.port = port
        self.work = Path(tempfile.mkdtemp(prefix="cellgate-routing-nova-"))
        self.proc: object = None
        self.neutron: ThreadingHTTPServer | None = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def venv(self) -> Path:
        venv: Path = self.module.install(os.environ)
        return venv

    def start(self, api_db: str, database: str, auth_url: str, password: str) -> RealNovaApi:
        self.neutron = self.module.serve_empty_neutron()
        neutron_url = f"http://127.0.0.1:{self.neutron.server_address[1]}"
        nova = self.module.NovaApi(self.venv(), self.work, self.port, 1)
        nova.configure(api_db, database, neutron_url)
        # Nova's own pipeline, authtoken included: tokens are validated as in a cloud.
        paste = (nova.venv / "etc" / "nova" / "api-paste.ini").read_text()
        (self.work / "api-paste.ini").write_text(paste)
        with (self.work / "nova.conf").open("a") as conf:
            conf.write(_AUTHTOKEN.format(auth_url=auth_url, password=password))
        self.proc = nova.serve()
        return self

    def close(self) -> None:
        if self.proc is not None:
            self.module.stop(self.proc)
        if self.neutron is not None:
            self.neutron.shutdown()
            self.neutron.server_close()


class _StandInHandler(BaseHTTPRequestHandler):
    server: _StandInServer

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        self.server.seen.append((self.command, self.path))
        path = self.path.partition("?")[0]
        base = f"http://{self.headers.get('Host', '127.0.0.1')}"
        if self.command == "GET" and path == "/":
            self._answer(200, versions_document(base))
        elif self.command == "GET" and path in ("/v2.1", "/v2.1/"):
            self._answer(200, version_document(base))
        elif self.command == "GET" and path.rstrip("/") in (
            "/v2.1/flavors",
            "/v2.1/flavors/detail",
        ):
            self._answer(200, {"flavors": []})
        else:
            message = f"the stand-in for nova-api got {self.command} {path}"
            self._answer(400, {"badRequest": {"code": 400, "message": message}})

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    def log_message(self, format: str, *args: object) -> None:
        pass


class _StandInServer(ThreadingHTTPServer):
    seen: list[tuple[str, str]]


class StandIn:
    """The stand-in, served by a daemon thread until :meth:`close`."""

    kind: Kind = "stand-in"

    def __init__(self) -> None:
        self.server = _StandInServer(("127.0.0.1", 0), _StandInHandler)
        self.server.seen = []
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", int(self.server.server_address[1]))

    @property
    def seen(self) -> list[tuple[str, str]]:
        return self.server.seen

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
