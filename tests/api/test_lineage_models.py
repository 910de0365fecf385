"""Model versions and deployments over REST: gated, audited, strict, project-scoped."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from governance.audit import AuditEntry
from governance.roles import Role
from lineage import session_scope
from retrain.champions import Promotion
from tests.api.going_live import approve_version
from tests.conftest import Issued
from tests.lineage.counts import row_counts

SHA = hashlib.sha256(b"model").hexdigest()
VERSIONS = "/api/v1/projects/acme/models/income/versions"
DEPLOYMENTS = "/api/v1/projects/acme/deployments"
T = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


@pytest.fixture
def scientist(make_principal: Callable[..., Issued]) -> Issued:
    """Return a data scientist of project ``acme``."""
    return make_principal(role=Role.DATA_SCIENTIST, project="acme")


def _actions(engine: Engine) -> list[str]:
    with session_scope(engine) as session:
        return [e.action for e in session.exec(select(AuditEntry).order_by(AuditEntry.seq))]  # type: ignore[arg-type]


def _register(client: TestClient, who: Issued, **body: object) -> dict[str, object]:
    response = client.post(
        VERSIONS,
        json={"artifact_uri": "models:/income/1", "artifact_sha256": SHA, **body},
        headers=who.headers,
    )
    assert response.status_code == 201, response.text
    result: dict[str, object] = response.json()
    return result


def test_register_list_and_read_a_model_version(
    client: TestClient, engine: Engine, scientist: Issued
) -> None:
    created = _register(client, scientist, metrics={"auc": 0.9}, feature_schema={"age": "integer"})
    assert created["version"] == "1"
    assert created["artifact_sha256"] == SHA
    assert created["registered_by"] == str(scientist.principal.id)
    assert "model_version.register" in _actions(engine)
    listed = client.get(VERSIONS, headers=scientist.headers)
    assert [v["version"] for v in listed.json()] == ["1"]
    read = client.get(f"{VERSIONS}/1", headers=scientist.headers)
    assert read.json() == created
    missing = client.get(f"{VERSIONS}/7", headers=scientist.headers)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"artifact_uri": "x", "artifact_sha256": SHA, "id": str(uuid.uuid4())}, "id"),
        ({"artifact_uri": "x", "artifact_sha256": "md5:abc"}, "artifact_sha256"),
        ({"artifact_uri": "x"}, "artifact_sha256"),
        (
            {"artifact_uri": "x", "artifact_sha256": SHA, "source_run_id": str(uuid.uuid4())},
            "source_run_id",
        ),
    ],
)
def test_a_bad_registration_names_the_field_and_stores_nothing(
    client: TestClient, engine: Engine, scientist: Issued, body: dict[str, object], field: str
) -> None:
    before = row_counts(engine)
    response = client.post(VERSIONS, json=body, headers=scientist.headers)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert row_counts(engine) == before


def test_a_duplicate_version_conflicts(client: TestClient, scientist: Issued) -> None:
    _register(client, scientist, version="3")
    again = client.post(
        VERSIONS,
        json={"artifact_uri": "x", "artifact_sha256": SHA, "version": "3"},
        headers=scientist.headers,
    )
    assert again.status_code == 409
    assert again.json()["field"] == "version"


def test_a_viewer_reads_but_may_not_register_or_deploy(
    client: TestClient, engine: Engine, scientist: Issued, make_principal: Callable[..., Issued]
) -> None:
    _register(client, scientist)
    viewer = make_principal(role=Role.VIEWER, project="acme")
    before = row_counts(engine)
    denied = client.post(
        VERSIONS, json={"artifact_uri": "x", "artifact_sha256": SHA}, headers=viewer.headers
    )
    deploy = client.post(
        DEPLOYMENTS,
        json={"name": "api", "environment": "prod", "model_name": "income", "model_version": "1"},
        headers=viewer.headers,
    )
    assert (denied.status_code, deploy.status_code) == (403, 403)
    assert row_counts(engine) == before
    assert client.get(VERSIONS, headers=viewer.headers).status_code == 200


def test_another_projects_models_are_invisible(
    client: TestClient, scientist: Issued, make_principal: Callable[..., Issued]
) -> None:
    _register(client, scientist)
    outsider = make_principal(role=Role.ADMIN, project="other")
    response = client.get(f"{VERSIONS}/1", headers=outsider.headers)
    assert response.status_code == 404


def test_deployments_record_list_live_as_of_read_and_end(
    client: TestClient, engine: Engine, scientist: Issued, make_principal: Callable[..., Issued]
) -> None:
    _register(client, scientist)
    _register(client, scientist)
    approver = make_principal(role=Role.APPROVER, project="acme")
    for version in ("1", "2"):
        approve_version(
            client,
            project="acme",
            name="income",
            version=version,
            requester=scientist,
            approver=approver,
        )

    def deploy(version: str, **extra: str) -> Any:
        return client.post(
            DEPLOYMENTS,
            json={
                "name": "income-api",
                "environment": "production",
                "model_name": "income",
                "model_version": version,
                **extra,
            },
            headers=scientist.headers,
        )

    # Times of record are the server's: a client cannot backdate nor post-date a deployment.
    for when in (T, datetime.now(UTC) + timedelta(days=1)):
        told = deploy("1", live_from=when.isoformat())
        assert told.status_code == 422
        assert told.json()["field"] == "live_from"
    first = deploy("1").json()
    second = deploy("2").json()
    assert first["feature_schema"] == {}
    assert (second["model_name"], second["model_version"]) == ("income", "2")
    assert first["imported"] is False

    history = client.get(DEPLOYMENTS, headers=scientist.headers).json()
    assert [d["id"] for d in history] == [second["id"], first["id"]]
    assert history[1]["live_until"] == second["live_from"]
    live = client.get(DEPLOYMENTS, params={"live": "true"}, headers=scientist.headers).json()
    assert [d["id"] for d in live] == [second["id"]]
    then = client.get(
        DEPLOYMENTS, params={"as_of": first["live_from"]}, headers=scientist.headers
    ).json()
    assert [d["id"] for d in then] == [first["id"]]

    # Another system's past comes in only as an admin's import, marked in every as-of answer.
    past = {
        "name": "income-api",
        "environment": "production",
        "model_name": "income",
        "model_version": "1",
        "live_from": T.isoformat(),
        "live_until": (T + timedelta(hours=1)).isoformat(),
    }
    by_scientist = client.post(f"{DEPLOYMENTS}/import", json=past, headers=scientist.headers)
    assert by_scientist.status_code == 403
    admin = make_principal(role=Role.ADMIN, project="acme")
    imported = client.post(f"{DEPLOYMENTS}/import", json=past, headers=admin.headers)
    assert imported.status_code == 201, imported.text
    assert imported.json()["imported"] is True
    overlapping = client.post(
        f"{DEPLOYMENTS}/import",
        json={**past, "live_until": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()},
        headers=admin.headers,
    )
    assert overlapping.status_code == 422
    assert "overlaps" in overlapping.json()["detail"]
    future = client.post(
        f"{DEPLOYMENTS}/import",
        json={**past, "live_from": "2999-01-01T00:00Z", "live_until": "2999-01-02T00:00Z"},
        headers=admin.headers,
    )
    assert (future.status_code, future.json()["field"]) == (422, "live_until")
    back_then = client.get(
        DEPLOYMENTS,
        params={"as_of": (T + timedelta(minutes=30)).isoformat()},
        headers=scientist.headers,
    ).json()
    assert [(d["id"], d["imported"]) for d in back_then] == [(imported.json()["id"], True)]
    assert [
        d["id"]
        for d in client.get(DEPLOYMENTS, params={"live": "true"}, headers=scientist.headers).json()
    ] == [second["id"]]
    with session_scope(engine) as session:
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.action == "deployment.import")
        ).one()
        assert entry.detail_object()["after"]["imported"] is True
    naive = client.get(
        DEPLOYMENTS, params={"as_of": "2026-11-25T11:00:00"}, headers=scientist.headers
    )
    assert naive.status_code == 422
    assert naive.json()["field"] == "as_of"

    one = client.get(f"{DEPLOYMENTS}/{second['id']}", headers=scientist.headers)
    assert one.json() == second
    ended = client.post(f"{DEPLOYMENTS}/{second['id']}/end", headers=scientist.headers)
    assert ended.status_code == 200
    assert ended.json()["live_until"] is not None
    again = client.post(f"{DEPLOYMENTS}/{second['id']}/end", headers=scientist.headers)
    assert again.status_code == 409
    assert client.get(DEPLOYMENTS, params={"live": "true"}, headers=scientist.headers).json() == []
    assert _actions(engine).count("deployment.record") == 2
    assert "deployment.end" in _actions(engine)


def test_recording_an_unapproved_version_is_refused_and_audited(
    client: TestClient, engine: Engine, scientist: Issued
) -> None:
    _register(client, scientist)
    before = row_counts(engine)
    response = client.post(
        DEPLOYMENTS,
        json={"name": "api", "environment": "prod", "model_name": "income", "model_version": "1"},
        headers=scientist.headers,
    )
    assert response.status_code == 403
    assert (
        "rule: no version goes live without an approved promotion request"
        in (response.json()["detail"])
    )
    assert row_counts(engine) == before
    with session_scope(engine) as session:
        assert session.exec(select(Promotion)).first() is None
        denied = session.exec(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()  # type: ignore[attr-defined]
    assert denied is not None
    assert (denied.action, denied.outcome, denied.target) == (
        "deployment.record",
        "denied",
        "model:income/1",
    )


def test_deploying_an_unregistered_version_is_refused(
    client: TestClient, engine: Engine, scientist: Issued
) -> None:
    before = row_counts(engine)
    response = client.post(
        DEPLOYMENTS,
        json={"name": "api", "environment": "prod", "model_name": "income", "model_version": "4"},
        headers=scientist.headers,
    )
    assert response.status_code == 422
    assert response.json()["field"] == "model_version"
    assert row_counts(engine) == before


def test_an_unknown_deployment_is_not_found(client: TestClient, scientist: Issued) -> None:
    response = client.get(f"{DEPLOYMENTS}/{uuid.uuid4()}", headers=scientist.headers)
    assert response.status_code == 404


def test_an_external_version_registers_without_artifact_and_gets_its_schema_later(
    client: TestClient, engine: Engine, scientist: Issued
) -> None:
    created = client.post(VERSIONS, json={"external": True}, headers=scientist.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["external"], body["artifact_uri"], body["artifact_sha256"]) == (True, None, None)
    assert body["feature_schema"] == {}
    schema_url = f"{VERSIONS}/{body['version']}/schema"
    revised = client.post(
        schema_url,
        json={
            "feature_schema": {"age": "integer", "income": "float"},
            "context_schema": {"race": {"role": "sensitive"}},
        },
        headers=scientist.headers,
    )
    assert revised.status_code == 200, revised.text
    assert revised.json()["feature_schema"] == {"age": "integer", "income": "float"}
    assert revised.json()["context_schema"] == {"race": {"type": "category", "role": "sensitive"}}
    added = client.post(
        schema_url,
        json={"context_schema": {"region": {"role": "slice", "type": "string"}}},
        headers=scientist.headers,
    )
    assert set(added.json()["context_schema"]) == {"race", "region"}
    before = row_counts(engine)
    for change, field in (
        ({"feature_schema": {"age": "float"}}, "feature_schema"),
        ({"context_schema": {"race": {"role": "slice"}}}, "context_schema.race"),
    ):
        refused = client.post(schema_url, json=change, headers=scientist.headers)
        assert refused.status_code == 409, refused.text
        assert refused.json()["field"] == field
    clash = client.post(
        schema_url, json={"context_schema": {"age": {"role": "slice"}}}, headers=scientist.headers
    )
    assert clash.status_code == 422
    assert clash.json()["field"] == "context_schema"
    assert row_counts(engine) == before
    with session_scope(engine) as session:
        actions = session.exec(
            select(AuditEntry.action).where(AuditEntry.action == "model_version.schema_revise")
        ).all()
    assert len(actions) == 2
