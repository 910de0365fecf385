"""A persisted ``performance_estimate`` run end to end, before and after the labels arrive.

The Adult model's held-out scores are the reference (uploaded into the data directory, the
baseline calibrated from it); a window of people over 45 is logged without labels and judged
by the worker; then the labels are posted and the same window is judged again. The stored
report shows estimate and realised value side by side, and the monitor page's chart series
carries both lines.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pandas as pd
import pytest
from sqlalchemy.engine import Engine

from api.dashboard.summaries import _series
from api.settings import Settings
from lineage.runtime.handlers import HandlerRegistry
from lineage.runtime.worker import Worker
from lineage.storage import LocalStore
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.baseline.storage import (
    BaselineCreate,
    create_baseline,
    latest_baseline,
    load_baseline,
)
from monitors.execute import report_keys
from monitors.inferences import InferenceRecord, LabelRecord, log_inferences, log_labels
from monitors.models import Monitor, MonitorCreate, MonitorRunPublic, RunTrigger, Schedule
from monitors.run_jobs import get_monitor_run, queue_monitor_run, register_monitor_handlers
from monitors.schedules import create_monitor
from monitors.spec import MonitorSpec
from tests.adult import FEATURES, TARGET, adult_model, adult_test
from tests.monitors.serving import adult_deployment, dataset_version, records

pytestmark = pytest.mark.slow


def _run(engine: Engine, settings: Settings, monitor_id: uuid.UUID) -> MonitorRunPublic:
    with session_scope(engine) as session:
        monitor = session.get(Monitor, monitor_id)
        assert monitor is not None
        run = queue_monitor_run(
            session=session, monitor=monitor, scheduled_for=utcnow(), trigger=RunTrigger.MANUAL
        )
        assert run is not None
    registry = register_monitor_handlers(HandlerRegistry(), store=LocalStore(settings.data_dir))
    assert Worker(engine=engine, registry=registry).run_once()
    with session_scope(engine) as session:
        return get_monitor_run(session=session, project_id=run.project_id, run_id=run.id)


def _finding(run: MonitorRunPublic, metric: str) -> dict[str, Any]:
    assert run.summary is not None
    return next(f for f in run.summary["findings"] if f["metric"] == metric)


def test_estimate_before_labels_then_realised_beside_it(engine: Engine, settings: Settings) -> None:
    model = adult_model()
    test = adult_test()
    scored = test[[*FEATURES, TARGET]].assign(
        predicted=model.predict(test[FEATURES]), proba=model.predict_proba(test[FEATURES])[:, 1]
    )
    reference, pool = scored.iloc[:6000], scored.iloc[6000:]
    window = pool[pool["age"] > 45].sample(1500, random_state=0).reset_index(drop=True)
    deployment = adult_deployment(engine)
    folder = settings.data_dir / "datasets"
    folder.mkdir(parents=True)
    reference.to_parquet(folder / "adult-holdout.parquet", index=False)
    version_id = dataset_version(engine, deployment.project_id, "datasets/adult-holdout.parquet")
    with session_scope(engine) as session:
        create_baseline(
            session=session, store=LocalStore(settings.data_dir), project_id=deployment.project_id,
            spec=BaselineCreate(
                deployment_id=deployment.id, dataset_version_id=version_id, label_column=TARGET,
                prediction_column="predicted", score_column="proba",
            ),
        )  # fmt: skip
        stored = latest_baseline(session=session, deployment=deployment)
        assert "performance_estimate" in stored.extras
        baseline = load_baseline(store=LocalStore(settings.data_dir), stored=stored)
        assert baseline.extras["performance_estimate"]["rows"] == 6000
        batch = records(window, predictions=window["predicted"], scores=window["proba"])
        log_inferences(
            session=session, store=LocalStore(settings.data_dir), deployment=deployment,
            records=[InferenceRecord.model_validate(r) for r in batch],
        )  # fmt: skip
        monitor = create_monitor(
            session=session,
            project_id=deployment.project_id,
            spec=MonitorCreate(
                name="estimated-accuracy",
                deployment_id=deployment.id,
                spec=MonitorSpec.model_validate({"kind": "performance_estimate"}),
                schedule=Schedule(interval_seconds=3600),
                window="last:24h",
            ),
        )
        monitor_id = monitor.id

    before = _run(engine, settings, monitor_id)
    assert before.state == "succeeded", before.error
    accuracy = _finding(before, "accuracy")
    assert accuracy["detail"]["estimated"] is True
    assert accuracy["detail"]["realised"] is None
    realised = float((window[TARGET] == window["predicted"]).mean())
    assert accuracy["detail"]["lower"] <= realised <= accuracy["detail"]["upper"]

    with session_scope(engine) as session:
        log_labels(
            session=session, store=LocalStore(settings.data_dir), deployment=deployment,
            labels=[
                LabelRecord(request_id=f"r{i}", label=int(v)) for i, v in enumerate(window[TARGET])
            ],
        )  # fmt: skip
    after = _run(engine, settings, monitor_id)
    assert after.state == "succeeded", after.error
    accuracy = _finding(after, "accuracy")
    assert accuracy["detail"]["realised"] == pytest.approx(realised)
    assert accuracy["detail"]["within_band"] is True
    assert accuracy["value"] == pytest.approx(_finding(before, "accuracy")["value"])
    assert _finding(after, "estimate_reliability")["status"] == "ok"

    json_path, html_path = (
        settings.data_dir / key for key in report_keys(project_id=after.project_id, run_id=after.id)
    )
    document = json.loads(json_path.read_text(encoding="utf-8"))
    section = document["results"][0]["report"]
    rows = {row["metric"]: row for row in section["comparison"]}
    assert rows["accuracy"]["realised"] == pytest.approx(realised)
    assert rows["accuracy"]["rows"] == len(window)
    html = html_path.read_text(encoding="utf-8")
    assert f"Estimated and realised, on the {len(window)} labelled rows" in html

    charts = {title: series for title, series, _ in _series([before, after])}
    lines = charts["Estimated and realised performance"]
    assert len(lines["accuracy (estimated)"]) == 2
    [(when, value)] = lines["accuracy (realised)"]
    assert when == (after.window_end or after.scheduled_for)
    assert value == pytest.approx(realised)
    assert pd.notna(lines["roc_auc (estimated)"][0][1])
