from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from governance.actors import Actor
from governance.approvals import ApprovalAction, decide, request_approval
from governance.audit import AuditEntry
from governance.policies import create_policy, get_policy, set_enabled
from governance.roles import Role
from lineage.deployments import live_deployments
from lineage.errors import Conflict, NotFound, PermissionDenied, SeparationOfDuties
from lineage.models import ModelVersion
from lineage.projects import Project
from lineage.store import session_scope
from retrain.champions import Promotion
from retrain.deployers import AliasDeployer, EmbeddedDeployer, VerifiedModelLoader
from retrain.mlflow_registry import CHALLENGER, CHAMPION, Registry
from retrain.promotion import promote, request_promotion, rollback
from tests.adult import FEATURES, adult_test


@pytest.fixture
def loader(registry: Registry, tmp_path: Path) -> VerifiedModelLoader:
    return VerifiedModelLoader(registry=registry, cache_dir=tmp_path / "models")


@pytest.fixture
def deployer(loader: VerifiedModelLoader) -> EmbeddedDeployer:
    return EmbeddedDeployer(loader=loader)


def _approve(engine: Engine, trainer: Actor, approver: Actor, version: ModelVersion) -> None:
    with session_scope(engine) as session:
        request = request_promotion(
            session=session, actor=trainer, model_version=version, reason="better AUC"
        )
    with session_scope(engine) as session:
        decide(session=session, actor=approver, approval_id=request.id, approve=True, reason="ok")


def _promote(
    engine: Engine,
    project: Project,
    actor: Actor,
    registry: Registry,
    deployer: EmbeddedDeployer | AliasDeployer,
    version: str,
) -> Promotion:
    with session_scope(engine) as session:
        return promote(
            session=session,
            project_id=project.id,
            model_name="income",
            version=version,
            deployment="income-api",
            environment="production",
            actor=actor,
            registry=registry,
            deployer=deployer,
            reason="go live",
        )


def _live(engine: Engine, project: Project) -> list[str]:
    with session_scope(engine) as session:
        rows = live_deployments(session=session, project_id=project.id)
        versions = [session.get(ModelVersion, row.model_version_id) for row in rows]
        return [v.version for v in versions if v is not None]


def _predict(engine: Engine, project: Project, deployer: EmbeddedDeployer) -> str:
    rows = adult_test().head(20)[FEATURES]
    with session_scope(engine) as session:
        answer = deployer.predict(
            session=session,
            project_id=project.id,
            deployment="income-api",
            environment="production",
            frame=rows,
        )
    assert len(answer.predictions) == 20
    assert answer.scores is not None
    assert all(0.0 <= s <= 1.0 for s in answer.scores)
    return answer.model_version


@pytest.mark.slow
def test_promotion_is_blocked_without_approval_and_when_the_trainer_approved(
    engine: Engine,
    project: Project,
    trainer: Actor,
    approver: Actor,
    person: Callable[..., Actor],
    registry: Registry,
    deployer: EmbeddedDeployer,
    train_version: Callable[..., ModelVersion],
) -> None:
    colleague = person(Role.DATA_SCIENTIST)
    version = train_version()
    with pytest.raises(PermissionDenied, match="needs an approved request"):
        _promote(engine, project, approver, registry, deployer, "1")

    # The request barred the trainer: the approvals service refuses their decision.
    with session_scope(engine) as session:
        request = request_promotion(
            session=session, actor=colleague, model_version=version, reason="ship it"
        )
    with (
        pytest.raises(SeparationOfDuties),
        session_scope(engine) as session,
    ):
        decide(session=session, actor=trainer, approval_id=request.id, approve=True, reason="mine")
    with session_scope(engine) as session:
        decide(session=session, actor=approver, approval_id=request.id, approve=False, reason="no")

    # A request that forgot to bar the trainer: promotion still refuses the trainer's approval.
    with session_scope(engine) as session:
        careless = request_approval(
            session=session,
            actor=colleague,
            action=ApprovalAction.PROMOTE,
            target_kind="model_version",
            target_id=str(version.id),
            reason="forgot to bar",
        )
    with session_scope(engine) as session:
        decide(session=session, actor=trainer, approval_id=careless.id, approve=True, reason="me")
    with pytest.raises(SeparationOfDuties, match="trained or registered it"):
        _promote(engine, project, approver, registry, deployer, "1")

    assert registry.alias_version("income", CHAMPION) is None
    assert _live(engine, project) == []


