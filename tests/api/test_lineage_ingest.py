"""``POST /api/v1/lineage``: bad input gets a clear 4xx problem and leaves the store unchanged."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.app import create_app
from api.settings import Settings
from governance.actors import Actor
from governance.audit import AuditEntry
from governance.roles import Role, grant_role
from lineage import get_project, session_scope
from tests.conftest import Issued
from tests.lineage.counts import row_counts
from tests.lineage.events import dataset, encode, run_event

URL = "/api/v1/lineage?project=acme"


@pytest.fixture
def writer(make_principal: Callable[..., Issued]) -> Issued:
    """Return a service account that may write lineage in project ``acme``."""
    return make_principal(role=Role.DATA_SCIENTIST, project="acme", service=True)


@pytest.fixture
def small_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """Return a client on an app that accepts bodies of at most 4 KiB."""
    small = settings.model_copy(update={"max_body_bytes": 4096})
    with TestClient(create_app(small, engine=engine), raise_server_exceptions=False) as client:
        yield client


def _event(**changes: Any) -> dict[str, Any]:
    event = run_event(
        event_type="START",
        run_id=uuid.uuid4(),
        job="featurize",
        inputs=[dataset("file", "/data/raw.csv")],
        outputs=[dataset("file", "/data/features.parquet")],
    )
    event.update(changes)
    return event


def _refused(
    client: TestClient,
    engine: Engine,
    writer: Issued,
    content: bytes,
    *,
    status: int,
    field: str,
    message: str,
    url: str = URL,
    headers: dict[str, str] | None = None,
) -> None:
    before = row_counts(engine)
    response = client.post(url, content=content, headers={**writer.headers, **(headers or {})})
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem.get("field") == field
    assert message in problem["detail"]
    assert row_counts(engine) == before


def test_a_valid_event_is_stored_once_and_a_replay_answers_200(
    client: TestClient, engine: Engine, writer: Issued
) -> None:
    body = encode(_event())
    first = client.post(URL, content=body, headers=writer.headers)
    assert first.status_code == 201, first.text
    assert first.json()["created"] is True
    counts = row_counts(engine)
    replay = client.post(URL, content=body, headers=writer.headers)
    assert replay.status_code == 200
    assert replay.json() == {**first.json(), "created": False}
    assert row_counts(engine) == counts
    assert counts["lineage_event"] == 1


def test_a_gzip_event_is_accepted(client: TestClient, engine: Engine, writer: Issued) -> None:
    response = client.post(
        URL,
        content=gzip.compress(encode(_event())),
        headers={**writer.headers, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 201, response.text
    assert row_counts(engine)["lineage_run"] == 1


def test_the_single_project_of_the_caller_is_the_default(
    client: TestClient, engine: Engine, writer: Issued
) -> None:
    response = client.post("/api/v1/lineage", content=encode(_event()), headers=writer.headers)
    assert response.status_code == 201, response.text
    assert row_counts(engine)["lineage_event"] == 1


def test_malformed_json_is_refused(client: TestClient, engine: Engine, writer: Issued) -> None:
    _refused(
        client,
        engine,
        writer,
        b'{"eventType": "START",',
        status=422,
        field="body",
        message="not valid JSON",
    )


def test_a_missing_run_id_is_refused(client: TestClient, engine: Engine, writer: Issued) -> None:
    body = encode(_event(run={"facets": {}}))
    _refused(client, engine, writer, body, status=422, field="run.runId", message="required")


def test_a_wrong_event_type_is_refused(client: TestClient, engine: Engine, writer: Issued) -> None:
    body = encode(_event(eventType="DONE"))
    _refused(client, engine, writer, body, status=422, field="eventType", message="COMPLETE")


def test_an_oversized_body_is_refused(
    small_client: TestClient, engine: Engine, writer: Issued
) -> None:
    body = encode(_event(padding="x" * 5000))
    before = row_counts(engine)
    response = small_client.post(URL, content=body, headers=writer.headers)
    assert response.status_code == 413
    assert "4096 bytes" in response.json()["detail"]
    assert row_counts(engine) == before


def test_a_gzip_body_that_inflates_past_the_limit_is_refused(
    small_client: TestClient, engine: Engine, writer: Issued
) -> None:
    body = gzip.compress(encode(_event(padding="x" * 100_000)))
    assert len(body) < 4096
    _refused(
        small_client,
        engine,
        writer,
        body,
        status=413,
        field="body",
        message="decompressed event exceeds 4096 bytes",
        headers={"Content-Encoding": "gzip"},
    )


def test_a_bad_gzip_body_is_refused(client: TestClient, engine: Engine, writer: Issued) -> None:
    _refused(
        client,
        engine,
        writer,
        encode(_event()),
        status=422,
        field="body",
        message="not valid gzip",
        headers={"Content-Encoding": "gzip"},
    )


def test_a_truncated_gzip_body_is_refused(
    client: TestClient, engine: Engine, writer: Issued
) -> None:
    body = gzip.compress(encode(_event()))[:-12]
    _refused(
        client,
        engine,
        writer,
        body,
        status=422,
        field="body",
        message="truncated",
        headers={"Content-Encoding": "gzip"},
    )


def test_an_unsupported_encoding_is_refused(
    client: TestClient, engine: Engine, writer: Issued
) -> None:
    _refused(
        client,
        engine,
        writer,
        encode(_event()),
        status=422,
        field="Content-Encoding",
        message="not supported",
        headers={"Content-Encoding": "br"},
    )


def test_a_caller_in_several_projects_must_name_one(
    client: TestClient, engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    both = make_principal(role=Role.DATA_SCIENTIST, project="acme", service=True)
    make_principal(role=Role.VIEWER, project="other")  # makes the second project exist
    with session_scope(engine) as session:
        other = get_project(session=session, name="other")
        grant_role(
            session=session,
            actor=Actor.system(),
            project_id=other.id,
            principal_id=both.principal.id,
            role=Role.VIEWER,
        )
    _refused(
        client,
        engine,
        both,
        encode(_event()),
        status=422,
        field="project",
        message="?project=<name>",
        url="/api/v1/lineage",
    )


def test_a_viewer_may_not_write_lineage(
    client: TestClient, engine: Engine, make_principal: Callable[..., Issued]
) -> None:
    viewer = make_principal(role=Role.VIEWER, project="acme")
    before = row_counts(engine)
    response = client.post(URL, content=encode(_event()), headers=viewer.headers)
    assert response.status_code == 403
    assert row_counts(engine) == before


def test_an_unknown_project_is_not_found(
    client: TestClient, engine: Engine, writer: Issued
) -> None:
    before = row_counts(engine)
    response = client.post(
        "/api/v1/lineage?project=nope", content=encode(_event()), headers=writer.headers
    )
    assert response.status_code == 404
    assert row_counts(engine) == before


def test_no_credentials_is_unauthenticated(client: TestClient, engine: Engine) -> None:
    response = client.post(URL, content=encode(_event()))
    assert response.status_code == 401
    assert row_counts(engine)["lineage_event"] == 0


def test_the_graph_query_refuses_a_bad_node_id(client: TestClient, writer: Issued) -> None:
    client.post(URL, content=encode(_event()), headers=writer.headers)
    bad = client.get(
        "/api/v1/lineage", params={"nodeId": "table:x", "project": "acme"}, headers=writer.headers
    )
    assert bad.status_code == 422
    assert bad.json()["field"] == "nodeId"
    missing = client.get(
        "/api/v1/lineage",
        params={"nodeId": "dataset:file:/nope", "project": "acme"},
        headers=writer.headers,
    )
    assert missing.status_code == 404
    found = client.get(
        "/api/v1/lineage",
        params={"nodeId": "dataset:file:/data/raw.csv", "project": "acme", "depth": 1},
        headers=writer.headers,
    )
    assert found.status_code == 200
    assert {n["id"] for n in found.json()["graph"]} == {
        "dataset:file:/data/raw.csv",
        "job:pipelines:featurize",
    }
    assert {n["type"] for n in found.json()["graph"]} == {"DATASET", "JOB"}


def test_a_denied_project_is_refused_and_audited(
    client: TestClient, engine: Engine, writer: Issued, make_principal: Callable[..., Issued]
) -> None:
    make_principal(role=Role.VIEWER, project="other")
    with session_scope(engine) as session:
        other = get_project(session=session, name="other")
        grant_role(
            session=session,
            actor=Actor.system(),
            project_id=other.id,
            principal_id=writer.principal.id,
            role=Role.VIEWER,
        )
    before = row_counts(engine)
    read_only = client.post(
        "/api/v1/lineage?project=other", content=encode(_event()), headers=writer.headers
    )
    unknown = client.post(
        "/api/v1/lineage?project=nope", content=encode(_event()), headers=writer.headers
    )
    assert (read_only.status_code, unknown.status_code) == (403, 404)
    assert row_counts(engine) == before
    with session_scope(engine) as session:
        denials = session.exec(select(AuditEntry).where(AuditEntry.action == "access.denied")).all()
    assert sorted(d.target for d in denials) == ["project:nope", "project:other"]
    assert all(d.actor_id == writer.principal.id for d in denials)


def test_a_deeply_nested_event_is_refused_not_a_500(
    client: TestClient, engine: Engine, writer: Issued
) -> None:
    deep = b'{"run": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    _refused(client, engine, writer, deep, status=422, field="body", message="nests deeper")
