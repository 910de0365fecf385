from __future__ import annotations

import json
import stat
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from api.app import create_app
from api.settings import Settings
from governance.actors import Actor
from governance.audit import append
from governance.audit_verify import verify_export
from governance.roles import Role
from governance.signing import load_public_key
from lineage.projects import Project
from lineage.store import session_scope
from tests.conftest import Issued
from tests.governance.tamper import drop_triggers, truncate

Make = Callable[..., Issued]


def _act(engine: Engine, project: Project | None, action: str, count: int = 1) -> None:
    actor = Actor.system()
    with session_scope(engine) as session:
        for number in range(count):
            append(
                session=session,
                actor=actor.in_project(project.id) if project else actor,
                action=action,
                target=f"thing:{number}",
            )


@pytest.fixture
def admin(make_principal: Make) -> Issued:
    return make_principal(admin=True, name="root")


def test_reading_needs_audit_read(client: TestClient, make_principal: Make) -> None:
    viewer = make_principal(role=Role.VIEWER, project="acme")
    for path in ("", "/export", "/verify", "/public-key", "/checkpoints"):
        assert client.get(f"/api/v1/audit{path}").status_code == 401
        denied = client.get(f"/api/v1/audit{path}", headers=viewer.headers)
        assert denied.status_code == 403, path
        assert "audit:read" in denied.json()["detail"]


def test_an_admin_lists_filters_and_pages(
    client: TestClient, engine: Engine, admin: Issued, make_project: Callable[[str], Project]
) -> None:
    acme, other = make_project("acme"), make_project("other")
    _act(engine, acme, "model.promote", count=3)
    _act(engine, other, "policy.change")
    listed = client.get("/api/v1/audit", params={"action": "model.promote"}, headers=admin.headers)
    assert listed.status_code == 200, listed.text
    entries = listed.json()["entries"]
    assert [e["target"] for e in entries] == ["thing:0", "thing:1", "thing:2"]
    assert all(e["project_id"] == str(acme.id) for e in entries)
    assert entries[0]["detail"] == {}
    assert entries[1]["prev_hash"] == entries[0]["hash"]

    by_project = client.get("/api/v1/audit", params={"project": "other"}, headers=admin.headers)
    assert [e["action"] for e in by_project.json()["entries"]] == ["policy.change"]

    first = client.get(
        "/api/v1/audit", params={"action": "model.promote", "limit": 2}, headers=admin.headers
    ).json()
    assert len(first["entries"]) == 2
    rest = client.get(
        "/api/v1/audit",
        params={"action": "model.promote", "limit": 2, "after": first["next_after"]},
        headers=admin.headers,
    ).json()
    assert [e["target"] for e in rest["entries"]] == ["thing:2"]
    assert rest["next_after"] is None

    by_actor = client.get("/api/v1/audit", params={"actor": "warden"}, headers=admin.headers)
    assert {e["actor_name"] for e in by_actor.json()["entries"]} == {"warden"}
    future = client.get(
        "/api/v1/audit", params={"since": "2999-01-01T00:00:00Z"}, headers=admin.headers
    )
    assert future.json()["entries"] == []


def test_naive_times_and_bad_limits_are_refused(client: TestClient, admin: Issued) -> None:
    naive = client.get(
        "/api/v1/audit", params={"since": "2026-01-01T00:00:00"}, headers=admin.headers
    )
    assert naive.status_code == 422
    assert naive.json()["field"] == "since"
    too_many = client.get("/api/v1/audit", params={"limit": 5000}, headers=admin.headers)
    assert too_many.status_code == 422
    assert too_many.json()["field"] == "limit"


def test_an_auditor_sees_only_their_projects(
    client: TestClient, engine: Engine, make_principal: Make, make_project: Callable[[str], Project]
) -> None:
    auditor = make_principal(role=Role.AUDITOR, project="acme")
    acme, other = make_project("acme"), make_project("other")
    _act(engine, acme, "model.promote")
    _act(engine, other, "model.promote")
    _act(engine, None, "principal.create")
    seen = client.get("/api/v1/audit", headers=auditor.headers).json()["entries"]
    assert seen
    assert {e["project_id"] for e in seen} == {str(acme.id)}
    hidden = client.get("/api/v1/audit", params={"project": "other"}, headers=auditor.headers)
    assert hidden.status_code == 404
    assert hidden.json()["field"] == "project"


def test_export_verifies_offline_and_is_itself_audited(
    client: TestClient, engine: Engine, admin: Issued, make_project: Callable[[str], Project]
) -> None:
    _act(engine, make_project("acme"), "model.promote", count=5)
    exported = client.get("/api/v1/audit/export", headers=admin.headers)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("application/x-ndjson")
    lines = exported.text.splitlines()
    header = json.loads(lines[0])
    assert header["format"] == "warden.audit.export/v1"
    assert sum(json.loads(line)["record"] == "entry" for line in lines) == header["head_seq"]

    pem = client.get("/api/v1/audit/public-key", headers=admin.headers)
    assert pem.status_code == 200
    assert pem.text.startswith("-----BEGIN PUBLIC KEY-----")
    report = verify_export(lines, public_key=load_public_key(pem.text))
    assert report.intact, report.problem
    assert report.head_seq == header["head_seq"]

    audited = client.get(
        "/api/v1/audit", params={"action": "audit.export"}, headers=admin.headers
    ).json()["entries"]
    assert [e["actor_name"] for e in audited] == ["root"]
    assert audited[0]["detail"] == {"head_seq": header["head_seq"], "redacted": False}


