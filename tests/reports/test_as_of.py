""" "As of T" reports: what served where, under which policy versions, and who changed them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from governance.actors import Actor
from governance.audit_verify import verify_store
from governance.policies import Policy, add_version, create_policy, set_enabled
from lineage.deployments import DeploymentCreate, record_deployment
from lineage.errors import InvalidInput
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.projects import Project
from lineage.store import session_scope
from lineage.tables import utcnow
from reports import REDACTED, as_of, project_report, render

GATES = {"gates": [{"type": "approvers", "min": 2}]}


def _deploy(engine: Engine, project: Project, version: str, actor: Actor) -> None:
    with session_scope(engine) as session:
        record_deployment(
            session=session,
            project_id=project.id,
            spec=DeploymentCreate(
                name="income-api",
                environment="production",
                model_name="income",
                model_version=version,
            ),
            recorded_by=actor.principal_id,
        )


@pytest.fixture
def history(
    engine: Engine, project: Project, trainer: Actor, approver: Actor
) -> Callable[[], tuple[datetime, datetime]]:
    """Version 1 live under policy version 1, then version 2 under version 2, switched off."""

    def build() -> tuple[datetime, datetime]:
        with session_scope(engine) as session:
            for version in ("1", "2"):
                register_model_version(
                    session=session,
                    project_id=project.id,
                    name="income",
                    spec=ModelVersionCreate(
                        version=version,
                        artifact_uri=f"models:/income/{version}",
                        artifact_sha256="c" * 64,
                    ),
                )
            policy, _ = create_policy(
                session=session, project_id=project.id, actor=trainer, name="gates", document=GATES
            )
            policy_id = policy.id
        _deploy(engine, project, "1", trainer)
        first = utcnow()
        with session_scope(engine) as session:
            stored = session.get(Policy, policy_id)
            assert stored is not None
            add_version(session=session, policy=stored, actor=approver, document=GATES)
            set_enabled(session=session, policy=stored, enabled=False, actor=approver)
        _deploy(engine, project, "2", approver)
        return first, utcnow()

    return build


def test_as_of_replays_deployments_and_policies_to_the_moment_asked(
    engine: Engine,
    project: Project,
    trainer: Actor,
    approver: Actor,
    history: Callable[[], tuple[datetime, datetime]],
) -> None:
    first, second = history()
    with session_scope(engine) as session:
        before = as_of(session=session, project_id=project.id, at=first, full=True)
        after = as_of(session=session, project_id=project.id, at=second, full=True)
        hidden = as_of(session=session, project_id=project.id, at=second, full=False)
        nothing = as_of(
            session=session,
            project_id=project.id,
            at=first - timedelta(hours=1),
            full=True,
        )
    assert [(s["model"], s["version"], s["changed_by"]) for s in before["serving"]] == [
        ("income", "1", trainer.name)
    ]
    assert [
        (p["name"], p["active_version"], p["enabled"], p["by"]) for p in before["policies"]
    ] == [("gates", 1, True, trainer.name)]
    assert [(s["version"], s["changed_by"]) for s in after["serving"]] == [("2", approver.name)]
    assert [
        (p["active_version"], p["enabled"], p["last_change"], p["by"]) for p in after["policies"]
    ] == [(2, False, "policy.disable", approver.name)]
    assert hidden["serving"][0]["changed_by"] == REDACTED
    assert hidden["policies"][0]["by"] == REDACTED
    assert nothing["serving"] == []
    assert nothing["policies"] == []

    html = render(after, "html").decode()
    assert "<td>gates</td><td>2</td><td>no</td><td>policy.disable</td>" in html
    assert approver.name in html


def test_project_report_ends_with_the_state_at_its_end(
    engine: Engine, project: Project, history: Callable[[], tuple[datetime, datetime]]
) -> None:
    start = utcnow()
    first, _ = history()
    verification = verify_store(engine=engine, public_key=None)
    with session_scope(engine) as session:
        report = project_report(
            session=session,
            project_id=project.id,
            since=start,
            until=first,
            verification=verification,
            full=True,
        )
        with pytest.raises(InvalidInput, match="has no timezone"):
            as_of(session=session, project_id=project.id, at=start.replace(tzinfo=None), full=True)
    assert report["verification"]["intact"] is True
    assert [s["version"] for s in report["as_of_end"]["serving"]] == ["1"]
    actions = [row["action"] for row in report["groups"]["policies_and_decisions"]]
    assert actions == ["policy.create", "policy.version"]
    assert report["groups"]["models_and_deployments"] == []
