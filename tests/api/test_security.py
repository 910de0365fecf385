from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, Request
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.app import create_app
from api.security import CurrentProject, require
from api.settings import Settings
from governance.actors import Actor
from governance.audit import AuditEntry
from governance.identity import ApiKey, Principal, revoke_api_key
from governance.permissions import Permission
from governance.roles import Role
from lineage.errors import Unauthenticated
from lineage.store import session_scope
from tests.conftest import Issued, bearer


@pytest.fixture
def gated(settings: Settings, engine: Engine) -> TestClient:
    """An app with one extra project route gated on ``monitor:write``, echoing the actor."""
    app = create_app(settings, engine=engine)
    router = APIRouter()

    @router.post("/api/v1/projects/{project}/probe")
    def probe(
        actor: Annotated[Actor, Depends(require(Permission.MONITOR_WRITE))],
        project: CurrentProject,
    ) -> dict[str, str | None]:
        return {
            "name": actor.name,
            "project": project.name,
            "project_id": str(actor.project_id),
            "request_id": actor.request_id,
        }

    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False)


def _audit(engine: Engine) -> list[AuditEntry]:
    with session_scope(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all())  # type: ignore[arg-type]


def test_no_credentials_is_401_problem(gated: TestClient) -> None:
    response = gated.post("/api/v1/projects/acme/probe")
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]


def test_a_bad_key_is_401_and_audited(gated: TestClient, engine: Engine) -> None:
    response = gated.post("/api/v1/projects/acme/probe", headers=bearer("wdn_abc_nope"))
    assert response.status_code == 401
    entries = [e for e in _audit(engine) if e.action == "auth.failed"]
    assert len(entries) == 1
    assert entries[0].outcome == "denied"
    assert "/api/v1/projects/{project}/probe" in entries[0].reason


def test_the_right_role_passes_and_the_actor_is_scoped(
    gated: TestClient, make_principal: Callable[..., Issued]
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST, project="acme")
    response = gated.post(
        "/api/v1/projects/acme/probe", headers={**scientist.headers, "X-Request-ID": "req-42"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == scientist.principal.name
    assert body["project"] == "acme"
    assert body["project_id"] != "None"
    assert body["request_id"] == "req-42"
    assert response.headers["x-request-id"] == "req-42"


def test_a_role_without_the_permission_is_403_and_audited(
    gated: TestClient, make_principal: Callable[..., Issued], engine: Engine
) -> None:
    viewer = make_principal(role=Role.VIEWER, project="acme")
    response = gated.post("/api/v1/projects/acme/probe", headers=viewer.headers)
    assert response.status_code == 403
    assert "monitor:write" in response.json()["detail"]
    denied = [e for e in _audit(engine) if e.action == "access.denied"]
    assert [e.actor_name for e in denied] == [viewer.principal.name]


def test_another_projects_route_is_404_like_a_missing_project(
    gated: TestClient, make_principal: Callable[..., Issued], make_project: Callable[[str], object]
) -> None:
    make_project("other")
    scientist = make_principal(role=Role.DATA_SCIENTIST, project="acme")
    hidden = gated.post("/api/v1/projects/other/probe", headers=scientist.headers)
    missing = gated.post("/api/v1/projects/nowhere/probe", headers=scientist.headers)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"]


def test_a_revoked_key_is_refused_on_its_next_request(
    gated: TestClient, make_principal: Callable[..., Issued], engine: Engine
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST, project="acme")
    assert gated.post("/api/v1/projects/acme/probe", headers=scientist.headers).status_code == 200
    with session_scope(engine) as session:
        key = session.exec(
            select(ApiKey).where(ApiKey.principal_id == scientist.principal.id)
        ).one()
        revoke_api_key(
            session=session, actor=Actor.system(), principal_id=key.principal_id, key_id=key.id
        )
    refused = gated.post("/api/v1/projects/acme/probe", headers=scientist.headers)
    assert refused.status_code == 401  # no cache between a revocation and the next request
    assert [e.action for e in _audit(engine)][-1] == "auth.failed"


def test_a_global_admin_passes_everywhere(
    gated: TestClient, make_principal: Callable[..., Issued], make_project: Callable[[str], object]
) -> None:
    make_project("other")
    admin = make_principal(admin=True)
    assert gated.post("/api/v1/projects/other/probe", headers=admin.headers).status_code == 200


def test_repeated_bad_keys_are_throttled_but_valid_keys_from_the_address_still_work(
    gated: TestClient, make_principal: Callable[..., Issued], engine: Engine
) -> None:
    settings = gated.app.state.settings  # type: ignore[attr-defined]
    gated.app.state.settings = settings.model_copy(update={"auth_max_failures": 3})  # type: ignore[attr-defined]
    good = make_principal(role=Role.DATA_SCIENTIST)
    for _ in range(3):
        assert (
            gated.post("/api/v1/projects/acme/probe", headers=bearer("wdn_x_y")).status_code == 401
        )
    limited = gated.post("/api/v1/projects/acme/probe", headers=bearer("wdn_x_z"))
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    audited = len(_audit(engine))
    # The attacker keeps hammering; the log stops growing and the valid key behind the same
    # address (one proxy, one NAT) keeps working.
    for _ in range(5):
        assert (
            gated.post("/api/v1/projects/acme/probe", headers=bearer("wdn_a_b")).status_code == 429
        )
    assert len(_audit(engine)) == audited
    assert gated.post("/api/v1/projects/acme/probe", headers=good.headers).status_code == 200


def test_an_app_can_plug_in_another_credential_reader(
    gated: TestClient, make_principal: Callable[..., Issued], engine: Engine
) -> None:
    scientist = make_principal(role=Role.DATA_SCIENTIST)

    def cookie_reader(request: Request, session: Session) -> Principal | None:
        name = request.cookies.get("test_session")
        if name is None:
            return None
        found = session.exec(select(Principal).where(Principal.name == name)).first()
        if found is None:
            raise Unauthenticated("the session is unknown; sign in again")
        return found

    gated.app.state.credential_readers = [cookie_reader]  # type: ignore[attr-defined]
    gated.cookies.set("test_session", scientist.principal.name)
    assert gated.post("/api/v1/projects/acme/probe").status_code == 200
    gated.cookies.set("test_session", "forged")
    assert gated.post("/api/v1/projects/acme/probe").status_code == 401
    assert [e.action for e in _audit(engine)][-1] == "auth.failed"
