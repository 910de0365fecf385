"""Model cards built from a real history, read back from the HTML, JSON and PDF files."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pypdf
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from api.demo.adult import FEATURES, read_adult
from api.settings import Settings
from governance.actors import Actor
from governance.alerts import RuleCreate, create_rule
from governance.approvals import decide
from governance.channels import SecretBox, create_channel
from governance.incidents import Incident, resolve_incident
from lineage.errors import NotFound
from lineage.graph import model_provenance
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.models import Dataset, DatasetVersion, Deployment, ModelVersion
from lineage.projects import Project
from lineage.runtime.handlers import HandlerRegistry
from lineage.runtime.worker import Worker
from lineage.storage import LocalStore
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.baseline.storage import BaselineCreate, create_baseline
from monitors.inferences import InferenceRecord, LabelRecord, log_inferences, log_labels
from monitors.models import Monitor, MonitorCreate, MonitorRun, RunTrigger, Schedule
from monitors.run_jobs import queue_monitor_run, read_runs, register_monitor_handlers
from monitors.schedules import create_monitor
from monitors.spec import MonitorSpec
from reports import REDACTED, ModelCardUpdate, model_card, render, update_model_card
from retrain.deployers import EmbeddedDeployer, VerifiedModelLoader
from retrain.evaluation import Evaluation, evaluate_version
from retrain.loop import handle_run_findings
from retrain.mlflow_registry import Registry
from retrain.pipelines import PipelineRun
from retrain.promotion import promote, request_promotion
from tests.monitors.serving import records

ADULT_TRAIN = Path(__file__).resolve().parents[2] / "data" / "adult" / "adult.data.gz"
ADULT_TEST = Path(__file__).resolve().parents[2] / "data" / "adult" / "adult.test.gz"
INTENDED_USE = "Rank loan applications for a second, manual review"
LIMITATIONS = "Not validated for applicants under 21 or outside the 1994 census population"


def _flat(text: str) -> str:
    """Remove all whitespace, so text wrapped across PDF lines still compares equal."""
    return re.sub(r"\s+", "", text)


def _files(document: dict[str, Any], directory: Path, stem: str) -> dict[str, str]:
    """Render the document to files, then read each file back as text."""
    directory.mkdir(parents=True, exist_ok=True)
    read: dict[str, str] = {}
    for fmt in ("html", "json", "pdf"):
        path = directory / f"{stem}.{fmt}"
        path.write_bytes(render(document, fmt))
        if fmt == "pdf":
            pages = pypdf.PdfReader(io.BytesIO(path.read_bytes())).pages
            read[fmt] = "\n".join(page.extract_text() for page in pages)
        else:
            read[fmt] = path.read_text(encoding="utf-8")
    return read


def _promote(
    engine: Engine,
    project: Project,
    trainer: Actor,
    approver: Actor,
    registry: Registry,
    deployer: EmbeddedDeployer,
    version: ModelVersion,
    reason: str,
) -> None:
    with session_scope(engine) as session:
        request = request_promotion(
            session=session, actor=trainer, model_version=version, reason=f"request: {reason}"
        )
    with session_scope(engine) as session:
        decide(
            session=session,
            actor=approver,
            approval_id=request.id,
            approve=True,
            reason=f"approved: {reason}",
        )
    with session_scope(engine) as session:
        promote(
            session=session,
            project_id=project.id,
            model_name="income",
            version=version.version,
            deployment="income-api",
            environment="production",
            actor=approver,
            registry=registry,
            deployer=deployer,
            reason=f"go live: {reason}",
        )


class Watch:
    """Monitors on a live deployment, fed a real baseline and a real (skewed) inference window."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        project: Project,
        loader: VerifiedModelLoader,
        version: ModelVersion,
        deployment: Deployment,
    ) -> None:
        self.engine = engine
        self.project = project
        self.data_dir = settings.data_dir
        self.deployment = deployment
        self.model = loader.load(version)
        self.worker = Worker(
            engine=engine,
            registry=register_monitor_handlers(
                HandlerRegistry(),
                store=LocalStore(self.data_dir),
                loader=loader,
                on_findings=handle_run_findings,
            ),
            owner="w-reports",
        )

    def baseline(self) -> None:
        """Score training rows with the live model and store them as the reference."""
        reference = read_adult(str(ADULT_TRAIN)).sample(n=2000, random_state=3)
        reference = reference.assign(
            predicted=self.model.predict(reference[FEATURES]),
            proba=self.model.predict_proba(reference[FEATURES])[:, 1],
        )
        folder = self.data_dir / "datasets"
        folder.mkdir(parents=True, exist_ok=True)
        reference.to_parquet(folder / "reference.parquet", index=False)
        with session_scope(self.engine) as session:
            dataset = Dataset(project_id=self.project.id, namespace="file", name="reference")
            session.add(dataset)
            session.flush()
            version = DatasetVersion(
                project_id=self.project.id,
                dataset_id=dataset.id,
                version="ref-1",
                uri="datasets/reference.parquet",
            )
            session.add(version)
            session.flush()
            create_baseline(
                session=session,
                store=LocalStore(self.data_dir),
                project_id=self.project.id,
                spec=BaselineCreate(
                    deployment_id=self.deployment.id,
                    dataset_version_id=version.id,
                    label_column="income",
                    prediction_column="predicted",
                    score_column="proba",
                ),
            )

    def serve(self, rows: int) -> None:
        """Log a window of older applicants (drifted on age) with the model's answers and labels."""
        test = read_adult(str(ADULT_TEST))
        window = test[test["age"] >= 50].sample(n=rows, random_state=0).reset_index(drop=True)
        batch = records(
            window,
            predictions=self.model.predict(window[FEATURES]),
            scores=self.model.predict_proba(window[FEATURES])[:, 1],
        )
        with session_scope(self.engine) as session:
            log_inferences(
                session=session,
                store=LocalStore(self.data_dir),
                deployment=self.deployment,
                records=[InferenceRecord.model_validate(r) for r in batch],
            )
            log_labels(
                session=session,
                store=LocalStore(self.data_dir),
                deployment=self.deployment,
                labels=[
                    LabelRecord(request_id=f"r{i}", label=int(label))
                    for i, label in enumerate(window["income"])
                ],
            )

    def monitor(self, name: str, spec: MonitorSpec) -> uuid.UUID:
        with session_scope(self.engine) as session:
            return create_monitor(
                session=session,
                project_id=self.project.id,
                spec=MonitorCreate(
                    name=name,
                    deployment_id=self.deployment.id,
                    spec=spec,
                    schedule=Schedule(interval_seconds=3600),
                ),
            ).id

    def run(self, monitor_id: uuid.UUID, offset_seconds: int = 0) -> None:
        """Queue a run of the monitor now (plus an offset) and let the worker execute it."""
        with session_scope(self.engine) as session:
            monitor = session.get(Monitor, monitor_id)
            assert monitor is not None
            queued = queue_monitor_run(
                session=session,
                monitor=monitor,
                scheduled_for=utcnow() + timedelta(seconds=offset_seconds),
                trigger=RunTrigger.MANUAL,
            )
            assert queued is not None
        assert self.worker.run_once()