def test_an_auditors_export_redacts_other_projects_but_still_verifies(
    client: TestClient, engine: Engine, make_principal: Make, make_project: Callable[[str], Project]
) -> None:
    auditor = make_principal(role=Role.AUDITOR, project="acme")
    _act(engine, make_project("acme"), "model.promote")
    _act(engine, make_project("other"), "secret.thing")
    lines = client.get("/api/v1/audit/export", headers=auditor.headers).text.splitlines()
    records = [json.loads(line) for line in lines]
    assert "secret.thing" not in "".join(lines)
    assert any(r["record"] == "redacted" for r in records)
    assert any(r["record"] == "entry" and r["action"] == "model.promote" for r in records)
    report = verify_export(lines, public_key=None)
    assert report.intact, report.problem
    assert report.redacted > 0


def test_verify_reports_intact_then_the_tampered_seq(
    client: TestClient, engine: Engine, admin: Issued, make_project: Callable[[str], Project]
) -> None:
    _act(engine, make_project("acme"), "model.promote", count=4)
    intact = client.get("/api/v1/audit/verify", headers=admin.headers).json()
    assert intact["intact"] is True
    assert intact["first_broken_seq"] is None
    target_seq = intact["head_seq"] - 1
    drop_triggers(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE governance_audit_entry SET reason = 'all fine' WHERE seq = :seq"),
            {"seq": target_seq},
        )
    broken = client.get("/api/v1/audit/verify", headers=admin.headers).json()
    assert broken["intact"] is False
    assert broken["first_broken_seq"] == target_seq
    assert "changed" in broken["problem"]


def test_checkpoints_on_demand_are_admin_only_and_verify(
    client: TestClient,
    engine: Engine,
    admin: Issued,
    make_principal: Make,
    make_project: Callable[[str], Project],
) -> None:
    auditor = make_principal(role=Role.AUDITOR, project="acme")
    _act(engine, make_project("acme"), "model.promote")
    assert client.post("/api/v1/audit/checkpoints", headers=auditor.headers).status_code == 403
    made = client.post("/api/v1/audit/checkpoints", headers=admin.headers)
    assert made.status_code == 201, made.text
    again = client.post("/api/v1/audit/checkpoints", headers=admin.headers)
    assert again.json()["seq"] == made.json()["seq"]
    report = client.get("/api/v1/audit/verify", headers=auditor.headers).json()
    assert report["intact"] is True
    assert report["checkpoints_verified"] >= 1
    listed = client.get("/api/v1/audit/checkpoints", headers=auditor.headers)
    assert listed.status_code == 200
    assert [c["seq"] for c in listed.json()] == [made.json()["seq"]]
    after = client.get(
        "/api/v1/audit/checkpoints", params={"after": made.json()["seq"]}, headers=auditor.headers
    )
    assert after.json() == []


def test_the_signing_key_is_created_once_with_mode_0600(
    client: TestClient, settings: Settings, admin: Issued
) -> None:
    path = settings.resolved_audit_key_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    first = client.get("/api/v1/audit/public-key", headers=admin.headers)
    assert first.headers["x-key-id"]
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_verify_compares_with_the_anchor_and_finds_a_truncated_tail(
    settings: Settings,
    engine: Engine,
    make_principal: Make,
    make_project: Callable[[str], Project],
) -> None:
    tight = settings.model_copy(update={"audit_checkpoint_every": 3})
    with TestClient(create_app(tight, engine=engine), raise_server_exceptions=False) as client:
        admin = make_principal(admin=True, name="root")
        _act(engine, make_project("acme"), "model.promote", count=7)
        intact = client.get("/api/v1/audit/verify", headers=admin.headers).json()
        assert intact["intact"] is True, intact["problem"]
        assert intact["every"] == 3
        assert intact["anchor"] == str(tight.resolved_audit_anchor_path())
        listed = client.get("/api/v1/audit/checkpoints", headers=admin.headers).json()
        assert [c["seq"] for c in listed] == list(range(3, intact["head_seq"] + 1, 3))
        assert intact["anchored"] == len(listed)
        assert all(c["every"] == 3 and len(c["prev_hash"]) == 64 for c in listed)

        last = listed[-1]["seq"]
        drop_triggers(engine)
        truncate(engine, from_seq=last)
        broken = client.get("/api/v1/audit/verify", headers=admin.headers).json()
    assert broken["intact"] is False
    assert broken["first_broken_seq"] == last
    assert "truncated" in broken["problem"]


def test_announcing_channels_must_be_named_project_slash_channel(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="is not 'project/channel'"):
        settings.model_validate({"audit_anchor_channels": ["acme"]})
    named = Settings.model_validate({"audit_anchor_channels": ["acme/auditors"]})
    assert named.audit_anchor_channels == ["acme/auditors"]
