"""Persisted monitor runs end to end on the real Adult data and model.

Inferences are logged, a baseline is built from the training data, each monitor kind runs
through the worker's handler, and the numbers in the stored summary and report are checked
against scipy, scikit-learn, fairlearn and shap computed directly here.
"""

from __future__ import annotations

import json
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import shap
from fairlearn.metrics import demographic_parity_difference
from scipy import stats
from sklearn.metrics import accuracy_score, f1_score
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from api.settings import Settings
from lineage.models import (
    DatasetVersion,
    Deployment,
    Edge,
    EdgeKind,
    LineageEvent,
    ModelVersion,
    Run,
)
from lineage.runtime.handlers import HandlerRegistry
from lineage.runtime.worker import Worker
from lineage.storage import LocalStore, ObjectStore, write_parquet
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.baseline.storage import BaselineCreate, create_baseline
from monitors.drift_page_jobs import drift_page_job, drift_page_key
from monitors.execute import execute_monitor_run, report_keys
from monitors.findings import Finding
from monitors.inferences import InferenceRecord, LabelRecord, log_inferences, log_labels
from monitors.models import (
    Monitor,
    MonitorCreate,
    MonitorRun,
    MonitorRunPublic,
    RunTrigger,
    Schedule,
)
from monitors.run_jobs import get_monitor_run, queue_monitor_run, register_monitor_handlers
from monitors.schedules import create_monitor
from monitors.spec import MonitorSpec
from tests.adult import FEATURES, TARGET, adult_model, adult_test, adult_train
from tests.lineage.openlineage_spec import assert_spec_event
from tests.monitors.serving import adult_deployment, dataset_version, records

Routed = list[tuple[uuid.UUID, list[Finding]]]


class AdultLoader:
    """The test's model loader: the Adult model for the registered version, and a call log."""

    def __init__(self) -> None:
        self.loaded: list[uuid.UUID] = []

    def load(self, model_version: ModelVersion) -> Any:
        self.loaded.append(model_version.id)
        return adult_model()


@cache
def _scored_training() -> pd.DataFrame:
    """The training rows with the model's predictions and scores."""
    train = adult_train()
    model = adult_model()
    return train[[*FEATURES, TARGET]].assign(
        predicted=model.predict(train[FEATURES]),
        proba=model.predict_proba(train[FEATURES])[:, 1],
    )


def _reference(store: ObjectStore) -> None:
    """Write the scored training rows into the artifact store, as a team would upload them."""
    write_parquet(
        store,
        "datasets/adult-train.parquet",
        pa.Table.from_pandas(_scored_training(), preserve_index=False),
    )


