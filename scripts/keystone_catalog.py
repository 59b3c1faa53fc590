"""The users, projects and compute endpoint ``scripts/keystone serve`` adds to a freshly
bootstrapped Keystone, through its v3 REST API (stdlib only)."""

from __future__ import annotations

import json
import urllib.request

__all__ = ["REGION", "provision"]

REGION = "RegionOne"
HTTP_TIMEOUT_S = 10.0


class _Api:
    """Just enough of Keystone's v3 REST API, as ``admin`` in the ``admin`` project."""

    def __init__(self, url: str, password: str) -> None:
        self.url = url
        auth = {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"id": "default"}, "password": password}
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
        self.token = ""
        request = self._request("POST", "/auth/tokens?nocatalog", {"auth": auth})
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            self.token = response.headers["X-Subject-Token"]

    def _request(
        self, method: str, path: str, body: dict[str, object] | None
    ) -> urllib.request.Request:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "X-Auth-Token": self.token}
        return urllib.request.Request(self.url + path, data, headers, method=method)

    def call(self, method: str, path: str, body: dict[str, object] | None = None) -> object:
        with urllib.request.urlopen(
            self._request(method, path, body), timeout=HTTP_TIMEOUT_S
        ) as response:
            raw = response.read()
        return json.loads(raw) if raw else None

    def create(self, collection: str, kind: str, fields: dict[str, object]) -> str:
        reply = self.call("POST", f"/{collection}", {kind: fields})
        assert isinstance(reply, dict)
        return str(reply[kind]["id"])

    def find(self, collection: str, name: str) -> str:
        reply = self.call("GET", f"/{collection}?name={name}")
        assert isinstance(reply, dict)
        [found] = reply[collection]
        return str(found["id"])


def provision(url: str, password: str, compute_url: str) -> dict[str, dict[str, str]]:
    """The ``service`` and ``demo`` projects and users and the compute endpoint."""
    api = _Api(url, password)
    roles = {name: api.find("roles", name) for name in ("admin", "service", "member")}
    projects = {"admin": api.find("projects", "admin")}
    users = {"admin": api.find("users", "admin")}
    grants = {"service": ("nova", ["admin", "service"]), "demo": ("demo", ["member"])}
    for project, (user, granted) in grants.items():
        projects[project] = api.create("projects", "project", {"name": project})
        users[user] = api.create(
            "users",
            "user",
            {"name": user, "password": password, "default_project_id": projects[project]},
        )
        for role in granted:
            path = f"/projects/{projects[project]}/users/{users[user]}/roles/{roles[role]}"
            api.call("PUT", path)
    service = api.create("services", "service", {"type": "compute", "name": "nova"})
    endpoint = {"service_id": service, "interface": "public", "url": compute_url}
    api.create("endpoints", "endpoint", {**endpoint, "region_id": REGION})
    return {"projects": projects, "users": users}
