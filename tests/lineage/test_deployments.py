from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from lineage import (
    Conflict,
    Deployment,
    DeploymentCreate,
    InvalidInput,
    ModelVersionCreate,
    end_deployment,
    list_deployments,
    live_deployments,
    record_deployment,
    register_model_version,
    session_scope,
)
from tests.lineage.counts import row_counts

T = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def versions(engine: Engine, project_id: uuid.UUID) -> list[str]:
    """Register versions 1, 2 and 3 of model ``income``."""
    spec = ModelVersionCreate(artifact_uri="x", artifact_sha256=hashlib.sha256(b"x").hexdigest())
    with session_scope(engine) as session:
        return [
            register_model_version(
                session=session, project_id=project_id, name="income", spec=spec
            ).version
            for _ in range(3)
        ]


def _deploy(
    engine: Engine, project_id: uuid.UUID, version: str, at: datetime, env: str = "prod"
) -> uuid.UUID:
    spec = DeploymentCreate(name="api", environment=env, model_name="income", model_version=version)
    with session_scope(engine) as session:
        return record_deployment(session=session, project_id=project_id, spec=spec, at=at).id


def _live_at(engine: Engine, project_id: uuid.UUID, at: datetime | None) -> list[tuple[str, str]]:
    with session_scope(engine) as session:
        return [
            (d.environment, str(d.model_version_id))
            for d in live_deployments(session=session, project_id=project_id, as_of=at)
        ]


def test_a_new_deployment_ends_the_previous_one_in_its_slot(
    engine: Engine, project_id: uuid.UUID, versions: list[str]
) -> None:
    first = _deploy(engine, project_id, "1", T)
    second = _deploy(engine, project_id, "2", T + timedelta(hours=1))
    staging = _deploy(engine, project_id, "3", T + timedelta(minutes=30), env="staging")
    with session_scope(engine) as session:
        history = {d.id: d for d in list_deployments(session=session, project_id=project_id)}
        live_now = live_deployments(session=session, project_id=project_id)
        before = live_deployments(
            session=session, project_id=project_id, as_of=T + timedelta(minutes=59)
        )
        too_early = live_deployments(
            session=session, project_id=project_id, as_of=T - timedelta(seconds=1)
        )
    assert history[first].live_until == T + timedelta(hours=1)
    assert history[second].live_until is None
    assert {d.id for d in live_now} == {second, staging}
    assert {d.id for d in before} == {first, staging}
    assert too_early == []


def test_the_boundary_instant_belongs_to_the_new_deployment(
    engine: Engine, project_id: uuid.UUID, versions: list[str]
) -> None:
    _deploy(engine, project_id, "1", T)
    second = _deploy(engine, project_id, "2", T + timedelta(hours=1))
    with session_scope(engine) as session:
        live = live_deployments(
            session=session, project_id=project_id, as_of=T + timedelta(hours=1)
        )
    assert [d.id for d in live] == [second]


def test_recording_the_live_version_again_changes_nothing(
    engine: Engine, project_id: uuid.UUID, versions: list[str]
) -> None:
    first = _deploy(engine, project_id, "1", T)
    before = row_counts(engine)
    assert _deploy(engine, project_id, "1", T + timedelta(hours=2)) == first
    assert row_counts(engine) == before


def test_history_is_append_only(engine: Engine, project_id: uuid.UUID, versions: list[str]) -> None:
    _deploy(engine, project_id, "1", T)
    before = row_counts(engine)
    with pytest.raises(InvalidInput, match="append-only") as caught:
        _deploy(engine, project_id, "2", T - timedelta(minutes=1))
    assert caught.value.field == "live_from"
    assert row_counts(engine) == before


def test_an_unregistered_model_version_cannot_be_deployed(
    engine: Engine, project_id: uuid.UUID, versions: list[str]
) -> None:
    with pytest.raises(InvalidInput, match="not registered") as caught:
        _deploy(engine, project_id, "9", T)
    assert caught.value.field == "model_version"


def test_ending_a_deployment_empties_its_slot(
    engine: Engine, project_id: uuid.UUID, versions: list[str]
) -> None:
    first = _deploy(engine, project_id, "1", T)
    with session_scope(engine) as session:
        ended = end_deployment(
            session=session, project_id=project_id, deployment_id=first, at=T + timedelta(hours=3)
        )
    assert ended.live_until == T + timedelta(hours=3)
    assert _live_at(engine, project_id, T + timedelta(hours=4)) == []
    assert len(_live_at(engine, project_id, T + timedelta(hours=2))) == 1
    with pytest.raises(Conflict, match="ended"), session_scope(engine) as session:
        end_deployment(session=session, project_id=project_id, deployment_id=first)
    later = _deploy(engine, project_id, "2", T + timedelta(hours=5))
    with session_scope(engine) as session:
        assert [d.id for d in live_deployments(session=session, project_id=project_id)] == [later]


def test_a_naive_as_of_is_refused(engine: Engine, project_id: uuid.UUID) -> None:
    with pytest.raises(InvalidInput, match="timezone") as caught, session_scope(engine) as session:
        live_deployments(session=session, project_id=project_id, as_of=datetime(2026, 1, 1))
    assert caught.value.field == "as_of"


def test_the_store_itself_refuses_two_live_deployments_in_a_slot(
    engine: Engine, project_id: uuid.UUID, versions: list[str]
) -> None:
    first = _deploy(engine, project_id, "1", T)
    with session_scope(engine) as session:
        model_version_id = session.get(Deployment, first).model_version_id  # type: ignore[union-attr]
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(
            Deployment(
                project_id=project_id,
                name="api",
                environment="prod",
                model_version_id=model_version_id,
                live_from=T + timedelta(hours=1),
            )
        )
