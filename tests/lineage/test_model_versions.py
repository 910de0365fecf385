from __future__ import annotations

import hashlib
import uuid

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import select

from lineage import (
    Conflict,
    Edge,
    EdgeKind,
    InvalidInput,
    ModelVersionCreate,
    NotFound,
    Run,
    get_model_version,
    ingest_event,
    list_model_versions,
    register_model_version,
    session_scope,
)
from tests.lineage.counts import row_counts
from tests.lineage.events import encode, run_event

SHA = hashlib.sha256(b"artifact").hexdigest()


def _spec(**changes: object) -> ModelVersionCreate:
    return ModelVersionCreate.model_validate(
        {"artifact_uri": "models:/income/1", "artifact_sha256": SHA, **changes}
    )


def test_versions_are_numbered_when_the_client_gives_none(
    engine: Engine, project_id: uuid.UUID
) -> None:
    with session_scope(engine) as session:
        first = register_model_version(
            session=session, project_id=project_id, name="income", spec=_spec()
        )
        second = register_model_version(
            session=session, project_id=project_id, name="income", spec=_spec()
        )
        named = register_model_version(
            session=session, project_id=project_id, name="income", spec=_spec(version="2024.1")
        )
        other = register_model_version(
            session=session, project_id=project_id, name="churn", spec=_spec()
        )
    assert [first.version, second.version, named.version, other.version] == [
        "1",
        "2",
        "2024.1",
        "1",
    ]
    with session_scope(engine) as session:
        listed = list_model_versions(session=session, project_id=project_id, name="income")
        found = get_model_version(
            session=session, project_id=project_id, name="income", version="2"
        )
    assert [v.version for v in listed] == ["1", "2", "2024.1"]
    assert found.artifact_sha256 == SHA


def test_a_version_links_to_its_training_run_and_keeps_its_schema(
    engine: Engine, project_id: uuid.UUID
) -> None:
    run_id = uuid.uuid4()
    registrar = uuid.uuid4()
    with session_scope(engine) as session:
        ingest_event(
            session=session,
            project_id=project_id,
            body=encode(run_event(event_type="COMPLETE", run_id=run_id, job="train")),
        )
    with session_scope(engine) as session:
        version = register_model_version(
            session=session,
            project_id=project_id,
            name="income",
            spec=_spec(
                source_run_id=str(run_id),
                parameters={"max_iter": 100, "loss": "log_loss"},
                metrics={"roc_auc": 0.93},
                feature_schema={"age": "integer", "sex": "category"},
            ),
            registered_by=registrar,
        )
        run = session.exec(select(Run)).one()
        edge = session.exec(select(Edge).where(Edge.kind == EdgeKind.RUN_MODEL)).one()
    assert version.source_run_id == run.id
    assert (edge.source_id, edge.target_id) == (run.id, version.id)
    assert version.feature_schema == {"age": "integer", "sex": "category"}
    assert version.parameters == {"max_iter": 100, "loss": "log_loss"}
    assert version.registered_by == registrar


def test_an_unknown_training_run_is_refused(engine: Engine, project_id: uuid.UUID) -> None:
    before = row_counts(engine)
    with (
        pytest.raises(InvalidInput, match="POST /api/v1/lineage first") as caught,
        session_scope(engine) as session,
    ):
        register_model_version(
            session=session,
            project_id=project_id,
            name="m",
            spec=_spec(source_run_id=str(uuid.uuid4())),
        )
    assert caught.value.field == "source_run_id"
    assert row_counts(engine) == before


def test_a_registered_version_is_immutable(engine: Engine, project_id: uuid.UUID) -> None:
    with session_scope(engine) as session:
        register_model_version(
            session=session, project_id=project_id, name="m", spec=_spec(version="1")
        )
    with pytest.raises(Conflict, match="immutable"), session_scope(engine) as session:
        register_model_version(
            session=session, project_id=project_id, name="m", spec=_spec(version="1")
        )


def test_a_bad_model_name_is_refused(engine: Engine, project_id: uuid.UUID) -> None:
    with pytest.raises(InvalidInput, match="not valid") as caught, session_scope(engine) as session:
        register_model_version(session=session, project_id=project_id, name="a:b", spec=_spec())
    assert caught.value.field == "name"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"artifact_sha256": "abc"}, "artifact_sha256"),
        ({"feature_schema": {"age": "int64"}}, "feature_schema.age"),
        ({"version": "1 2"}, "version"),
        ({"id": str(uuid.uuid4())}, "id"),
    ],
)
def test_the_spec_refuses_bad_fields(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        _spec(**changes)
    assert ".".join(str(p) for p in caught.value.errors()[0]["loc"]) == field


def test_versions_of_another_project_are_not_found(engine: Engine, project_id: uuid.UUID) -> None:
    with session_scope(engine) as session:
        register_model_version(session=session, project_id=project_id, name="m", spec=_spec())
    with (
        pytest.raises(NotFound, match="no version '1' of model 'm'"),
        session_scope(engine) as session,
    ):
        get_model_version(session=session, project_id=uuid.uuid4(), name="m", version="1")