class Setup:
    """A deployment of the Adult model with a baseline and a logged, labelled window."""

    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        window: pd.DataFrame,
        store: ObjectStore | None = None,
        context: dict[str, str] | None = None,
    ) -> None:
        self.engine = engine
        self.data_dir = settings.data_dir
        self.store = store or LocalStore(self.data_dir)
        self.deployment: Deployment = adult_deployment(engine)
        _reference(self.store)
        version_id = dataset_version(
            engine, self.deployment.project_id, "datasets/adult-train.parquet"
        )
        with session_scope(engine) as session:
            self.baseline = create_baseline(
                session=session,
                store=self.store,
                project_id=self.deployment.project_id,
                spec=BaselineCreate(
                    deployment_id=self.deployment.id,
                    dataset_version_id=version_id,
                    label_column=TARGET,
                    prediction_column="predicted",
                    score_column="proba",
                ),
            )
        self.loader = AdultLoader()
        self.routed: Routed = []
        self.window = window.reset_index(drop=True)
        if not len(self.window):
            return
        model = adult_model()
        self.predicted = model.predict(self.window[FEATURES])
        self.scores = model.predict_proba(self.window[FEATURES])[:, 1]
        batch = records(
            self.window, predictions=self.predicted, scores=self.scores, context=context
        )
        with session_scope(engine) as session:
            log_inferences(
                session=session,
                store=self.store,
                deployment=self.deployment,
                records=[InferenceRecord.model_validate(r) for r in batch],
            )
            log_labels(
                session=session,
                store=self.store,
                deployment=self.deployment,
                labels=[
                    LabelRecord(request_id=f"r{i}", label=int(label))
                    for i, label in enumerate(self.window[TARGET])
                ],
            )

    def route(
        self, *, session: Any, monitor: Monitor, run: MonitorRun, findings: list[Finding]
    ) -> None:
        assert session.get(MonitorRun, run.id) is run
        self.routed.append((run.id, findings))

    def run(self, spec: dict[str, Any], *, deployment: bool = True) -> MonitorRunPublic:
        """Create a monitor, queue a run now and let a worker execute it."""
        run = self.queue(spec, deployment=deployment)
        assert self.worker().run_once()
        with session_scope(self.engine) as session:
            return get_monitor_run(session=session, project_id=run.project_id, run_id=run.id)

    def queue(self, spec: dict[str, Any], *, deployment: bool = True) -> MonitorRun:
        """Create a monitor and queue a run of it now."""
        with session_scope(self.engine) as session:
            monitor = create_monitor(
                session=session,
                project_id=self.deployment.project_id,
                spec=MonitorCreate(
                    name=f"m-{uuid.uuid4().hex[:8]}",
                    deployment_id=self.deployment.id if deployment else None,
                    spec=MonitorSpec.model_validate(spec),
                    schedule=Schedule(interval_seconds=3600),
                    window="last:24h",
                ),
            )
            run = queue_monitor_run(
                session=session, monitor=monitor, scheduled_for=utcnow(), trigger=RunTrigger.MANUAL
            )
            assert run is not None
        return run

    def worker(self) -> Worker:
        """Return a worker with the monitors' handlers (drift pages in the background)."""
        registry = register_monitor_handlers(
            HandlerRegistry(),
            store=self.store,
            loader=self.loader,
            on_findings=self.route,
        )
        return Worker(engine=self.engine, registry=registry)

    def report(self, run: MonitorRunPublic) -> dict[str, Any]:
        path, html = (
            self.data_dir / key for key in report_keys(project_id=run.project_id, run_id=run.id)
        )
        assert "<svg" in html.read_text(encoding="utf-8")
        document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return document


@pytest.fixture
def older(engine: Engine, settings: Settings) -> Setup:
    """A real population shift: 1,500 test rows of people over 45."""
    test = adult_test()
    return Setup(engine, settings, test[test["age"] > 45].sample(1500, random_state=0))


@pytest.fixture
def plain(engine: Engine, settings: Settings) -> Setup:
    """An unshifted window: 2,000 random test rows."""
    return Setup(engine, settings, adult_test().sample(2000, random_state=1))


def _finding(run: MonitorRunPublic, metric: str, scope: str) -> dict[str, Any]:
    assert run.summary is not None
    return next(f for f in run.summary["findings"] if f["metric"] == metric and f["scope"] == scope)


