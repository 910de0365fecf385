"""The findings → policies → actions loop, end to end on real data and real MLflow, and its rules.

The first test is the issue's "done when": drifted traffic → monitor finding → policy decision →
pipeline run → new registered version → evaluation → approval by a second person → alias moved →
deployment recorded → predictions served by the new version, with every step in the audit log
and in lineage. The monitor run and the pipeline run both execute in the real worker
(:func:`api.worker_process.build_worker`), exactly as ``warden worker`` runs them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from api.settings import Settings
from api.worker_process import build_worker
from governance.actors import Actor
from governance.alerts import RuleCreate, create_rule
from governance.approvals import ApprovalRequest, decide
from governance.audit import AuditEntry
from governance.channels import SecretBox, create_channel
from governance.decisions import FindingBatch, PolicyDecision
from governance.delivery import Delivery
from governance.incidents import Incident
from governance.policies import add_version, create_policy, get_policy
from governance.policy_evaluation import RunFindings
from governance.roles import Role
from lineage.deployments import DeploymentCreate, live_deployments, record_deployment
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.models import Dataset, DatasetVersion, Edge, EdgeKind, ModelVersion
from lineage.projects import Project
from lineage.storage import LocalStore
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.baseline.storage import BaselineCreate, create_baseline
from monitors.findings import Finding, Status
from monitors.inferences import InferenceRecord, log_inferences
from monitors.models import MonitorCreate, RunTrigger, Schedule
from monitors.run_jobs import get_monitor_run, queue_monitor_run
from monitors.schedules import create_monitor, record_run
from monitors.spec import MonitorSpec
from retrain.deployers import EmbeddedDeployer, VerifiedModelLoader
from retrain.evaluation import Evaluation
from retrain.loop import handle_run_findings, on_findings
from retrain.mlflow_registry import CHAMPION, Registry
from retrain.pipelines import (
    EvaluationSpec,
    Pipeline,
    PipelineRun,
    PipelineRunState,
    cancel_run,
    request_run,
)
from retrain.promotion import promote, request_promotion
from retrain.runner_config import RunnerConfig
from tests.adult import FEATURES, TARGET, adult_test, adult_train
from tests.monitors.serving import records

ADULT_TEST = Path(__file__).resolve().parents[2] / "data" / "adult" / "adult.test.gz"
T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

POLICY = """
description: retrain income when the age of its traffic drifts
rules:
  - name: retrain-on-age-drift
    scope: {model: income}
    when:
      all:
        - {monitor: drift, metric: drift_share, op: ">=", threshold: 0.25}
        - {monitor: drift, scope: "column:age", status: warn}
    cooldown_seconds: 3600
    actions:
      - {type: alert}
      - {type: retrain, pipeline: income-train, parameters: {max_rows: 6000}}
gates:
  - {type: metric_vs_champion, metric: accuracy, max_drop: 0.01}
  - {type: model_card, fields: [feature_schema, metrics, source_run]}
  - {type: approvers, min: 1}
"""

ROLLBACK_RULE = """  - name: roll-back-on-accuracy
    scope: {deployment: income-api}
    when: {monitor: performance, metric: accuracy, op: "<", threshold: 0.7}
    actions: [{type: rollback, deployment: income-api, mode: perform}]