@pytest.mark.slow
def test_promote_serve_and_roll_back(
    engine: Engine,
    project: Project,
    trainer: Actor,
    approver: Actor,
    person: Callable[..., Actor],
    registry: Registry,
    deployer: EmbeddedDeployer,
    train_version: Callable[..., ModelVersion],
) -> None:
    first = train_version()
    second = train_version(random_state=1)
    registry.set_alias("income", CHALLENGER, "2")

    _approve(engine, trainer, approver, first)
    promoted = _promote(engine, project, trainer, registry, deployer, "1")
    assert promoted.previous_version_id is None
    assert registry.alias_version("income", CHAMPION) == "1"
    assert _live(engine, project) == ["1"]
    assert _predict(engine, project, deployer) == "1"
    with pytest.raises(Conflict, match="replaced nothing"), session_scope(engine) as session:
        rollback(
            session=session,
            project_id=project.id,
            deployment="income-api",
            environment="production",
            actor=trainer,
            registry=registry,
            deployer=deployer,
        )

    _approve(engine, trainer, approver, second)
    admin = person(Role.ADMIN)
    # promote() applies the project's policy gates itself: no caller hands them in.
    with session_scope(engine) as session:
        card, _ = create_policy(
            session=session,
            project_id=project.id,
            actor=admin,
            name="release",
            source="gates:\n  - {type: approvers, min: 2}\n",
        )
    with pytest.raises(
        PermissionDenied, match=r"gate 'release v1 approvers': 1 approver\(s\), 2 required"
    ):
        _promote(engine, project, trainer, registry, deployer, "2")
    assert registry.alias_version("income", CHAMPION) == "1"
    assert _live(engine, project) == ["1"]
    with session_scope(engine) as session:
        set_enabled(
            session=session,
            policy=get_policy(session=session, project_id=project.id, policy_id=card.id),
            enabled=False,
            actor=admin,
        )

    promoted = _promote(engine, project, trainer, registry, deployer, "2")
    assert promoted.previous_version_id == first.id
    assert registry.alias_version("income", CHAMPION) == "2"
    assert registry.alias_version("income", CHALLENGER) is None
    assert _live(engine, project) == ["2"]
    assert _predict(engine, project, deployer) == "2"
    with pytest.raises(Conflict, match="is live in 'income-api'"):
        _promote(engine, project, trainer, registry, deployer, "2")

    with session_scope(engine) as session:
        back = rollback(
            session=session,
            project_id=project.id,
            deployment="income-api",
            environment="production",
            actor=approver,
            registry=registry,
            deployer=deployer,
            reason="accuracy dropped",
        )
    assert back.kind == "rollback"
    assert back.previous_version_id is None
    assert registry.alias_version("income", CHAMPION) == "1"
    assert _live(engine, project) == ["1"]
    assert _predict(engine, project, deployer) == "1"

    with session_scope(engine) as session:
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.action.in_(["model.promote", "model.rollback"]))  # type: ignore[attr-defined]
        ).all()
    assert [(e.action, e.detail_object()["after"]) for e in entries] == [
        ("model.promote", "1"),
        ("model.promote", "2"),
        ("model.rollback", "1"),
    ]
    assert entries[-1].reason == "accuracy dropped"


@pytest.mark.slow
def test_a_tampered_artifact_is_never_loaded_or_promoted(
    engine: Engine,
    project: Project,
    trainer: Actor,
    approver: Actor,
    registry: Registry,
    loader: VerifiedModelLoader,
    train_version: Callable[..., ModelVersion],
) -> None:
    version = train_version()
    assert isinstance(registry.artifact_root, Path)  # a local root in these tests
    stored = next(registry.artifact_root.rglob("model.skops"))
    stored.write_bytes(stored.read_bytes() + b"\0")
    with pytest.raises(Conflict, match="refusing to load them"):
        loader.load(version)

    _approve(engine, trainer, approver, version)
    with pytest.raises(Conflict, match="no longer match"):
        _promote(engine, project, trainer, registry, AliasDeployer(registry=registry), "1")
    assert registry.alias_version("income", CHAMPION) is None
    with pytest.raises(NotFound, match="nothing is live"), session_scope(engine) as session:
        EmbeddedDeployer(loader=loader).predict(
            session=session,
            project_id=project.id,
            deployment="income-api",
            environment="production",
            frame=adult_test().head(2)[FEATURES],
        )
