"""A model Warden does not host: an external version, monitored from its logged records alone.

The version is registered without MLflow and without an artifact; the serving app logs its
decisions with sensitive attributes that are not model inputs (``context``), labels arrive
later, and fairness and performance run with no baseline and without any model being loaded.
The numbers are checked against fairlearn's ``MetricFrame`` and scikit-learn on the same rows.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score
from sqlalchemy.engine import Engine

from api.settings import Settings
from lineage.deployments import DeploymentCreate, record_deployment
from lineage.errors import InvalidInput
from lineage.model_versions import ModelVersionCreate, register_model_version
from lineage.models import Deployment, ModelVersion
from lineage.projects import create_project
from lineage.runtime.handlers import HandlerRegistry
from lineage.runtime.worker import Worker
from lineage.storage import LocalStore
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.execute import report_keys
from monitors.inferences import (
    InferenceRecord,
    LabelRecord,
    log_inferences,
    log_labels,
    read_window,
)
from monitors.models import MonitorCreate, MonitorRunPublic, RunTrigger
from monitors.run_jobs import get_monitor_run, queue_monitor_run, register_monitor_handlers
from monitors.schedules import create_monitor
from monitors.spec import MonitorSpec
from tests.adult import CATEGORICAL, NUMERIC, TARGET, adult_model, adult_test
from tests.monitors.serving import records

SENSITIVE = ("race", "sex")
INPUTS = [name for name in (*NUMERIC, *CATEGORICAL) if name not in SENSITIVE]


class RecordingLoader:
    """A model loader that records every call: an external version must never reach it."""

    def __init__(self) -> None:
        self.loaded: list[uuid.UUID] = []

    def load(self, model_version: ModelVersion) -> Any:
        self.loaded.append(model_version.id)
        raise AssertionError("no model may be loaded for an external version")


class External:
    """An external vendor score, deployed, with 2,000 logged decisions and their labels."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.data_dir = settings.data_dir
        self.loader = RecordingLoader()
        schema = {
            **{name: "integer" for name in NUMERIC},
            **{name: "category" for name in CATEGORICAL if name not in SENSITIVE},
        }
        with session_scope(engine) as session:
            project = create_project(session=session, name="vendor")
            self.version = register_model_version(
                session=session,
                project_id=project.id,
                name="risk-score",
                spec=ModelVersionCreate.model_validate(
                    {
                        "external": True,
                        "artifact_uri": "https://vendor.example/risk-score/v3",
                        "feature_schema": schema,
                        "context_schema": {
                            "race": {"role": "sensitive"},
                            "sex": {"role": "sensitive"},
                        },
                    }
                ),
            )
            self.deployment: Deployment = record_deployment(
                session=session,
                project_id=project.id,
                spec=DeploymentCreate(
                    name="risk-api",
                    environment="production",
                    model_name="risk-score",
                    model_version="1",
                ),
            )
        self.window = adult_test().sample(2000, random_state=3).reset_index(drop=True)
        # The vendor's decisions: any model will do, Warden never sees it.
        model = adult_model()
        full = self.window.drop(columns=[TARGET])
        self.predicted = np.asarray(model.predict(full[model.feature_names_in_]))
        batch = records(self.window, predictions=self.predicted)
        for record, (_, row) in zip(batch, self.window.iterrows(), strict=True):
            record["features"] = {k: v for k, v in record["features"].items() if k in INPUTS}
            record["context"] = {name: str(row[name]) for name in SENSITIVE}
        with session_scope(engine) as session:
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
                    for i, label in enumerate(self.window[TARGET])
                ],
            )

    def run(self, spec: dict[str, Any]) -> MonitorRunPublic:
        """Create an unscheduled monitor, run it on request, and let a worker execute it."""
        with session_scope(self.engine) as session:
            monitor = create_monitor(
                session=session,
                project_id=self.deployment.project_id,
                spec=MonitorCreate(
                    name=f"m-{uuid.uuid4().hex[:8]}",
                    deployment_id=self.deployment.id,
                    spec=MonitorSpec.model_validate(spec),
                    window="last:24h",
                ),
            )
            run = queue_monitor_run(
                session=session, monitor=monitor, scheduled_for=utcnow(), trigger=RunTrigger.MANUAL
            )
            assert run is not None
        registry = register_monitor_handlers(
            HandlerRegistry(), store=LocalStore(self.data_dir), loader=self.loader
        )
        assert Worker(engine=self.engine, registry=registry).run_once()
        with session_scope(self.engine) as session:
            return get_monitor_run(session=session, project_id=run.project_id, run_id=run.id)

    def report(self, run: MonitorRunPublic) -> dict[str, Any]:
        path, _ = (
            self.data_dir / key for key in report_keys(project_id=run.project_id, run_id=run.id)
        )
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return document


@pytest.fixture
def external(engine: Engine, settings: Settings) -> External:
    return External(engine, settings)