def _alert_rule(engine: Engine, project: Project) -> None:
    with session_scope(engine) as session:
        channel, _ = create_channel(
            session=session,
            project_id=project.id,
            spec={"kind": "webhook", "name": "hook", "url": "http://127.0.0.1:9/"},
            box=SecretBox.generate(),
            created_by="alice",
        )
        create_rule(
            session=session,
            project_id=project.id,
            spec=RuleCreate(name="drift-alerts", monitor_kinds=["drift"], channel_ids=[channel.id]),
            created_by="alice",
        )


@pytest.mark.slow
def test_model_card_shows_each_fact_of_a_real_history_in_html_json_and_pdf(
    engine: Engine,
    project: Project,
    trainer: Actor,
    approver: Actor,
    registry: Registry,
    settings: Settings,
    tmp_path: Path,
    train_version: Callable[..., ModelVersion],
) -> None:
    loader = VerifiedModelLoader(registry=registry, cache_dir=tmp_path / "models")
    deployer = EmbeddedDeployer(loader=loader)
    first = train_version()
    _promote(engine, project, trainer, approver, registry, deployer, first, "first income model")
    second = train_version(max_iter=5, random_state=1)
    holdout = read_adult(str(ADULT_TEST)).sample(n=1500, random_state=0)
    with session_scope(engine) as session:
        evaluation = evaluate_version(
            session=session,
            project_id=project.id,
            model_name="income",
            version=second.version,
            holdout=holdout,
            holdout_name="adult.test sample",
            target="income",
            sensitive_features=["sex"],
            loader=loader,
            actor=trainer,
        )
        evaluation_id = evaluation.id
    _promote(engine, project, trainer, approver, registry, deployer, second, "smaller model")
    with session_scope(engine) as session:
        update_model_card(
            session=session,
            actor=trainer,
            model_version=second,
            spec=ModelCardUpdate(intended_use=INTENDED_USE, limitations=LIMITATIONS),
        )
        deployment = session.exec(
            select(Deployment).where(Deployment.model_version_id == second.id)
        ).one()
    watch = Watch(engine, settings, project, loader, second, deployment)
    watch.baseline()
    watch.serve(rows=600)
    _alert_rule(engine, project)
    drift = watch.monitor("income-drift", MonitorSpec(kind="drift"))
    fairness = watch.monitor(
        "income-fairness",
        MonitorSpec(kind="fairness", sensitive_features=["sex"], min_rows=50),
    )
    explanations = watch.monitor("income-shap", MonitorSpec(kind="explanations"))
    watch.run(drift)
    with session_scope(engine) as session:
        first_incident = session.exec(select(Incident)).one()
        resolve_incident(
            session=session,
            actor=approver,
            project_id=project.id,
            incident_id=first_incident.id,
            note="older applicants campaign, expected",
        )
    watch.run(drift, offset_seconds=1)
    watch.run(fairness)
    watch.run(explanations)

    # The facts, read from the services' own rows (not from the report).
    with session_scope(engine) as session:
        provenance = model_provenance(
            session=session, project_id=project.id, model_version_id=second.id
        )
        digests = [v.version for v in provenance.dataset_versions]
        rows = [v.row_count for v in provenance.dataset_versions]
        stored = session.get(Evaluation, evaluation_id)
        assert stored is not None
        accuracy = stored.performance["candidate"]["accuracy"]
        low, high = stored.performance["intervals"]["candidate"]["accuracy"]
        women = stored.fairness["candidate"]["sex"]["selection_rate"]["sex=Female"]
        pipeline_run = session.exec(
            select(PipelineRun).where(PipelineRun.model_version_id == second.id)
        ).one()
        resolved, still_open = session.exec(
            select(Incident).order_by(col(Incident.first_seen_at))
        ).all()
        runs = read_runs(
            session=session,
            monitor_ids=session.exec(select(MonitorRun.monitor_id)).all(),
            newest_first=False,
        )
        document = model_card(
            session=session, project_id=project.id, name="income", version=second.version, full=True
        )
        viewer_document = model_card(
            session=session,
            project_id=project.id,
            name="income",
            version=second.version,
            full=False,
        )
    assert len(digests) == 1
    assert digests[0]
    assert resolved.state == "resolved"
    assert still_open.state == "open"
    assert [run.state for run in runs] == ["succeeded"] * 4
    assert all((run.summary or {}).get("computed") for run in runs)

    files = _files(document, tmp_path / "reports", "card")
    card = json.loads(files["json"])
    facts_everywhere = [
        "income",
        str(second.artifact_sha256),
        digests[0],
        str(pipeline_run.id),
        str(pipeline_run.mlflow_run_id),
        "api.demo.adult:train",
        INTENDED_USE,
        LIMITATIONS,
        approver.name,
        "approved: smaller model",
        "income-api",
        "production",
        "income-drift",
        "income-fairness",
        "income-shap",
        "older applicants campaign, expected",
        str(resolved.id),
        str(still_open.id),
    ]
    for fmt, text in files.items():
        for fact in facts_everywhere:
            assert _flat(fact) in _flat(text), f"{fact!r} missing from the {fmt} report"
    for fmt in ("html", "pdf"):
        text = _flat(files[fmt])
        assert _flat(f"{accuracy:.4g}") in text
        assert _flat(f"{low:.4g}\u2013{high:.4g}") in text
        assert _flat(f"{women:.4g}") in text
        assert "NOTFILLEDIN" in text  # ethical considerations were left empty
        assert "<svg" in files["html"]

    # JSON: Model Card Toolkit sections, with the numbers as stored.
    assert card["schema_version"] == "0.0.2"
    assert card["model_details"]["version"]["name"] == second.version
    metrics = {
        (m["type"], m["slice"]): m for m in card["quantitative_analysis"]["performance_metrics"]
    }
    assert metrics[("accuracy", "")]["value"] == accuracy
    assert metrics[("accuracy", "")]["confidence_interval"] == {
        "lower_bound": low,
        "upper_bound": high,
    }
    assert metrics[("selection_rate", "sex=Female")]["value"] == women
    assert card["model_parameters"]["data"][0]["row_count"] == rows[0]
    assert card["considerations"]["use_cases"] == [{"description": INTENDED_USE}]
    warden = card["warden"]
    assert warden["evaluation"]["against_replaced_version"]["champion_version"] == first.version
    assert [d["replaced_version"] for d in warden["deployments"]] == [first.version]
    assert [a["status"] for a in warden["approvals"]] == ["approved"]
    assert warden["monitor_history"]["run_states"] == {"succeeded": 4}
    assert warden["explanations"]["importance"]
    production = {(g["type"], g["slice"]): g for g in warden["monitored_fairness"]["groups"]}
    assert "confidence_interval" in production[("selection_rate", "sex=Female")]
    assert "explanations" not in warden["missing"]
    assert warden["open_incidents"] == 1
    assert "considerations.ethical_considerations" in warden["missing"]
    assert "considerations.intended_use" not in warden["missing"]

    # A reader without audit:read sees the facts but not reasons, names or locations.
    viewer = _files(viewer_document, tmp_path / "viewer", "card")
    for fmt, text in viewer.items():
        assert "approved: smaller model" not in text, fmt
        assert str(second.artifact_sha256) in _flat(text), fmt
    assert json.loads(viewer["json"])["model_details"]["path"] == REDACTED


def test_model_card_of_an_unknown_version_is_not_found(engine: Engine, project: Project) -> None:
    with session_scope(engine) as session, pytest.raises(NotFound, match="no version '9'"):
        model_card(session=session, project_id=project.id, name="income", version="9", full=True)


def test_model_card_of_a_bare_version_lists_every_missing_section(
    engine: Engine, project: Project, trainer: Actor
) -> None:
    with session_scope(engine) as session:
        register_model_version(
            session=session,
            project_id=project.id,
            name="bare",
            spec=ModelVersionCreate(artifact_uri="models:/bare/1", artifact_sha256="a" * 64),
        )
        document = model_card(
            session=session, project_id=project.id, name="bare", version="1", full=True
        )
    assert document["warden"]["missing"] == [
        "considerations.intended_use",
        "considerations.out_of_scope_use",
        "considerations.limitations",
        "considerations.ethical_considerations",
        "model_parameters.data",
        "warden.training",
        "quantitative_analysis",
        "explanations",
        "approvals",
    ]
    html = render(document, "html").decode()
    assert html.count("NOT FILLED IN") == 4
    assert "No evaluation is recorded for this version." in html