"""


@pytest.fixture
def admin(person: Callable[..., Actor]) -> Actor:
    return person(Role.ADMIN)


@pytest.fixture
def deployer(registry: Registry, tmp_path: Path) -> EmbeddedDeployer:
    return EmbeddedDeployer(
        loader=VerifiedModelLoader(registry=registry, cache_dir=tmp_path / "models")
    )


def _policy(engine: Engine, project: Project, admin: Actor, source: str) -> uuid.UUID:
    with session_scope(engine) as session:
        policy, _ = create_policy(
            session=session, project_id=project.id, actor=admin, name="drift", source=source
        )
        return policy.id


def _approve_and_promote(
    engine: Engine,
    project: Project,
    requester: Actor,
    approver: Actor,
    version: str,
    registry: Registry,
    deployer: EmbeddedDeployer,
) -> None:
    with session_scope(engine) as session:
        target = session.exec(
            select(ModelVersion).where(
                ModelVersion.project_id == project.id, ModelVersion.version == version
            )
        ).one()
        request = request_promotion(
            session=session, actor=requester, model_version=target, reason="looks good"
        )
    with session_scope(engine) as session:
        decide(session=session, actor=approver, approval_id=request.id, approve=True, reason="ok")
    with session_scope(engine) as session:
        promote(
            session=session,
            project_id=project.id,
            model_name="income",
            version=version,
            deployment="income-api",
            environment="production",
            actor=requester,
            registry=registry,
            deployer=deployer,
            reason="go live",
        )


def _serve(engine: Engine, project: Project, deployer: EmbeddedDeployer, rows: Any) -> Any:
    with session_scope(engine) as session:
        return deployer.predict(
            session=session,
            project_id=project.id,
            deployment="income-api",
            environment="production",
            frame=rows[FEATURES],
        )


def _baseline(
    engine: Engine, settings: Settings, project: Project, deployment_id: uuid.UUID
) -> None:
    """The training rows as the reference of the deployment, stored as the monitors store it."""
    folder = settings.data_dir / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    adult_train()[[*FEATURES, TARGET]].to_parquet(folder / "adult-train.parquet", index=False)
    with session_scope(engine) as session:
        dataset = Dataset(project_id=project.id, namespace="file", name="adult/train")
        session.add(dataset)
        session.flush()
        version = DatasetVersion(
            project_id=project.id,
            dataset_id=dataset.id,
            version="v1",
            uri="datasets/adult-train.parquet",
        )
        session.add(version)
        session.flush()
        create_baseline(
            session=session,
            store=LocalStore(settings.data_dir),
            project_id=project.id,
            spec=BaselineCreate(
                deployment_id=deployment_id,
                dataset_version_id=version.id,
                label_column=TARGET,
                prediction_column=None,
                score_column=None,
            ),
        )


def _audit(engine: Engine) -> list[AuditEntry]:
    with session_scope(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all())


@pytest.mark.slow
def test_drifted_traffic_retrains_and_the_new_version_goes_live_through_its_gates(
    engine: Engine,
    settings: Settings,
    project: Project,
    trainer: Actor,
    approver: Actor,
    admin: Actor,
    runner_config: RunnerConfig,
    registry: Registry,
    deployer: EmbeddedDeployer,
    make_pipeline: Callable[..., Pipeline],
) -> None:
    worker = build_worker(settings, engine)
    pipeline = make_pipeline(
        evaluation=EvaluationSpec(
            holdout_uri=str(ADULT_TEST),
            reader="api.demo.adult:read_adult",
            target="income",
            sensitive_features=["sex"],
            max_rows=2000,
        )
    )
    # Version 1, trained by the worker and put live by people.
    with session_scope(engine) as session:
        request_run(session=session, pipeline=pipeline, actor=trainer, reason="first model")
    assert worker.run_once()
    _approve_and_promote(engine, project, trainer, approver, "1", registry, deployer)
    assert registry.alias_version("income", CHAMPION) == "1"

    policy_id = _policy(engine, project, admin, POLICY)
    with session_scope(engine) as session:
        channel, _ = create_channel(
            session=session,
            project_id=project.id,
            spec={"kind": "webhook", "name": "team", "url": "https://hooks.example.com/warden"},
            box=SecretBox.generate(),
            created_by=admin.name,
        )
        create_rule(
            session=session,
            project_id=project.id,
            spec=RuleCreate(
                name="drift", monitor_kinds=["drift"], min_status="warn", channel_ids=[channel.id]
            ),
            created_by=admin.name,
        )

    # Drifted traffic: people over 45, served by version 1 and logged for the monitors.
    test = adult_test()
    older = test[test["age"] > 45].sample(1500, random_state=0).reset_index(drop=True)
    served = _serve(engine, project, deployer, older)
    assert served.model_version == "1"
    with session_scope(engine) as session:
        [slot] = live_deployments(session=session, project_id=project.id)
        log_inferences(
            session=session,
            store=LocalStore(settings.data_dir),
            deployment=slot,
            records=[
                InferenceRecord.model_validate(r)
                for r in records(older, predictions=served.predictions, scores=served.scores)
            ],
        )
    _baseline(engine, settings, project, slot.id)
    with session_scope(engine) as session:
        monitor = create_monitor(
            session=session,
            project_id=project.id,
            spec=MonitorCreate(
                name="income-drift",
                deployment_id=slot.id,
                spec=MonitorSpec.model_validate(
                    {"kind": "drift", "thresholds": {"drift_share": 0.3}}
                ),
                schedule=Schedule(interval_seconds=3600),
                window="last:24h",
            ),
        )
        monitor_run = queue_monitor_run(
            session=session, monitor=monitor, scheduled_for=utcnow(), trigger=RunTrigger.MANUAL
        )
        assert monitor_run is not None

    # The worker runs the monitor; its findings reach the policy, which queues a retraining.
    assert worker.run_once()
    with session_scope(engine) as session:
        done = get_monitor_run(
            session=session, project_id=monitor_run.project_id, run_id=monitor_run.id
        )
        assert done.state == "succeeded", done.error
        [decision] = session.exec(select(PolicyDecision)).all()
        [retrain_run] = session.exec(
            select(PipelineRun).where(PipelineRun.requested_by_name == "warden")
        ).all()
        [incident] = session.exec(select(Incident)).all()
    assert (incident.source_kind, incident.source_id) == ("monitor", str(monitor.id))
    assert decision.status == "fire"
    assert decision.run_ids == [str(monitor_run.id)]
    assert f"{monitor_run.id}:drift.wasserstein_distance@column:age" in decision.finding_ids
    assert f"{monitor_run.id}:drift.drift_share@dataset" in decision.finding_ids
    [alerted, retrained] = decision.outcomes
    assert alerted == {"type": "alert", "outcome": "done", "incident_ids": [str(incident.id)]}
    assert retrained["outcome"] == "done"
    assert retrained["pipeline_run_id"] == str(retrain_run.id)
    assert retrain_run.parameters["max_rows"] == 6000
    assert "retrain-on-age-drift" in retrain_run.reason

    # The worker runs the pipeline: a new registered version, evaluated against the champion.
    assert worker.run_once()
    with session_scope(engine) as session:
        finished = session.get(PipelineRun, retrain_run.id)
        assert finished is not None
        assert finished.state == PipelineRunState.SUCCEEDED, finished.error + finished.log_tail
        assert finished.model_version == "2"
        v2 = session.get(ModelVersion, finished.model_version_id)
        assert v2 is not None
        evaluation = session.exec(
            select(Evaluation).where(Evaluation.candidate_version_id == v2.id)
        ).one()
    assert {"candidate", "champion", "difference"} <= set(evaluation.performance)

    # A second person approves; the gates pass; the alias moves; v2 serves.
    _approve_and_promote(engine, project, trainer, approver, "2", registry, deployer)
    assert registry.alias_version("income", CHAMPION) == "2"
    assert _serve(engine, project, deployer, older.head(20)).model_version == "2"

    with session_scope(engine) as session:
        live = live_deployments(session=session, project_id=project.id)
        assert [row.model_version_id for row in live] == [v2.id]
        produced = session.exec(
            select(Edge).where(Edge.kind == EdgeKind.RUN_MODEL, Edge.target_id == v2.id)
        ).all()
        serves = session.exec(
            select(Edge).where(Edge.kind == EdgeKind.SERVES, Edge.source_id == v2.id)
        ).all()
        approval = session.exec(
            select(ApprovalRequest).where(ApprovalRequest.target_id == str(v2.id))
        ).one()
    assert len(produced) == 1
    assert len(serves) == 1
    assert approval.requested_by_id == trainer.principal_id

    entries = _audit(engine)
    actions = [e.action for e in entries]
    decided = next(e for e in entries if e.action == "policy.decide")
    detail = json.loads(decided.detail)
    assert decided.target == f"policy:{policy_id}"
    assert (detail["policy_version"], detail["status"]) == (1, "fire")
    assert detail["run_ids"] == [str(monitor_run.id)]
    assert detail["finding_ids"] == decision.finding_ids
    assert [o["type"] for o in detail["outcomes"]] == ["alert", "retrain"]
    steps = [
        "incident.open",
        "pipeline_run.request",
        "policy.decide",
        "pipeline_run.succeeded",
        "model.evaluate",
        "approval.request",
        "approval.approve",
        "model.promote",
    ]
    after = actions[actions.index("incident.open", actions.index("policy.create")) :]
    positions = [after.index(step) for step in steps]
    assert positions == sorted(positions), after
    requested = next(e for e in entries if e.target == f"pipeline_run:{retrain_run.id}")
    assert (requested.action, requested.actor_name) == ("pipeline_run.request", "warden")

    # Version 2 then misbehaves: a new policy version rolls the deployment back on its own.
    with session_scope(engine) as session:
        add_version(
            session=session,
            policy=get_policy(session=session, project_id=project.id, policy_id=policy_id),
            actor=admin,
            source=POLICY.replace("gates:", ROLLBACK_RULE + "gates:"),
        )
    accuracy = RunFindings(
        run_id="performance-1",
        source_id="income-performance",
        at=utcnow(),
        findings=(Finding("performance", "accuracy", "dataset", 0.61, 0.8, Status.ALERT),),
        model="income",
        deployment="income-api",
        environment="production",
    )
    with session_scope(engine) as session:
        [rolled] = on_findings(
            session=session,
            actor=Actor.system(),
            project_id=project.id,
            run=accuracy,
            registry=registry,
            deployer=deployer,
        )
    assert rolled.policy_version == 2
    assert [o["outcome"] for o in rolled.outcomes] == ["done"]
    assert registry.alias_version("income", CHAMPION) == "1"
    assert _serve(engine, project, deployer, older.head(5)).model_version == "1"
    back = _audit(engine)[-2:]
    assert [(e.action, e.actor_name) for e in back] == [
        ("model.rollback", "warden"),
        ("policy.decide", "warden"),
    ]
    assert "roll-back-on-accuracy" in back[0].reason


# --- the loop's rules, on findings handed in directly -------------------------------------


ALERTING = """
rules:
  - name: page-on-drift
    when: {monitor: drift, metric: drift_share, op: ">=", threshold: 0.3}
    actions: [{type: alert}, {type: open_incident}]