def test_an_external_version_needs_no_artifact_and_refuses_a_hash() -> None:
    with pytest.raises(ValueError, match="external"):
        ModelVersionCreate.model_validate({"artifact_uri": "https://vendor.example/v1"})
    with pytest.raises(ValueError, match="no artifact hash"):
        ModelVersionCreate.model_validate({"external": True, "artifact_sha256": "0" * 64})
    with pytest.raises(ValueError, match="both features and context"):
        ModelVersionCreate.model_validate(
            {
                "external": True,
                "feature_schema": {"race": "category"},
                "context_schema": {"race": {"role": "sensitive"}},
            }
        )
    spec = ModelVersionCreate.model_validate({"external": True})
    assert (spec.artifact_uri, spec.artifact_sha256) == (None, None)


@pytest.mark.slow
def test_fairness_of_an_external_model_reads_context_and_loads_no_model(
    external: External,
) -> None:
    with session_scope(external.engine) as session:
        window, _ = read_window(
            session=session,
            store=LocalStore(external.data_dir),
            deployment=external.deployment,
            start=None,
            end=None,
        )
    # The model's inputs and the context are stored apart: the model never sees race or sex.
    assert {"context.race", "context.sex"} <= set(window.columns)
    assert not {"race", "sex"} & set(window.columns)

    run = external.run({"kind": "fairness", "sensitive_features": ["sex", "race"]})
    assert run.state == "succeeded", run.error
    assert external.loader.loaded == []
    report = external.report(run)["results"][0]["report"]
    assert report["labelled"] == 2000
    assert report["reference"] is None
    labels = external.window[TARGET].to_numpy()
    frame = MetricFrame(
        metrics={"tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=labels,
        y_pred=external.predicted,
        sensitive_features=external.window["sex"],
    )
    sex = next(d for d in report["disparities"] if d["features"] == ["sex"])
    for group in sex["groups"]:
        [value] = group["values"]
        metrics = group["metrics"]
        tpr, fpr = metrics["true_positive_rate"], metrics["false_positive_rate"]
        assert tpr["value"] == pytest.approx(frame.by_group.loc[value, "tpr"], abs=1e-12)
        assert fpr["value"] == pytest.approx(frame.by_group.loc[value, "fpr"], abs=1e-12)
        for estimate in (tpr, fpr):
            assert estimate["low"] <= estimate["value"] <= estimate["high"]
            assert estimate["high"] > estimate["low"]
    odds = sex["metrics"]["equalized_odds_difference"]
    assert odds["value"] == pytest.approx(
        equalized_odds_difference(
            labels, external.predicted, sensitive_features=external.window["sex"]
        ),
        abs=1e-12,
    )
    assert run.summary is not None
    findings = {(f["metric"], f["scope"]): f for f in run.summary["findings"]}
    odds_finding = findings[("equalized_odds_difference", "feature:sex")]
    assert odds_finding["value"] == pytest.approx(odds["value"], abs=1e-12)
    # The Adult decisions are far from parity between the sexes: a disparity is found.
    parity = findings[("demographic_parity_difference", "feature:sex")]
    assert parity["value"] == pytest.approx(
        demographic_parity_difference(
            labels, external.predicted, sensitive_features=external.window["sex"]
        ),
        abs=1e-12,
    )
    assert parity["value"] > 0.1
    assert parity["status"] in {"warn", "alert"}
    assert any(scope == "feature:race" for _, scope in findings)


@pytest.mark.slow
def test_performance_of_an_external_model_judges_absolute_limits_without_a_baseline(
    external: External,
) -> None:
    run = external.run({"kind": "performance", "thresholds": {"min_accuracy": 0.95}})
    assert run.state == "succeeded", run.error
    assert external.loader.loaded == []
    assert run.summary is not None
    accuracy = next(f for f in run.summary["findings"] if f["metric"] == "accuracy")
    expected = accuracy_score(external.window[TARGET], external.predicted)
    assert accuracy["value"] == pytest.approx(expected, abs=1e-12)
    assert accuracy["detail"]["reference"] is None
    assert accuracy["threshold"] == 0.95
    assert accuracy["status"] == "alert"
    f1 = next(f for f in run.summary["findings"] if f["metric"] == "f1")
    assert f1["status"] == "ok"


@pytest.mark.slow
def test_explanations_of_an_external_model_read_logged_attributions(external: External) -> None:
    refused = external.run({"kind": "explanations"})
    assert (refused.state, refused.attempts) == ("failed", 1)
    assert refused.error is not None
    assert "explanations needs the model" in refused.error
    rng = np.random.default_rng(0)
    batch = records(external.window.iloc[:300], predictions=external.predicted[:300], prefix="a")
    attributions = []
    for record, (_, row) in zip(batch, external.window.iloc[:300].iterrows(), strict=True):
        record["features"] = {k: v for k, v in record["features"].items() if k in INPUTS}
        record["context"] = {name: str(row[name]) for name in SENSITIVE}
        record["attributions"] = {"age": float(rng.normal(0, 2)), "hours_per_week": 0.5}
        attributions.append(record["attributions"])
    with session_scope(external.engine) as session:
        log_inferences(
            session=session,
            store=LocalStore(external.data_dir),
            deployment=external.deployment,
            records=[InferenceRecord.model_validate(r) for r in batch],
        )
    run = external.run({"kind": "explanations"})
    assert run.state == "succeeded", run.error
    assert external.loader.loaded == []
    importance = external.report(run)["results"][0]["report"]["importance"]
    assert importance["method"] == "logged"
    assert importance["rows"] == 300
    expected_age = float(np.mean([abs(a["age"]) for a in attributions]))
    assert importance["values"]["age"] == pytest.approx(expected_age, rel=1e-12)
    assert importance["values"]["hours_per_week"] == pytest.approx(0.5)
    assert importance["values"]["education"] == 0.0


def test_attributions_must_name_model_inputs(external: External) -> None:
    record = records(external.window.iloc[:1], predictions=external.predicted[:1], prefix="x")[0]
    record["features"] = {k: v for k, v in record["features"].items() if k in INPUTS}
    record["attributions"] = {"race": 0.3}
    with (
        session_scope(external.engine) as session,
        pytest.raises(InvalidInput, match="not model inputs") as caught,
    ):
        log_inferences(
            session=session,
            store=LocalStore(external.data_dir),
            deployment=external.deployment,
            records=[InferenceRecord.model_validate(record)],
        )
    assert caught.value.field == "records[0].attributions.race"
    record["attributions"] = None
    record["context"] = {"zodiac": "leo"}
    with (
        session_scope(external.engine) as session,
        pytest.raises(InvalidInput, match="does not declare") as undeclared,
    ):
        log_inferences(
            session=session,
            store=LocalStore(external.data_dir),
            deployment=external.deployment,
            records=[InferenceRecord.model_validate(record)],
        )
    assert undeclared.value.field == "records[0].context.zodiac"


@pytest.mark.slow
def test_performance_is_judged_per_slice_of_a_context_column(external: External) -> None:
    run = external.run({"kind": "performance", "slices": ["race"], "min_rows": 50})
    assert run.state == "succeeded", run.error
    assert external.loader.loaded == []
    assert run.summary is not None
    sliced = {f["scope"]: f for f in run.summary["findings"] if f["scope"].startswith("slice:")}
    races = external.window["race"].astype(str)
    hits = external.window[TARGET].to_numpy() == external.predicted
    white = sliced["slice:race=White"]
    assert white["metric"] == "slice_accuracy"
    assert white["value"] == pytest.approx(hits[(races == "White").to_numpy()].mean(), abs=1e-12)
    assert "adjusted_p" in white["detail"]
    section = external.report(run)["results"][0]["report"]["slices"]
    assert section["columns"] == ["race"]
    assert {t["scope"] for t in section["tests"]} == set(sliced)
    refused = external.run({"kind": "performance", "slices": ["zodiac"]})
    assert (refused.state, refused.attempts) == ("failed", 1)
    assert refused.error is not None
    assert "zodiac" in refused.error


@pytest.mark.slow
def test_fairness_is_judged_per_slice_with_group_rates_in_the_report(external: External) -> None:
    run = external.run(
        {"kind": "fairness", "sensitive_features": ["sex"], "slices": ["race"], "min_rows": 50}
    )
    assert run.state == "succeeded", run.error
    assert external.loader.loaded == []
    assert run.summary is not None
    gaps = {
        f["scope"]: f for f in run.summary["findings"] if f["metric"] == "slice_selection_rate_gap"
    }
    assert "slice:race=White/group:sex=Female" in gaps
    assert "adjusted_p" in gaps["slice:race=White/group:sex=Female"]["detail"]
    section = external.report(run)["results"][0]["report"]["slices"]
    white = next(
        r for r in section["fairness"] if r["scope"] == "slice:race=White" and r["feature"] == "sex"
    )
    rows = external.window[external.window["race"].astype(str) == "White"]
    women = (rows["sex"].astype(str) == "Female").to_numpy()
    chosen = external.predicted[(external.window["race"].astype(str) == "White").to_numpy()]
    assert white["groups"]["Female"]["selection_rate"] == pytest.approx(
        float((chosen[women] == 1).mean())
    )
    _, html = (
        external.data_dir / key for key in report_keys(project_id=run.project_id, run_id=run.id)
    )
    assert "Group rates per slice" in html.read_text(encoding="utf-8")
    refused = external.run(
        {"kind": "fairness", "sensitive_features": ["sex"], "slices": ["zodiac"]}
    )
    assert (refused.state, refused.attempts) == ("failed", 1)