@pytest.mark.slow
def test_drift_runs_end_to_end_matches_scipy_and_is_recorded(older: Setup) -> None:
    run = older.run({"kind": "drift", "thresholds": {"drift_share": 0.25}})
    assert run.state == "succeeded", run.error
    summary = run.summary
    assert summary is not None
    assert summary["computed"] is True
    assert summary["status"] == "alert"
    assert summary["rows"] == 1500
    dataset = _finding(run, "drift_share", "dataset")
    assert dataset["detail"]["judged_columns"] == len(FEATURES)
    assert "age" in dataset["detail"]["drifted_columns"]
    assert summary["drift_share"] == dataset["value"]
    assert summary["drift_share"] == len(dataset["detail"]["drifted_columns"]) / len(FEATURES)
    assert summary["drift_share"] >= 0.25
    reference = adult_train()["age"].to_numpy(np.float64)
    exact = stats.wasserstein_distance(reference, older.window["age"].to_numpy(np.float64))
    age = _finding(run, "wasserstein_distance", "column:age")
    assert age["value"] == pytest.approx(exact / np.std(reference), rel=0.02)
    scopes = {f["scope"] for f in summary["findings"]}
    assert {"column:label", "column:prediction", "column:score"}.isdisjoint(scopes)
    assert [(run_id, [f.to_dict() for f in found]) for run_id, found in older.routed] == [
        (run.id, summary["findings"])
    ]
    assert older.loader.loaded == []

    document = older.report(run)
    assert document["status"] == "alert"
    assert document["meta"]["baseline_id"] == str(older.baseline.id)
    assert document["results"][0]["kind"] == "drift"

    with session_scope(older.engine) as session:
        lineage_run = session.exec(select(Run).where(Run.run_id == run.id)).one()
        inputs = session.exec(
            select(DatasetVersion)
            .join(Edge, col(Edge.source_id) == col(DatasetVersion.id))
            .where(Edge.kind == EdgeKind.RUN_INPUT, Edge.target_id == lineage_run.id)
        ).all()
        versions = {v.version for v in inputs}
        bodies = [json.loads(e.body) for e in session.exec(select(LineageEvent)).all()]
    [event] = [b for b in bodies if b.get("run", {}).get("runId") == str(run.id)]
    assert_spec_event(event)
    assert lineage_run.facets["warden_monitor"]["baselineId"] == str(older.baseline.id)
    assert {"v1", str(older.baseline.id)} <= versions
    assert len(versions) == 3


@pytest.mark.slow
def test_quality_counts_bad_values_that_were_logged(plain: Setup) -> None:
    bad = records(plain.window.iloc[:40], predictions=plain.predicted[:40], prefix="bad")
    for index, record in enumerate(bad):
        record["features"]["age"] = None if index < 25 else -5
        record["features"]["workclass"] = "Astronaut"
    with session_scope(plain.engine) as session:
        log_inferences(
            session=session,
            store=LocalStore(plain.data_dir),
            deployment=plain.deployment,
            records=[InferenceRecord.model_validate(r) for r in bad],
        )
    run = plain.run({"kind": "quality"})
    assert run.state == "succeeded", run.error
    document = plain.report(run)
    columns = {c["column"]: c for c in document["results"][0]["report"]["columns"]}
    expected_missing = int(plain.window["age"].isna().sum()) + 25
    assert columns["age"]["missing"] == expected_missing
    assert columns["age"]["out_of_range"] == 15
    assert columns["workclass"]["unseen"] == 40
    assert columns["age"]["rows"] == 2040
    assert run.summary is not None
    assert run.summary["status"] in {"warn", "alert"}


@pytest.mark.slow
def test_performance_matches_scikit_learn_on_the_labelled_window(plain: Setup) -> None:
    run = plain.run({"kind": "performance"})
    assert run.state == "succeeded", run.error
    labels = plain.window[TARGET].to_numpy()
    accuracy = _finding(run, "accuracy", "dataset")
    assert accuracy["value"] == pytest.approx(accuracy_score(labels, plain.predicted), abs=1e-12)
    f1 = _finding(run, "f1", "dataset")
    assert f1["value"] == pytest.approx(f1_score(labels, plain.predicted), abs=1e-12)
    train = adult_train()
    reference = accuracy_score(train[TARGET], adult_model().predict(train[FEATURES]))
    assert accuracy["detail"]["reference"] == pytest.approx(reference, abs=1e-12)
    document = plain.report(run)
    assert document["results"][0]["report"]["reference"]["accuracy"]["value"] == (
        pytest.approx(reference, abs=1e-12)
    )