"""


def test_an_alert_rule_and_a_policy_on_the_same_shift_share_one_incident(
    engine: Engine, project: Project, admin: Actor
) -> None:
    policy_id = _policy(engine, project, admin, ALERTING)
    with session_scope(engine) as session:
        channel, _ = create_channel(
            session=session,
            project_id=project.id,
            spec={"kind": "webhook", "name": "ops", "url": "https://hooks.example.com/x"},
            box=SecretBox.generate(),
            created_by=admin.name,
        )
        create_rule(
            session=session,
            project_id=project.id,
            spec=RuleCreate(
                name="drift", monitor_kinds=["drift"], min_status="alert", channel_ids=[channel.id]
            ),
            created_by=admin.name,
        )
        monitor = create_monitor(
            session=session,
            project_id=project.id,
            spec=MonitorCreate(
                name="income-drift",
                spec=MonitorSpec.model_validate({"kind": "drift"}),
                schedule=Schedule(interval_seconds=3600),
            ),
        )
    shift = list(_drift(1).findings)
    for hour in (1, 2):
        with session_scope(engine) as session:
            run = record_run(
                session=session,
                monitor=monitor,
                scheduled_for=T0 + timedelta(hours=hour),
                trigger=RunTrigger.SCHEDULE,
            )
            assert run is not None
            handle_run_findings(session=session, monitor=monitor, run=run, findings=shift)
    with session_scope(engine) as session:
        [incident] = session.exec(select(Incident)).all()
        decisions = session.exec(select(PolicyDecision)).all()
        [event] = [d.event_type for d in session.exec(select(Delivery)).all()]
    opened = [e for e in _audit(engine) if e.action == "incident.open"]
    assert (incident.source_kind, incident.source_id) == ("monitor", str(monitor.id))
    assert incident.count == 2
    assert incident.findings == shift
    assert len(opened) == 1
    assert event == "io.warden.incident.opened"
    assert [d.status for d in decisions] == ["fire", "fire"]
    for decision in decisions:
        assert decision.outcomes == [
            {"type": "alert", "outcome": "done", "incident_ids": [str(incident.id)]},
            {"type": "open_incident", "outcome": "done", "incident_ids": [str(incident.id)]},
        ]

    # A policy holding on a finding below the rule's level leaves the rule's incident open.
    calm = "{monitor: drift, scope: 'column:age', op: '>', threshold: 0.05}"
    with session_scope(engine) as session:
        policy = get_policy(session=session, project_id=project.id, policy_id=policy_id)
        add_version(
            session=session,
            policy=policy,
            actor=admin,
            source=ALERTING.replace(
                '{monitor: drift, metric: drift_share, op: ">=", threshold: 0.3}', calm
            ),
        )
    age = Finding("drift", "wasserstein_distance", "column:age", 0.5, 0.1, Status.WARN)
    with session_scope(engine) as session:
        run = record_run(
            session=session,
            monitor=monitor,
            scheduled_for=T0 + timedelta(hours=3),
            trigger=RunTrigger.SCHEDULE,
        )
        assert run is not None
        handle_run_findings(session=session, monitor=monitor, run=run, findings=[shift[0], age])
    with session_scope(engine) as session:
        [still] = session.exec(select(Incident)).all()
        latest = session.exec(
            select(PolicyDecision).order_by(col(PolicyDecision.decided_at).desc())
        ).first()
    assert (still.state, still.count) == ("open", 3)
    assert latest is not None
    assert latest.outcomes[0]["incident_ids"] == [str(incident.id)]


def _drift(
    run: int, *, share: float = 0.6, source: str = "m1", model: str = "income"
) -> RunFindings:
    return RunFindings(
        run_id=f"{source}-run-{run}",
        source_id=source,
        at=T0 + timedelta(minutes=run),
        findings=(
            Finding("drift", "drift_share", "dataset", share, 0.3, Status.ALERT),
            Finding("drift", "wasserstein_distance", "column:age", 0.5, 0.1, Status.ALERT),
        ),
        model=model,
        deployment="income-api",
        environment="production",
    )


RETRAIN = """
rules:
  - name: retrain
    scope: {model: income}
    when: {monitor: drift, metric: drift_share, op: ">=", threshold: 0.3}
    cooldown_seconds: 3600
    actions: [{type: retrain, pipeline: income-train}]
