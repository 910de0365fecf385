"""A project worth looking at in the dashboard, built through the real services.

The Adult income model is live in production; a drift monitor ran through the worker before and
after data arrived, on a real population shift (people over 45), and a fairness monitor on the
same window, so there are stored reports with charts; a second version, trained by a
lineage-reported job on the Adult training data, awaits approval for promotion. People sign
in with passwords:

* ``dana`` — data scientist (asked for the promotion, so may not approve it);
* ``alex`` — approver and auditor (decides, and reads the audit log);
* ``vic`` — viewer (sees, never acts).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select

from api.settings import Settings
from governance.actors import Actor
from governance.identity import Principal, actor_for, create_person
from governance.roles import Role, grant_role
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.models import Job, Run
from lineage.openlineage_ingest import ingest_event
from lineage.projects import Project
from lineage.runtime.handlers import HandlerRegistry
from lineage.runtime.worker import Worker
from lineage.storage import LocalStore
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.models import Monitor, MonitorCreate, RunTrigger, Schedule
from monitors.run_jobs import get_monitor_run, queue_monitor_run, register_monitor_handlers
from monitors.schedules import create_monitor
from monitors.spec import MonitorSpec
from retrain.promotion import request_promotion
from tests.adult import adult_test
from tests.monitors.test_execute import Setup

__all__ = ["PASSWORD", "Seeded", "seed_dashboard"]

PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class Seeded:
    """What :func:`seed_dashboard` made, by id."""

    project: str
    deployment_id: uuid.UUID
    drift_monitor_id: uuid.UUID
    drift_run_id: uuid.UUID
    approval_id: uuid.UUID
    people: dict[str, uuid.UUID]


def _people(engine: Engine, project_id: uuid.UUID) -> dict[str, uuid.UUID]:
    roles = {
        "dana": [Role.DATA_SCIENTIST],
        "alex": [Role.APPROVER, Role.AUDITOR],
        "vic": [Role.VIEWER],
    }
    made = {}
    system = Actor.system()
    with session_scope(engine) as session:
        for name, held in roles.items():
            person = create_person(session=session, actor=system, name=name, password=PASSWORD)
            for role in held:
                grant_role(
                    session=session,
                    actor=system,
                    project_id=project_id,
                    principal_id=person.id,
                    role=role,
                )
            made[name] = person.id
    return made


def _training_run(engine: Engine, project_id: uuid.UUID) -> uuid.UUID:
    run_id = uuid.uuid4()
    now = utcnow()
    for event_type, at in (("START", now - timedelta(minutes=5)), ("COMPLETE", now)):
        body = {
            "eventType": event_type,
            "eventTime": at.isoformat(),
            "run": {"runId": str(run_id), "facets": {}},
            "job": {"namespace": "pipelines", "name": "train-income", "facets": {}},
            "inputs": [{"namespace": "file", "name": "adult/train", "facets": {}}],
            "outputs": [],
            "producer": "https://example.com/warden-tests",
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        }
        with session_scope(engine) as session:
            ingest_event(session=session, project_id=project_id, body=json.dumps(body).encode())
    with session_scope(engine) as session:
        job = session.exec(select(Job).where(Job.name == "train-income")).one()
        assert session.exec(select(Run).where(Run.job_id == job.id)).first() is not None
    return run_id


def _run(setup: Setup, monitor_id: uuid.UUID, *, minutes_ago: int = 0) -> uuid.UUID:
    with session_scope(setup.engine) as session:
        monitor = session.get(Monitor, monitor_id)
        assert monitor is not None
        run = queue_monitor_run(
            session=session,
            monitor=monitor,
            scheduled_for=utcnow() - timedelta(minutes=minutes_ago),
            trigger=RunTrigger.MANUAL,
        )
        assert run is not None
        run_id, project_id = run.id, run.project_id
    registry = register_monitor_handlers(
        HandlerRegistry(), store=LocalStore(setup.data_dir), loader=setup.loader
    )
    assert Worker(engine=setup.engine, registry=registry).run_once()
    with session_scope(setup.engine) as session:
        done = get_monitor_run(session=session, project_id=project_id, run_id=run_id)
        assert done.state == "succeeded", done.error
    return run_id


def _monitor(setup: Setup, name: str, spec: dict[str, object]) -> uuid.UUID:
    with session_scope(setup.engine) as session:
        monitor = create_monitor(
            session=session,
            project_id=setup.deployment.project_id,
            spec=MonitorCreate(
                name=name,
                deployment_id=setup.deployment.id,
                spec=MonitorSpec.model_validate(spec),
                schedule=Schedule(interval_seconds=3600),
                window="last:24h",
                paused=True,
            ),
        )
        return monitor.id


def seed_dashboard(engine: Engine, settings: Settings) -> Seeded:
    """Build the project ``acme`` described in the module docstring; return what it made."""
    test = adult_test()
    setup = Setup(engine, settings, test[test["age"] > 45].sample(1500, random_state=0))
    project_id = setup.deployment.project_id
    people = _people(engine, project_id)
    drift = _monitor(setup, "income-drift", {"kind": "drift", "thresholds": {"drift_share": 0.3}})
    _run(setup, drift, minutes_ago=30)  # before any inference was logged: insufficient
    _run(setup, drift)
    drift_run = _run(setup, drift)
    fairness = _monitor(
        setup, "income-fairness", {"kind": "fairness", "sensitive_features": ["sex"]}
    )
    _run(setup, fairness)
    training = _training_run(engine, project_id)
    with session_scope(engine) as session:
        project = session.get(Project, project_id)
        assert project is not None
        version = register_model_version(
            session=session,
            project_id=project_id,
            name="income",
            spec=ModelVersionCreate(
                source_run_id=training,
                artifact_uri="models:/income/2",
                artifact_sha256="1" * 64,
                parameters={"max_iter": 200, "learning_rate": 0.1},
                metrics={"accuracy": 0.871, "f1": 0.712, "roc_auc": 0.926},
                description="Retrained on the refreshed Adult extract.",
            ),
            registered_by=people["dana"],
        )
        principal = session.get(Principal, people["dana"])
        assert principal is not None
        approval = request_promotion(
            session=session,
            actor=actor_for(principal, project_id=project_id),
            model_version=version,
            reason="v2 scores better on the recent window",
        )
        return Seeded(
            project=project.name,
            deployment_id=setup.deployment.id,
            drift_monitor_id=drift,
            drift_run_id=drift_run,
            approval_id=approval.id,
            people=people,
        )