@pytest.mark.slow
def test_fairness_matches_fairlearn_on_the_labelled_window(plain: Setup) -> None:
    run = plain.run({"kind": "fairness", "sensitive_features": ["sex"]})
    assert run.state == "succeeded", run.error
    document = plain.report(run)
    disparity = next(
        d for d in document["results"][0]["report"]["disparities"] if d["features"] == ["sex"]
    )
    expected = demographic_parity_difference(
        plain.window[TARGET].to_numpy(),
        plain.predicted,
        sensitive_features=plain.window["sex"],
    )
    assert disparity["metrics"]["demographic_parity_difference"]["value"] == pytest.approx(
        expected, abs=1e-12
    )
    assert document["results"][0]["report"]["labelled"] == 2000
    assert document["results"][0]["report"]["reference"] is not None


@pytest.mark.slow
def test_explanations_load_the_model_and_match_shap(plain: Setup) -> None:
    run = plain.run({"kind": "explanations"})
    assert run.state == "succeeded", run.error
    assert plain.loader.loaded == [plain.deployment.model_version_id]
    model = adult_model()
    rows = plain.window[FEATURES].astype({name: "float64" for name in FEATURES if name not in (
        "workclass", "education", "marital_status", "occupation", "relationship", "race", "sex",
        "native_country",
    )})  # fmt: skip
    values = shap.TreeExplainer(model[-1]).shap_values(model[:-1].transform(rows))
    names = list(model[:-1].get_feature_names_out())
    expected = dict(zip(names, np.abs(values).mean(axis=0), strict=True))
    importance = plain.report(run)["results"][0]["report"]["importance"]["values"]
    for name in FEATURES:
        assert importance[name] == pytest.approx(expected[name], rel=1e-6), name
    ndcg = _finding(run, "attribution_ndcg", "dataset")
    assert ndcg["value"] is not None
    assert ndcg["value"] > 0.9


@pytest.mark.slow
def test_prediction_drift_reads_logged_scores_against_reference_scores(older: Setup) -> None:
    run = older.run({"kind": "prediction_drift"})
    assert run.state == "succeeded", run.error
    assert run.summary is not None
    scopes = {f["scope"] for f in run.summary["findings"]}
    assert {"column:score", "column:prediction"} <= scopes
    reference = _scored_training()["proba"].to_numpy(np.float64)
    exact = stats.wasserstein_distance(reference, older.scores) / np.std(reference)
    score = _finding(run, "wasserstein_distance", "column:score")
    assert score["value"] == pytest.approx(exact, rel=0.02)
    assert score["status"] == "alert"


@pytest.mark.slow
def test_a_run_without_a_deployment_or_data_is_insufficient_never_an_alert(
    engine: Engine, settings: Settings
) -> None:
    setup = Setup(engine, settings, adult_test().iloc[:0])
    run = setup.run({"kind": "drift"})
    assert run.state == "succeeded"
    assert run.summary is not None
    assert (run.summary["status"], run.summary["computed"]) == ("insufficient", False)
    assert "no inferences" in run.summary["reason"]
    detached = setup.run({"kind": "drift"}, deployment=False)
    assert detached.summary is not None
    assert detached.summary["status"] == "insufficient"
    assert setup.routed[0][1][0].status == "insufficient"


@pytest.mark.slow
def test_a_spec_that_cannot_apply_fails_the_run_at_once(plain: Setup) -> None:
    run = plain.run({"kind": "drift", "columns": ["zodiac"]})
    assert (run.state, run.attempts) == ("failed", 1)
    assert run.error is not None
    assert run.error.startswith("InvalidInput: ")
    assert "zodiac" in run.error
    assert "gave up" not in run.error
    assert plain.routed == []