"""


def _judge(
    engine: Engine, project: Project, run: RunFindings, now: datetime
) -> list[PolicyDecision]:
    with session_scope(engine) as session:
        return on_findings(
            session=session, actor=Actor.system(), project_id=project.id, run=run, now=now
        )


def _runs(engine: Engine, project: Project) -> list[PipelineRun]:
    with session_scope(engine) as session:
        query = select(PipelineRun).where(PipelineRun.project_id == project.id)
        return list(session.exec(query.order_by(col(PipelineRun.created_at))).all())


def test_a_storm_yields_one_run_and_a_cooldown_holds_back_the_rest(
    engine: Engine,
    project: Project,
    admin: Actor,
    make_pipeline: Callable[..., Pipeline],
) -> None:
    make_pipeline()
    _policy(
        engine, project, admin, RETRAIN.replace("cooldown_seconds: 3600", "cooldown_seconds: 0")
    )
    # No cooldown: every monitor's run fires, yet the model is trained once at a time.
    for index, source in enumerate(["m1", "m2", "m3", "m4"]):
        [decision] = _judge(
            engine, project, _drift(1, source=source), T0 + timedelta(seconds=index)
        )
        assert decision.status == "fire"
        assert decision.outcomes[0]["outcome"] == "done"
        assert decision.outcomes[0]["created"] is (index == 0)
    [run] = _runs(engine, project)
    assert run.state == PipelineRunState.QUEUED


def test_a_cooldown_fires_once_then_again_after_it_passes(
    engine: Engine, project: Project, admin: Actor, make_pipeline: Callable[..., Pipeline]
) -> None:
    make_pipeline()
    _policy(engine, project, admin, RETRAIN)
    [first] = _judge(engine, project, _drift(1), T0)
    assert first.status == "fire"
    [held] = _judge(engine, project, _drift(2, source="m2"), T0 + timedelta(minutes=30))
    assert held.status == "cooldown"
    assert held.outcomes == []
    assert "cooldown is 3600 s" in held.reason
    # The run is cancelled meanwhile; after the cooldown the next firing starts a new one.
    [queued] = _runs(engine, project)
    with session_scope(engine) as session:
        cancel_run(session=session, project_id=project.id, run_id=queued.id, actor=admin)
    [again] = _judge(engine, project, _drift(3), T0 + timedelta(minutes=61))
    assert again.status == "fire"
    assert again.outcomes[0]["created"] is True
    states = [r.state for r in _runs(engine, project)]
    assert states == [PipelineRunState.CANCELLED, PipelineRunState.QUEUED]
    decided = [
        json.loads(e.detail)["status"] for e in _audit(engine) if e.action == "policy.decide"
    ]
    assert decided == ["fire", "cooldown", "fire"]


def test_n_consecutive_runs_and_a_retried_run_counted_once(
    engine: Engine, project: Project, admin: Actor, make_pipeline: Callable[..., Pipeline]
) -> None:
    make_pipeline()
    _policy(
        engine,
        project,
        admin,
        RETRAIN.replace("cooldown_seconds", "consecutive_runs: 3\n    cooldown_seconds"),
    )
    assert _judge(engine, project, _drift(1), T0) == []
    assert _judge(engine, project, _drift(2), T0) == []
    # The same run again (a retried job) is not a third run.
    assert _judge(engine, project, _drift(2), T0) == []
    [decision] = _judge(engine, project, _drift(3), T0)
    assert decision.run_ids == ["m1-run-1", "m1-run-2", "m1-run-3"]
    with session_scope(engine) as session:
        assert len(session.exec(select(FindingBatch)).all()) == 3


def test_a_failing_action_is_recorded_and_does_not_stop_the_others(
    engine: Engine, project: Project, admin: Actor, make_pipeline: Callable[..., Pipeline]
) -> None:
    make_pipeline()
    source = """
