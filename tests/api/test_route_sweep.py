"""Every route of the app is gated: the default is deny, and new routes are swept automatically.

For each route the sweep finds the :class:`~api.security.Gate` among its dependencies (a route
without one fails) and derives what to expect from the gate's permission:

- without credentials → 401;
- with roles lacking the permission (or a non-admin on an admin-only route) → 403;
- project routes, called by a principal whose roles are all in *another* project → 404;
- project routes, called by the first role holding the permission → never 401/403 and no
  denial in the audit log (the table grants what the gate checks).

Only :data:`api.routes.health.PUBLIC_PATHS` and the dashboard's sign-in page
(:data:`api.dashboard.PUBLIC_PATHS`) are exempt.
"""

from __future__ import annotations

import enum
import inspect
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.dashboard import PUBLIC_PATHS as DASHBOARD_PUBLIC_PATHS
from api.routes.health import PUBLIC_PATHS as HEALTH_PUBLIC_PATHS
from api.security import PROJECT_PATH_PARAM, Gate
from governance.audit import AuditEntry
from governance.roles import ROLE_PERMISSIONS, Role
from lineage.store import session_scope
from tests.conftest import Issued

PUBLIC_PATHS = HEALTH_PUBLIC_PATHS | DASHBOARD_PUBLIC_PATHS


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    dependant: Dependant
    gate: Gate

    @property
    def in_project(self) -> bool:
        return "{" + PROJECT_PATH_PARAM + "}" in self.path

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _gates(dependant: Dependant) -> Iterator[Gate]:
    for sub in dependant.dependencies:
        if isinstance(sub.call, Gate):
            yield sub.call
        yield from _gates(sub)


def _endpoints(app: FastAPI) -> tuple[list[Endpoint], list[str]]:
    endpoints, ungated = [], []
    for route in iter_route_contexts(app.routes):
        if not isinstance(route.original_route, APIRoute) or route.path in PUBLIC_PATHS:
            continue
        path, dependant = str(route.path), route.dependant
        gates = list(_gates(dependant))
        for method in sorted((route.methods or set()) - {"HEAD", "OPTIONS"}):
            if not gates:
                ungated.append(f"{method} {path}")
            else:
                endpoints.append(Endpoint(method, path, dependant, gates[0]))
    return endpoints, ungated


def _sample(annotation: Any) -> str:
    if annotation is uuid.UUID:
        return str(uuid.uuid4())
    if annotation is int:
        return "1"
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return str(next(iter(annotation)).value)
    return "x"


def _url(endpoint: Endpoint, project: str) -> str:
    """Fill the path template: the project by name, other parameters with a valid sample."""
    types = {p.name: p.field_info.annotation for p in endpoint.dependant.path_params}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return project if name == PROJECT_PATH_PARAM else _sample(types.get(name))

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, endpoint.path)


@pytest.fixture
def sweep(client: TestClient) -> list[Endpoint]:
    endpoints, ungated = _endpoints(client.app)  # type: ignore[arg-type]
    assert not ungated, f"routes without a permission gate (default deny): {ungated}"
    return endpoints


def test_the_sweep_sees_every_documented_route(client: TestClient, sweep: list[Endpoint]) -> None:
    documented = {
        f"{method.upper()} {path}"
        for path, operations in client.get("/openapi.json").json()["paths"].items()
        for method in operations
        if path not in PUBLIC_PATHS
    }
    assert documented <= {str(e) for e in sweep}
    assert {"POST /api/v1/projects", "POST /api/v1/projects/{project}/approvals"} <= documented


def test_every_route_refuses_requests_without_credentials(
    client: TestClient, sweep: list[Endpoint], make_project: Callable[[str], object]
) -> None:
    make_project("acme")
    wrong = {}
    for endpoint in sweep:
        response = client.request(endpoint.method, _url(endpoint, "acme"))
        if response.status_code != 401:
            wrong[str(endpoint)] = response.status_code
    assert wrong == {}


@pytest.mark.slow
def test_every_route_refuses_roles_lacking_its_permission(
    client: TestClient, sweep: list[Endpoint], make_principal: Callable[..., Issued]
) -> None:
    lacking: dict[Role, Issued] = {
        role: make_principal(role=role, project="acme") for role in Role if role != Role.ADMIN
    }
    project_admin = make_principal(role=Role.ADMIN, project="acme")
    wrong, checked = {}, 0
    for endpoint in sweep:
        gate = endpoint.gate
        if gate.admin_only:
            callers = [project_admin]
        elif gate.permission is None:
            continue
        else:
            callers = [
                issued
                for role, issued in lacking.items()
                if gate.permission not in ROLE_PERMISSIONS[role]
            ]
        for caller in callers:
            checked += 1
            response = client.request(
                endpoint.method, _url(endpoint, "acme"), headers=caller.headers
            )
            if response.status_code != 403:
                wrong[f"{endpoint} as {caller.principal.name}"] = response.status_code
    assert wrong == {}, "\n".join(f"{k}: {v}" for k, v in wrong.items())
    assert checked > 0


@pytest.mark.slow
def test_project_routes_hide_other_projects(
    client: TestClient, sweep: list[Endpoint], make_principal: Callable[..., Issued]
) -> None:
    make_principal(role=Role.VIEWER, project="acme")
    outsider = make_principal(role=Role.ADMIN, project="other")
    wrong = {}
    project_routes = [e for e in sweep if e.in_project and not e.gate.admin_only]
    for endpoint in project_routes:
        for project in ("acme", "no-such-project"):
            response = client.request(
                endpoint.method, _url(endpoint, project), headers=outsider.headers
            )
            if response.status_code != 404:
                wrong[f"{endpoint} in {project}"] = response.status_code
    assert wrong == {}
    assert project_routes


def test_a_route_without_a_gate_is_caught(client: TestClient) -> None:
    app: FastAPI = client.app  # type: ignore[assignment]

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {"leak": "yes"}

    _, ungated = _endpoints(app)
    assert ungated == ["GET /api/v1/forgotten"]


def test_every_project_route_admits_a_role_holding_its_permission(
    client: TestClient, sweep: list[Endpoint], make_principal: Callable[..., Issued], engine: Engine
) -> None:
    holders = {role: make_principal(role=role, project="acme") for role in Role}
    wrong = {}
    for endpoint in sweep:
        permission = endpoint.gate.permission
        if not endpoint.in_project or endpoint.gate.admin_only or permission is None:
            continue
        role = next(r for r in Role if permission in ROLE_PERMISSIONS[r])
        before = _denials(engine)
        response = client.request(
            endpoint.method, _url(endpoint, "acme"), headers=holders[role].headers
        )
        if response.status_code in (401, 403) or _denials(engine) != before:
            wrong[f"{endpoint} as {role}"] = response.status_code
    assert wrong == {}


def _denials(engine: Engine) -> int:
    with session_scope(engine) as session:
        query = (
            select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.outcome == "denied")
        )
        return session.exec(query).one()