def test_execute_run_refuses_an_unknown_run(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(LookupError, match="does not exist"):
        execute_monitor_run(engine=engine, store=LocalStore(tmp_path), run_id=uuid.uuid4())


def test_a_failing_evidently_page_leaves_the_drift_findings_standing(
    older: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Evidently is a third-party renderer: simulate it breaking on some window.
    import monitors.evidently_report

    def broken(*_args: Any, **_kwargs: Any) -> str:
        raise RuntimeError("renderer broke")

    monkeypatch.setattr(monitors.evidently_report, "render_drift_html", broken)
    run = older.run({"kind": "drift", "thresholds": {"drift_share": 0.25}})
    assert run.state == "succeeded", run.error
    assert run.summary is not None
    assert run.summary["status"] == "alert"
    assert older.routed[0][0] == run.id  # findings handed on before the page was tried
    assert older.worker().run_once()  # the page job, after the run
    with session_scope(older.engine) as session:
        job = drift_page_job(session=session, project_id=run.project_id, run_id=run.id)
        assert job is not None
        assert (job.state, job.attempts) == ("failed", 1)
        assert job.error == "RuntimeError: Evidently could not render the page: renderer broke"
    page = older.data_dir / drift_page_key(project_id=run.project_id, run_id=run.id)
    assert not page.exists()
    assert not list(page.parent.glob("*.parquet"))  # the window sample is not left behind
    assert older.report(run)["results"][0]["status"] == "alert"


@pytest.mark.slow
def test_the_drift_page_waits_behind_monitor_runs_and_is_rendered_after(older: Setup) -> None:
    first = older.run({"kind": "drift", "thresholds": {"drift_share": 0.25}})
    queued = older.queue({"kind": "quality"})
    page = older.data_dir / drift_page_key(project_id=first.project_id, run_id=first.id)
    assert older.report(first)["links"] == {"Evidently drift page (sampled)": "drift.html"}
    assert not page.exists()
    worker = older.worker()
    assert worker.run_once()  # the quality run queued after the page still goes first
    with session_scope(older.engine) as session:
        second = get_monitor_run(session=session, project_id=queued.project_id, run_id=queued.id)
    assert second.state == "succeeded", second.error
    assert not page.exists()
    assert worker.run_once()
    assert "Drifted Columns" in page.read_text(encoding="utf-8")
    assert not list(page.parent.glob("*.parquet"))
    assert not worker.run_once()


def test_when_pages_fall_behind_only_the_newest_run_of_a_monitor_gets_one(
    older: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Evidently's rendering is not under test here (see the test above): a stand-in page.
    import monitors.evidently_report

    monkeypatch.setattr(
        monitors.evidently_report, "render_drift_html", lambda *_a, **_k: "<html>page</html>"
    )
    first = older.queue({"kind": "drift", "thresholds": {"drift_share": 0.25}})
    with session_scope(older.engine) as session:
        monitor = session.get(Monitor, first.monitor_id)
        assert monitor is not None
        second = queue_monitor_run(
            session=session, monitor=monitor, scheduled_for=utcnow(), trigger=RunTrigger.MANUAL
        )
        assert second is not None
    worker = older.worker()
    assert worker.run_once()
    assert worker.run_once()  # both runs go before either page
    assert worker.run_once()
    assert worker.run_once()
    assert not worker.run_once()
    with session_scope(older.engine) as session:
        skipped = drift_page_job(session=session, project_id=first.project_id, run_id=first.id)
        rendered = drift_page_job(session=session, project_id=first.project_id, run_id=second.id)
        assert skipped is not None
        assert rendered is not None
        assert (skipped.state, skipped.result) == (
            "succeeded",
            {"page": None, "superseded_by": str(second.id)},
        )
        assert (rendered.state, rendered.result) == ("succeeded", {"page": "drift.html"})
    old_page = older.data_dir / drift_page_key(project_id=first.project_id, run_id=first.id)
    assert not old_page.exists()
    assert not list(old_page.parent.glob("*.parquet"))  # its window sample is not kept
    new_page = older.data_dir / drift_page_key(project_id=first.project_id, run_id=second.id)
    assert new_page.read_text(encoding="utf-8") == "<html>page</html>"