rules:
  - name: act
    when: {monitor: drift, metric: drift_share, op: ">=", threshold: 0.3}
    actions:
      - {type: retrain, pipeline: no-such-pipeline}
      - {type: rollback}
      - {type: block_promotion, duration_seconds: 600}
      - {type: retrain, pipeline: income-train}
"""
    _policy(engine, project, admin, source)
    [decision] = _judge(engine, project, _drift(1), T0)
    missing, rollback, block, retrain = decision.outcomes
    assert missing["outcome"] == "failed"
    assert "no pipeline named 'no-such-pipeline'" in missing["error"]
    assert rollback["outcome"] == "done"
    assert block == {
        "type": "block_promotion",
        "outcome": "done",
        "model": "income",
        "until": (T0 + timedelta(seconds=600)).isoformat(),
    }
    assert retrain["outcome"] == "done"
    with session_scope(engine) as session:
        request = session.exec(select(ApprovalRequest)).one()
        assert (request.action, request.target_id) == ("rollback", "income-api/production")
    [entry] = [e for e in _audit(engine) if e.action == "policy.decide"]
    assert entry.outcome == "failure"


class RecordingDeployer:
    """A deployer that records what it was asked to deploy (the Deployer protocol's fake)."""

    name = "recording"

    def __init__(self) -> None:
        self.deployed: list[tuple[str, str, str]] = []

    def deploy(self, *, model_version: ModelVersion, deployment: str, environment: str) -> None:
        self.deployed.append((model_version.version, deployment, environment))


def test_redeploy_is_requested_or_performed_on_the_live_version(
    engine: Engine,
    project: Project,
    admin: Actor,
    trainer: Actor,
    approver: Actor,
    registry: Registry,
) -> None:
    with session_scope(engine) as session:
        version = register_model_version(
            session=session,
            project_id=project.id,
            name="income",
            spec=ModelVersionCreate(artifact_uri="models:/income/1", artifact_sha256="0" * 64),
        )
        promotion = request_promotion(
            session=session, actor=trainer, model_version=version, reason="serve it"
        )
    with session_scope(engine) as session:
        decide(session=session, actor=approver, approval_id=promotion.id, approve=True, reason="ok")
    with session_scope(engine) as session:
        record_deployment(
            session=session,
            project_id=project.id,
            spec=DeploymentCreate(
                name="income-api", environment="production", model_name="income", model_version="1"
            ),
        )
    source = """
rules:
  - name: reload
    scope: {deployment: income-api}
    when: {monitor: drift, metric: drift_share, op: ">=", threshold: 0.3}
    actions:
      - {type: redeploy}
      - {type: redeploy, mode: perform}
"""
    _policy(engine, project, admin, source)
    deployer = RecordingDeployer()
    with session_scope(engine) as session:
        [decision] = on_findings(
            session=session,
            actor=Actor.system(),
            project_id=project.id,
            run=_drift(1),
            now=T0,
            registry=registry,
            deployer=deployer,
        )
    requested, performed = decision.outcomes
    assert (requested["outcome"], requested["created"]) == ("done", True)
    assert performed == {"type": "redeploy", "outcome": "done", "model_version": "1"}
    assert deployer.deployed == [("1", "income-api", "production")]
    with session_scope(engine) as session:
        request = session.exec(
            select(ApprovalRequest).where(ApprovalRequest.action == "redeploy")
        ).one()
    assert (request.action, request.target_kind, request.id) == (
        "redeploy",
        "deployment",
        uuid.UUID(requested["approval_id"]),
    )
    assert "model.redeploy" in [e.action for e in _audit(engine)]

    # Without a deployer, performing fails with a message saying what is missing.
    with session_scope(engine) as session:
        [again] = on_findings(
            session=session,
            actor=Actor.system(),
            project_id=project.id,
            run=_drift(2),
            now=T0,
        )
    assert again.outcomes[0] == {**requested, "created": False}
    assert again.outcomes[1]["outcome"] == "failed"
    assert "needs the registry and deployer" in again.outcomes[1]["error"]
