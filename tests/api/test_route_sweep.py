"""Every route of the app is gated: the default is deny, and new routes are swept automatically.

For each route the sweep finds the :class:`~api.security.Gate` among its dependencies (a route
without one fails) and derives what to expect from the gate's permission:

- without credentials → 401;
- with roles lacking the permission (or a non-admin on an admin-only route) → 403;
- project routes, called by a principal whose roles are all in *another* project → 404;
- project routes, called by the first role holding the permission → never 401/403 and no
  denial in the audit log (the table grants what the gate checks).

Two reviewed lists keep the gaps visible: routes that need no permission at all (sign-in only,
:data:`AUTHENTICATED_ONLY`) and write routes gated by a ``…:read`` permission
(:data:`READ_GATED_WRITES`). A new route of either kind fails the sweep until it is added with
the reason it is safe. Routes about one principal (``{principal_id}``) are called by another,
ordinary principal: 404, and nothing of the victim's changes.

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
from governance.identity import ApiKey
from governance.roles import ROLE_PERMISSIONS, Role
from lineage.store import session_scope
from tests.conftest import Issued

PUBLIC_PATHS = HEALTH_PUBLIC_PATHS | DASHBOARD_PUBLIC_PATHS

_OWN_OR_ADMIN = "oneself, or anyone for a global administrator; others get 404 (checked below)"
AUTHENTICATED_ONLY: dict[str, str] = {
    # Routes any signed-in principal may call, with the reason that is safe.
    "GET /api/v1/projects": "lists only the projects where the caller holds a role",
    "GET /api/v1/principals/me": "the caller and its own roles",
    "GET /api/v1/principals/{principal_id}": _OWN_OR_ADMIN,
    "POST /api/v1/principals/{principal_id}/keys": _OWN_OR_ADMIN,
    "GET /api/v1/principals/{principal_id}/keys": _OWN_OR_ADMIN,
    "DELETE /api/v1/principals/{principal_id}/keys/{key_id}": _OWN_OR_ADMIN,
    "GET /": "the dashboard home: the caller's own projects",
    "POST /logout": "ends the caller's own session (CSRF-checked)",
    "GET /openapi.json": "the API's description, the same for everyone signed in",
    "GET /docs": "the viewer of that description",
    "GET /docs/oauth2-redirect": "part of that viewer",
    "GET /redoc": "the other viewer of that description",
}
READ_GATED_WRITES: dict[str, str] = {
    # Write methods that a read permission suffices for, with the reason that is safe.
    "POST /api/v1/projects/{project}/policies/{policy_id}:dry-run": (
        "evaluates a policy against findings and stores nothing"
    ),
    "POST /p/{project}/policies/dry-run": (
        "the dashboard editor's dry-run: evaluates the text as written and stores nothing"
    ),
    "POST /api/v1/projects/{project}/reports/renders": (
        "queues a render of a report the reader may already read; no governance state changes"
    ),
}
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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


def _url(endpoint: Endpoint, project: str, **values: object) -> str:
    """Fill the path template: the project by name, ``values`` by name, others with a sample."""
    types = {p.name: p.field_info.annotation for p in endpoint.dependant.path_params}

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == PROJECT_PATH_PARAM:
            return project
        return str(values[name]) if name in values else _sample(types.get(name))

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, endpoint.path)


@pytest.fixture
def sweep(client: TestClient) -> list[Endpoint]:
    endpoints, ungated = _endpoints(client.app)  # type: ignore[arg-type]
    assert not ungated, f"routes without a permission gate (default deny): {ungated}"
    return endpoints


def test_the_sweep_sees_every_documented_route(
    client: TestClient, sweep: list[Endpoint], make_principal: Callable[..., Issued]
) -> None:
    reader = make_principal()
    documented = {
        f"{method.upper()} {path}"
        for path, operations in client.get("/openapi.json", headers=reader.headers)
        .json()["paths"]
        .items()
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


def test_routes_without_a_permission_are_the_reviewed_ones(sweep: list[Endpoint]) -> None:
    found = {str(e) for e in sweep if e.gate.permission is None and not e.gate.admin_only}
    assert found == set(AUTHENTICATED_ONLY), (
        "a route needing no permission must be added to AUTHENTICATED_ONLY with its reason "
        f"(or gone from it): {found ^ set(AUTHENTICATED_ONLY)}"
    )


def test_write_routes_need_more_than_a_read_permission(sweep: list[Endpoint]) -> None:
    found = {
        str(e)
        for e in sweep
        if e.method in _WRITE_METHODS
        and e.gate.permission is not None
        and e.gate.permission.value.endswith(":read")
    }
    assert found == set(READ_GATED_WRITES), (
        "a write route gated by a read permission must be added to READ_GATED_WRITES with its "
        f"reason (or gone from it): {found ^ set(READ_GATED_WRITES)}"
    )


def _keys_of(engine: Engine, principal_id: uuid.UUID) -> list[tuple[uuid.UUID, object]]:
    with session_scope(engine) as session:
        rows = session.exec(select(ApiKey).where(ApiKey.principal_id == principal_id)).all()
        return sorted((row.id, row.revoked_at) for row in rows)


def test_routes_about_a_principal_refuse_every_other_principal(
    client: TestClient, sweep: list[Endpoint], make_principal: Callable[..., Issued], engine: Engine
) -> None:
    bob = make_principal(role=Role.VIEWER)
    alice = make_principal(role=Role.ADMIN)  # a project admin, not a global one
    admin = make_principal(admin=True)
    ((bob_key, _),) = _keys_of(engine, bob.principal.id)
    about_one = [
        e
        for e in sweep
        if "{principal_id}" in e.path and e.gate.permission is None and not e.gate.admin_only
    ]
    assert len(about_one) >= 4
    wrong = {}
    for endpoint in about_one:
        url = _url(endpoint, "acme", principal_id=bob.principal.id, key_id=bob_key)
        body = {"label": "mine now"} if endpoint.method == "POST" else None
        response = client.request(endpoint.method, url, json=body, headers=alice.headers)
        if response.status_code != 404 or bob.key in response.text:
            wrong[str(endpoint)] = response.status_code
    assert wrong == {}
    assert _keys_of(engine, bob.principal.id) == [(bob_key, None)]
    assert client.get("/api/v1/principals/me", headers=bob.headers).status_code == 200
    for endpoint in about_one:  # the guard admits the people it should
        if endpoint.method == "GET":
            url = _url(endpoint, "acme", principal_id=bob.principal.id, key_id=bob_key)
            assert client.get(url, headers=admin.headers).status_code == 200
            assert client.get(url, headers=bob.headers).status_code == 200
