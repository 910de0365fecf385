"""The identity routes over HTTP: projects, grants, principals, keys and approvals."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from governance.audit import AuditEntry
from governance.roles import Role
from lineage.projects import Project
from lineage.store import session_scope
from tests.conftest import Issued, bearer

MakePrincipal = Callable[..., Issued]


def _audit(engine: Engine, action: str) -> list[AuditEntry]:
    with session_scope(engine) as session:
        query = select(AuditEntry).where(AuditEntry.action == action)
        return list(session.exec(query.order_by(col(AuditEntry.seq))).all())


def _project_count(engine: Engine) -> int:
    with session_scope(engine) as session:
        return len(session.exec(select(Project)).all())


def test_only_global_admins_create_projects_and_bad_bodies_change_nothing(
    client: TestClient, make_principal: MakePrincipal, engine: Engine
) -> None:
    admin = make_principal(admin=True)
    project_admin = make_principal(role=Role.ADMIN, project="acme")
    before = _project_count(engine)
    refused = client.post("/api/v1/projects", json={"name": "new"}, headers=project_admin.headers)
    assert refused.status_code == 403
    extra = client.post(
        "/api/v1/projects",
        json={"name": "new", "id": str(uuid.uuid4())},
        headers=admin.headers,
    )
    assert extra.status_code == 422
    assert extra.json()["field"] == "id"
    bad_name = client.post("/api/v1/projects", json={"name": "Bad Name"}, headers=admin.headers)
    assert bad_name.status_code == 422
    assert bad_name.json()["field"] == "name"
    assert _project_count(engine) == before

    created = client.post("/api/v1/projects", json={"name": "new"}, headers=admin.headers)
    assert created.status_code == 201
    assert _audit(engine, "project.create")[-1].actor_name == admin.principal.name
    duplicate = client.post("/api/v1/projects", json={"name": "new"}, headers=admin.headers)
    assert duplicate.status_code == 409


def test_projects_list_only_what_the_caller_may_see(
    client: TestClient, make_principal: MakePrincipal, make_project: Callable[[str], Project]
) -> None:
    make_project("other")
    viewer = make_principal(role=Role.VIEWER, project="acme")
    nobody = make_principal()
    admin = make_principal(admin=True)

    def names(who: Issued) -> list[str]:
        return [p["name"] for p in client.get("/api/v1/projects", headers=who.headers).json()]

    assert names(viewer) == ["acme"]
    assert names(nobody) == []
    assert names(admin) == ["acme", "other"]


def test_project_admins_grant_roles_but_never_to_themselves(
    client: TestClient, make_principal: MakePrincipal, engine: Engine
) -> None:
    project_admin = make_principal(role=Role.ADMIN, project="acme")
    newcomer = make_principal()
    url = "/api/v1/projects/acme/grants"
    assert client.get("/api/v1/projects/acme", headers=newcomer.headers).status_code == 404

    granted = client.post(
        url,
        json={"principal_id": str(newcomer.principal.id), "role": "viewer"},
        headers=project_admin.headers,
    )
    assert granted.status_code == 201, granted.text
    assert granted.json()["granted_by_id"] == str(project_admin.principal.id)
    assert client.get("/api/v1/projects/acme", headers=newcomer.headers).status_code == 200

    itself = client.post(
        url,
        json={"principal_id": str(project_admin.principal.id), "role": "auditor"},
        headers=project_admin.headers,
    )
    assert itself.status_code == 403
    assert itself.json()["title"] == "Separation of duties"
    denied = _audit(engine, "role.grant")[-1]
    assert denied.outcome == "denied"
    assert denied.actor_name == project_admin.principal.name

    forged = client.post(
        url,
        json={
            "principal_id": str(newcomer.principal.id),
            "role": "auditor",
            "granted_by_id": str(uuid.uuid4()),
        },
        headers=project_admin.headers,
    )
    assert forged.status_code == 422
    assert forged.json()["field"] == "granted_by_id"

    grant_id = granted.json()["id"]
    revoked = client.delete(f"{url}/{grant_id}", headers=project_admin.headers)
    assert revoked.status_code == 204
    assert client.get("/api/v1/projects/acme", headers=newcomer.headers).status_code == 404


def test_keys_are_shown_once_listed_by_prefix_and_revocable(
    client: TestClient, make_principal: MakePrincipal
) -> None:
    admin = make_principal(admin=True)
    created = client.post(
        "/api/v1/principals", json={"name": "ingest", "kind": "service"}, headers=admin.headers
    )
    assert created.status_code == 201, created.text
    robot = created.json()
    assert robot["kind"] == "service"
    assert robot["can_sign_in"] is False

    keys_url = f"/api/v1/principals/{robot['id']}/keys"
    issued = client.post(keys_url, json={"label": "airflow"}, headers=admin.headers)
    assert issued.status_code == 201
    secret = issued.json()["key"]
    assert secret.startswith(issued.json()["prefix"] + "_")

    listed = client.get(keys_url, headers=bearer(secret))
    assert listed.status_code == 200
    assert "key" not in listed.json()[0]
    assert secret not in listed.text

    me = client.get("/api/v1/principals/me", headers=bearer(secret))
    assert me.json()["principal"]["name"] == "ingest"

    revoked = client.delete(f"{keys_url}/{issued.json()['id']}", headers=admin.headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert client.get("/api/v1/principals/me", headers=bearer(secret)).status_code == 401


def test_others_keys_are_invisible_and_service_accounts_get_no_password(
    client: TestClient, make_principal: MakePrincipal
) -> None:
    admin = make_principal(admin=True)
    alice, bob = make_principal(), make_principal()
    assert (
        client.get(f"/api/v1/principals/{bob.principal.id}/keys", headers=alice.headers).status_code
        == 404
    )
    assert client.get("/api/v1/principals", headers=alice.headers).status_code == 403
    refused = client.post(
        "/api/v1/principals",
        json={"name": "robot", "kind": "service", "password": "a long enough password"},
        headers=admin.headers,
    )
    assert refused.status_code == 422
    assert refused.json()["field"] == "kind"


def test_an_approval_over_http_with_separation_of_duties(
    client: TestClient, make_principal: MakePrincipal, engine: Engine
) -> None:
    trainer = make_principal(role=[Role.DATA_SCIENTIST, Role.APPROVER])
    requester = make_principal(role=[Role.DATA_SCIENTIST, Role.APPROVER])
    approver = make_principal(role=Role.APPROVER)
    robot = make_principal(role=Role.ADMIN, service=True)
    base = "/api/v1/projects/acme/approvals"
    asked = client.post(
        base,
        json={
            "action": "promote",
            "target_kind": "model_version",
            "target_id": "42",
            "reason": "beats the champion",
            "barred_principal_ids": [str(trainer.principal.id)],
        },
        headers=requester.headers,
    )
    assert asked.status_code == 201, asked.text
    approval = asked.json()
    assert approval["status"] == "pending"
    assert approval["requested_by_id"] == str(requester.principal.id)

    for barred in (requester, trainer, robot):
        refused = client.post(
            f"{base}/{approval['id']}/approve", json={"reason": "ok"}, headers=barred.headers
        )
        assert refused.status_code == 403, barred.principal.name
        assert refused.json()["title"] == "Separation of duties"
    denials = [e for e in _audit(engine, "approval.approve") if e.outcome == "denied"]
    assert len(denials) == 3

    mine = client.get(f"{base}?for_me=true", headers=approver.headers).json()
    assert [a["id"] for a in mine] == [approval["id"]]
    assert client.get(f"{base}?for_me=true", headers=trainer.headers).json() == []

    no_reason = client.post(f"{base}/{approval['id']}/approve", json={}, headers=approver.headers)
    assert no_reason.status_code == 422
    assert no_reason.json()["field"] == "reason"

    approved = client.post(
        f"{base}/{approval['id']}/approve",
        json={"reason": "metrics checked"},
        headers=approver.headers,
    )
    assert approved.status_code == 200
    assert approved.json()["status"] == "approved"
    assert approved.json()["decisions"][0]["reason"] == "metrics checked"


def test_n_approvers_rule_over_http_and_other_projects_requests_are_hidden(
    client: TestClient, make_principal: MakePrincipal
) -> None:
    admin = make_principal(role=Role.ADMIN)
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    first, second = make_principal(role=Role.APPROVER), make_principal(role=Role.APPROVER)
    outsider = make_principal(role=Role.APPROVER, project="other")
    rule = client.put(
        "/api/v1/projects/acme/approval-rules/rollback",
        json={"required_approvers": 2},
        headers=admin.headers,
    )
    assert rule.status_code == 200
    assert rule.json()["rollback"] == 2
    asked = client.post(
        "/api/v1/projects/acme/approvals",
        json={
            "action": "rollback",
            "target_kind": "deployment",
            "target_id": "prod",
            "reason": "r",
        },
        headers=scientist.headers,
    ).json()
    approve = f"/api/v1/projects/acme/approvals/{asked['id']}/approve"
    assert client.post(approve, json={"reason": "a"}, headers=first.headers).json()["status"] == (
        "pending"
    )
    elsewhere = f"/api/v1/projects/other/approvals/{asked['id']}/approve"
    assert client.post(elsewhere, json={"reason": "x"}, headers=outsider.headers).status_code == 404
    assert client.post(approve, json={"reason": "b"}, headers=second.headers).json()["status"] == (
        "approved"
    )


def test_a_disabled_principal_is_locked_out_but_the_last_admin_stays(
    client: TestClient, make_principal: MakePrincipal
) -> None:
    admin = make_principal(admin=True)
    scientist = make_principal(role=Role.DATA_SCIENTIST)
    assert client.get("/api/v1/projects/acme", headers=scientist.headers).status_code == 200
    disabled = client.post(
        f"/api/v1/principals/{scientist.principal.id}/disable", headers=admin.headers
    )
    assert disabled.status_code == 200
    assert disabled.json()["disabled"] is True
    assert client.get("/api/v1/projects/acme", headers=scientist.headers).status_code == 401
    last = client.post(f"/api/v1/principals/{admin.principal.id}/disable", headers=admin.headers)
    assert last.status_code == 409
    assert "last active administrator" in last.json()["detail"]


def test_no_one_mints_or_revokes_another_principals_keys(
    client: TestClient, make_principal: MakePrincipal, engine: Engine
) -> None:
    admin = make_principal(admin=True)
    mallory = make_principal(role=Role.ADMIN)  # admin of project acme, not a global admin
    keys_url = f"/api/v1/principals/{admin.principal.id}/keys"
    listed = client.get(keys_url, headers=admin.headers).json()
    created_before = len(_audit(engine, "api_key.create"))
    minted = client.post(keys_url, json={"label": "backdoor"}, headers=mallory.headers)
    assert minted.status_code == 404
    assert "key" not in minted.json()
    revoked = client.delete(f"{keys_url}/{listed[0]['id']}", headers=mallory.headers)
    assert revoked.status_code == 404
    assert client.get(keys_url, headers=admin.headers).json() == listed
    assert client.get("/api/v1/principals/me", headers=admin.headers).status_code == 200
    assert len(_audit(engine, "api_key.create")) == created_before
